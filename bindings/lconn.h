/*
 * lconn.h - the connection object shared by the bindings that need one
 * (lconn.c owns it; lmsg.c uses it to respond; JetStream will use the mux).
 *
 * Lifetime: a jl_conn is reference counted. The Lua userdata, every live
 * subscription, every message userdata, every pending request and the cnats
 * connection itself (until its closed event is processed) each hold one ref.
 * The struct, the natsConnection and the natsOptions are freed at zero.
 */
#ifndef JETLUA_LCONN_H
#define JETLUA_LCONN_H

#include <nats/nats.h>
#include <stdint.h>

#include "rt.h"
#include "rt_map.h"
#include "rt_proto.h"
#include "rt_pubwin.h"
#include "rt_sched.h"

enum { JL_CONN_CONNECTING = 0, JL_CONN_CONNECTED, JL_CONN_RECONNECTING, JL_CONN_DRAINING, JL_CONN_CLOSED };
enum { JL_EV_DISCONNECTED = 0, JL_EV_RECONNECTED, JL_EV_CLOSED, JL_EV_ERROR, JL_EV_COUNT };

typedef struct jl_sub jl_sub;

/* A client of the connection that owns its own (synchronous) subscriptions:
 * the JetStream async publisher, pull consumers. The connection calls it on
 * the loop thread; every callback may be NULL. A client counts as a live
 * subscription: a draining or closing connection waits for it to call
 * jl_conn_client_remove. */
typedef struct jl_client jl_client;
struct jl_client {
    void (*after_read)(jl_client *k);        /* messages may be queued */
    void (*event)(jl_client *k, int ev);     /* JL_EV_DISCONNECTED/RECONNECTED/CLOSED */
    void (*drain)(jl_client *k);             /* finish up, then remove yourself */
    /* the server refused a publish: p->op is RT_PERM_PUBLISH (p names the
     * subject) or RT_PERM_REPLY (p names the reply subject); text is the
     * server's sentence */
    void (*denied)(jl_client *k, const rt_perm *p, const char *text);
    jl_client *next, *prev;
};

/* A reply waiter on the connection's mux subscription. */
typedef struct jl_reply jl_reply;
typedef void (*jl_reply_fn)(jl_reply *r, natsMsg *m, const char *err);
struct jl_reply {
    struct jl_conn *conn;
    uint64_t     token;
    jl_reply_fn  fn;      /* m is owned by fn; err: "timeout", "closed", ... */
    void        *data;
    uv_timer_t  *timer;   /* NULL: no timeout */
    const char  *subj;    /* the request's subject (permission errors name it), or NULL */
    const char  *detail;  /* set only while fn runs for an error: a sentence, or NULL */
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
    int             nsubs;
    unsigned        list_gen;              /* bumped when subs or clients are linked/unlinked:
                                              loops that run handlers restart when it moves */
    jl_sub         *subs;                  /* live subscriptions (lsub.c) */
    jl_client      *clients;               /* async publishers, pull consumers */
    /* request/reply mux: one wildcard subscription, one map lookup per reply */
    natsSubscription *mux;
    char            mux_prefix[64];        /* "_INBOX.<nuid>." */
    size_t          mux_prefix_len;
    uint64_t        next_token;
    rt_map          replies;
    uint64_t        reconnects;
    uint32_t        pubs;                  /* publishes since the last write check */
    size_t          pub_bytes;             /* ... and their bytes */
    int             mux_live;              /* mux not yet completed by cnats */
    int             closing;               /* close or drain was asked for */
    int             dropping;              /* nc:close: queued messages are dropped */
    int             drain_closing;         /* subscriptions drained, cnats closes */
    double          drain_timeout;
    struct jl_conn *all_next, *all_prev;   /* every open connection */
    int             tracked;
    struct rt_health *health;              /* readiness item while tracked */
    /* the write buffer (lwire.c): where it stands in the byte stream, and
     * nc:publish's backpressure once it holds more than max_buffered */
    rt_wtrack       wt;
    int             max_buffered;
    int             over_buffered;         /* last check found it over max_buffered */
    struct jl_bpwait *bp_waits;            /* nc:publish calls waiting for it to drain */
} jl_conn;

/* Count c among the open connections (and /readyz) until closed. */
void jl_conn_track(jl_conn *c);

void jl_conn_retain(jl_conn *c);
/* After the closed event, the shutdown hook is done only once every
 * subscription and the mux have been completed by cnats (so no late event
 * can arrive after the inbox closes). Call when one of those changes. */
