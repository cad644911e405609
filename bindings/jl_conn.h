/*
 * jl_conn.h - the connection struct, shared by the files that work on a
 * connection: lconn.c (its life: events, clients, drain, close), lwire.c
 * (its write buffer), lconnect.c (jet.connect), and the bindings that use
 * one (lpublish.c, lsub.c, lmux.c, lrequest.c, lmsg.c, the JetStream
 * engines). Data only: the functions are declared in lconn.h and lwire.h.
 *
 * Lifetime: a jl_conn is reference counted. The Lua userdata, every client
 * (subscription, the mux, publisher, consumer), every message userdata, every
 * pending request and the cnats connection itself (until its closed event
 * is processed) each hold one ref. The struct, the natsConnection and the
 * natsOptions are freed at zero (jl_conn_release).
 */
#ifndef JETLUA_JL_CONN_H
#define JETLUA_JL_CONN_H

#include <nats/nats.h>
#include <stdint.h>

#include "rt.h"
#include "rt_proto.h"
#include "rt_pubwin.h"
#include "rt_sched.h"

enum { JL_CONN_CONNECTING = 0, JL_CONN_CONNECTED, JL_CONN_RECONNECTING, JL_CONN_DRAINING, JL_CONN_CLOSED };
enum { JL_EV_DISCONNECTED = 0, JL_EV_RECONNECTED, JL_EV_CLOSED, JL_EV_ERROR, JL_EV_COUNT };

/* A client of the connection: something that owns subscriptions on it.
 * Core subscriptions (lsub.c), the request mux (lrequest.c), the
 * JetStream async publisher, pull consumers. The connection calls it on
 * the loop thread and knows nothing else about it; every callback may be
 * NULL. A client counts as a live subscription: a draining or closing
 * connection waits for it to call jl_conn_client_remove -- except a
 * passive one (the request mux: requests made while the others drain
 * need it until cnats drains it last), which only keeps the shutdown hook
 * until it is removed. Embed it first in the client's struct. */
typedef struct jl_client jl_client;
struct jl_client {
    void (*after_read)(jl_client *k);        /* messages may be queued (also once at close) */
    void (*event)(jl_client *k, int ev);     /* JL_EV_DISCONNECTED/RECONNECTED/CLOSED */
    void (*drain)(jl_client *k);             /* finish up, then remove yourself; idempotent */
    /* the server refused a publish: p->op is RT_PERM_PUBLISH (p names the
     * subject) or RT_PERM_REPLY (p names the reply subject); text is the
     * server's sentence */
    void (*denied)(jl_client *k, const rt_perm *p, const char *text);
    /* the server refused a subscription: p->op is RT_PERM_SUBSCRIBE, p
     * names the subject and the queue group ("" for none) */
    void (*sub_denied)(jl_client *k, const rt_perm *p, const char *text);
    int passive;       /* set before jl_conn_client_add */
    unsigned ev_round; /* the connection's: last event it heard */
    jl_client *next, *prev;
};

typedef struct jl_conn {
    natsConnection *nc;
    natsOptions    *opts;
    int             refs;
    int             state;
    int             ev_ref[JL_EV_COUNT];   /* Lua callbacks, LUA_NOREF if none */
    int             self_ref;              /* Lua userdata, held while open */
    char            name[128];             /* for logs: connection name or url */
    rt_hook         hook;                  /* closes the connection at shutdown */
    rt_co          *drain_co;              /* nc:drain() waiting for closed */
    int nsubs;                             /* live clients that hold a drain */
    int npassive;                          /* live passive clients (the request mux) */
    unsigned ev_round;                     /* events told to the clients (clients_event) */
    unsigned        list_gen;              /* bumped when clients are linked/unlinked: loops
                                              that run handlers restart when it moves */
    jl_client *clients;                    /* subscriptions, the mux, publishers, consumers */
    struct jl_mux *mux;                    /* the request mux (lrequest.c), once started */
    uint64_t        reconnects;
    uint64_t fast_replies;                 /* request replies read on the loop (lmux.c) */
    uint32_t        pubs;                  /* publishes since the last write check */
    size_t pub_bytes;                      /* ... and their bytes */
    int             closing;               /* close or drain was asked for */
    int             dropping;              /* nc:close: queued messages are dropped */
    int             drain_closing;         /* subscriptions drained, cnats closes */
    double          drain_timeout;
    struct jl_conn *next, *prev;           /* every open connection (lwire.c writes them) */
    int             tracked;
    struct rt_health *health;              /* readiness item while tracked */
    /* the write buffer (lwire.c): where it stands in the byte stream, and
     * nc:publish's backpressure once it holds more than max_buffered */
    rt_wtrack       wt;
    int             max_buffered;
    int             over_buffered;         /* last check found it over max_buffered */
    struct jl_bpwait *bp_waits;            /* nc:publish calls waiting for it to drain */
} jl_conn;

#define CONN_MT "jetlua.conn"
typedef struct { jl_conn *c; } conn_ud;

#endif