void jl_conn_maybe_done(jl_conn *c);
void jl_conn_release(jl_conn *c);

/* Add/remove a client (see jl_client). Removing may finish a drain. */
void jl_conn_client_add(jl_conn *c, jl_client *k);
void jl_conn_client_remove(jl_conn *c, jl_client *k);

/* Build a message with optional reply and headers table at hidx (0 = none).
 * Raises on bad headers (nothing leaks). */
natsStatus jl_msg_build(lua_State *L, natsMsg **out, const char *subj, const char *reply,
                        const char *data, size_t len, int hidx, const char *fname);

/* Register a reply waiter; fills r->token and writes the reply subject to
 * buf. timeout_ms 0 = none. Returns 0, or -1 (connection closed / no mux). */
int  jl_conn_reply_add(jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz);
/* Forget a waiter without calling it (its coroutine was abandoned). */
void jl_conn_reply_cancel(jl_conn *c, jl_reply *r);

/* Publish with optional reply and headers table at hidx (0 = none). Returns
 * NATS_OK or a status; raises on bad headers. */
natsStatus jl_conn_publish(lua_State *L, jl_conn *c, const char *subj, const char *reply,
                           const char *data, size_t len, int hidx, const char *fname);

/* Run the script's nc:on(event) callback, if any, in its own coroutine:
 * fn(nc, info) -- or for "error", fn(nc, code, detail, subject). */
void jl_conn_fire_event(jl_conn *c, int ev, const char *info);
void jl_conn_fire_error(jl_conn *c, const char *code, const char *detail, const char *subject);
/* Fail every waiting request whose subject (RT_PERM_PUBLISH) or reply
 * (RT_PERM_REPLY) p names with err/detail. */
void jl_conn_fail_replies(jl_conn *c, const rt_perm *p, const char *err, const char *detail);

/* Close now from the loop thread, writing out what is buffered first. */
void jl_conn_close_now(jl_conn *c);

/* A fresh "_INBOX.<nuid>." prefix for a wildcard reply subscription: its
 * length, or 0 on failure. */
size_t jl_inbox_prefix(char *buf, size_t size);

/* ---- the write path (lwire.c) ----
 * Every write of cnats' buffer made by jetlua goes through jl_conn_write
 * (the libuv adapter's writes report through a hook), so c->wt knows which
 * bytes left the buffer: an async publish is never re-sent while its first
 * copy still waits in it. */
#define JL_MAX_BUFFERED (64 * 1024 * 1024)
void jl_conn_write(jl_conn *c);
/* After a publish of about `bytes`: write out what cnats buffered when it is
 * a lot (loop thread; every 64 publishes or 1 MiB); updates c->over_buffered. */
void jl_conn_write_some(jl_conn *c, size_t bytes);
/* Top of the loop (no Lua running): wake nc:publish calls waiting for the
 * buffer to drain, when it did (or the connection went down). */
void jl_conn_bp_check(jl_conn *c);
/* nc:publish found the buffer over max_buffered: yield co until it drains. */
int  jl_conn_bp_wait(jl_conn *c, rt_co *co);
/* The buffer was dropped (disconnect) or the connection closed. */
void jl_conn_bp_event(jl_conn *c, int ev);
/* End position in the write stream of what is buffered now. */
uint64_t jl_conn_wpos(jl_conn *c);
/* 1 while a message appended at (epoch, end) still waits in the buffer. */
int  jl_conn_wbuffered(jl_conn *c, uint32_t epoch, uint64_t end);
void jl_inject_wire(lua_State *L);

/* Control-line limits (lwire.c): raise "<fname>: bad argument '<arg>': ..."
 * when a PUB/HPUB line of these parts (hdr: 1 if headers are sent) or a SUB
 * line would pass the server's max_control_line. */
void jl_check_pub_line(lua_State *L, const char *fname, const char *arg, size_t subj, size_t reply,
                       int hdr, size_t data_len);
void jl_check_sub_line(lua_State *L, const char *fname, size_t subj, size_t queue);

/* Server errors (lperm.c), loop thread: a permissions violation (text as
 * the server sent it) fails the requests, async publishes and
 * subscriptions it names and reaches nc:on("error"). */
void jl_conn_server_error(jl_conn *c, natsStatus s, const char *text);
/* lsub.c: the server refused the subscription(s) p names: stop them. */
void jl_conn_subs_denied(jl_conn *c, const rt_perm *p, const char *text);

/* cnats' last error text on this thread, without its "(file.c:N): "
 * prefix; "" when none. */
const char *jl_last_error(void);

/* Push a status as (nil, code, detail); returns 3. */
int jl_push_status(lua_State *L, natsStatus s, const char *what);

/* The connection behind the nc userdata at idx; raises if it is not one. */
jl_conn *jl_conn_check(lua_State *L, int idx, const char *fname);
/* Raise "<fname>: the connection is closed" unless it is usable. */
void jl_conn_check_open(lua_State *L, jl_conn *c, const char *fname);
/* 1 when the connection is closed for the script (closed, nc:close()
 * called, or never connected): I/O calls then return nil, "closed". */
int  jl_conn_is_closed(jl_conn *c);
/* Push nil, "closed", "<fname>: the connection is closed"; returns 3. */
int  jl_conn_closed_result(lua_State *L, const char *fname);

#define CONN_MT "jetlua.conn"
typedef struct { jl_conn *c; } conn_ud;

/* Shared between lconn.c and lconnect.c. */
const char *jl_status_code(natsStatus s);
int  jl_conn_mux_start(jl_conn *c);
void jl_conn_hook_begin(rt_hook *h);
void jl_conn_hook_force(rt_hook *h);
void jl_conn_on_disconnected(natsConnection *nc, void *cl);
void jl_conn_on_reconnected(natsConnection *nc, void *cl);
void jl_conn_on_closed(natsConnection *nc, void *cl);
void jl_conn_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *cl);
void jl_inject_connect(lua_State *L);

/* Subscriptions (lsub.c). */
int  jl_conn_subscribe(lua_State *L);      /* nc:subscribe(subject, fn, opts) */
void jl_inject_sub(lua_State *L);
/* Loop thread, after each read event and when the connection closes:
 * hand queued messages to the handlers. */
void jl_conn_after_read(void *conn);
/* Drain every subscription of c (lsub.c); jl_conn_maybe_done closes the
 * connection when the last one is done and c is draining. */
void jl_conn_drain_subs(jl_conn *c);

/* Message userdata (lmsg.c): takes ownership of m; c may be NULL. */
typedef struct lmsg lmsg;
void jl_msg_push(lua_State *L, natsMsg *m, jl_conn *c);
lmsg *jl_msg_push_ud(lua_State *L, natsMsg *m, jl_conn *c);
/* JetStream: was an ack/nak/term sent? Send one (payload "+ACK", "-NAK",
 * "+WPI", "+TERM"): 0 sent, -1 not possible, -2 already acked. */
int jl_msg_acked(lmsg *u);
/* A consumer's ack counters, shared with its messages (reference counted:
 * a message may outlive its consumer). */
typedef struct jl_ackstats {
    int refs;
    uint64_t acked, naked, termed, in_progress;
    struct rt_series *m_acked, *m_naked, *m_termed;   /* per-consumer metrics, or NULL */
} jl_ackstats;
void jl_msg_set_stats(lmsg *u, jl_ackstats *st);
void jl_ackstats_release(jl_ackstats *st);
int jl_msg_send_ack(lmsg *u, const char *payload);
natsMsg *jl_msg_check(lua_State *L, int idx, const char *fname);
/* The fields of a JetStream "$JS.ACK..." reply subject (v1: 9 tokens, v2:
 * 11 or more, with a domain): f[i] points into the subject, len[i] long. */
enum { JL_ACK_STREAM = 0, JL_ACK_CONSUMER, JL_ACK_DELIVERED, JL_ACK_STREAM_SEQ, JL_ACK_CONSUMER_SEQ,
       JL_ACK_TIMESTAMP, JL_ACK_PENDING };
typedef struct jl_ack_meta {
    const char *f[7];
    size_t      len[7];
    const char *domain;        /* NULL: none (v1, or "_") */
    size_t      domain_len;
} jl_ack_meta;
/* 0, or -1 when reply is not an ack subject */
int jl_ack_parse(const char *reply, jl_ack_meta *m);
lmsg *jl_msg_check_ud(lua_State *L, int idx, const char *fname);
/* An output published for u (js:publish_async{ack = u}) was added / ended:
 * u is acked when the last one succeeds, nak'd when one fails. */
void jl_msg_output_add(lmsg *u);
void jl_msg_output_done(lmsg *u, int ok);
/* Outputs linked to u are still waiting for their PubAck: they own its ack. */
int jl_msg_handed_off(lmsg *u);

#endif
