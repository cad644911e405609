/*
 * ljs_publisher.h - the async publisher behind js:publish_async, shared by
 * its two files (private to them):
 *   ljs_publish.c       the Lua side: the publisher object, publish,
 *                       wait_slot, complete, stats, and the futures;
 *   ljs_publish_acks.c  what happens to each publish after it: sending and
 *                       holding, the PubAck path, the sweep of ack
 *                       timeouts, retries and failures, the connection's
 *                       events (disconnect, drain, close);
 *   ljs_publish_wait.c  the coroutines waiting for room or for every ack.
 * ljs_publish.c calls down into the other two, ljs_publish_acks.c into
 * ljs_publish_wait.c, never the other way.
 * The pure bookkeeping (window, lists, retry decisions) is rt_pubwin.h;
 * PubAck parsing is rt_jsack.h; the futures are jl_future (lfuture.h).
 *
 * Lifetime: the publisher lives while its Lua userdata, any future, or its
 * registration as a connection client exists (pa.refs). An entry lives
 * from publish until its PubAck or final failure; its future (a Lua
 * userdata) may outlive it and is NULLed in the entry when collected.
 */
#ifndef JETLUA_LJS_PUBLISHER_H
#define JETLUA_LJS_PUBLISHER_H

#include "jl.h"
#include "lconn.h"
#include "lfuture.h"
#include "lmsg.h"
#include "lpublish.h"
#include "lwire.h"
#include "rt_list.h"
#include "rt_map.h"
#include "rt_prefixes.h"
#include "rt_pubwin.h"

#define PA_MT "jetlua.js_publisher"
#define FUT_MT "jetlua.publish_future"

enum { W_SLOT = 0, W_COMPLETE };

typedef struct pa pa;
typedef struct pa_entry pa_entry;
typedef struct pa_fut pa_fut;
typedef struct pa_wait pa_wait;

struct pa_entry {
    rt_pubent q;  /* first: token, size, deadlines, tries, list links */
    natsMsg *msg; /* subject, reply, headers, data: re-sent as is */
    pa_fut *fut;  /* NULL once the future was collected (or never made) */
    lmsg *up;     /* a consumed message to ack on success ({ack = msg}) */
    int up_ref;   /* keeps it alive */
};

/* A publish_async future (Lua userdata). */
struct pa_fut {
    jl_future f; /* first: the jl_future is the userdata */
    pa *p;
    pa_entry *e; /* while pending */
    uint64_t seq;
    int duplicate;
    const char *stream, *domain; /* interned in p */
    int observed;                /* the script saw the failure (wait, on, status) */
    char *what;                  /* failed: "'subject' (msg_id x)" for a late log */
};

/* A coroutine waiting for room in the window or for every ack. */
struct pa_wait {
    pa *p;
    rt_co *co;
    int kind; /* W_SLOT, W_COMPLETE */
    uv_timer_t *timer;
    pa_wait *next, *prev;
};

typedef struct pa_str {
    struct pa_str *next;
    char s[];
} pa_str;

struct pa {
    jl_client client; /* first: the connection calls us through it */
    jl_conn *c;
    natsSubscription *fast; /* sync, "<prefix>*": read on the loop after each read */
    natsSubscription *sub;  /* async, "<prefix>s.*": through the inbox, sees 503s */
    char prefix[64];
    size_t prefix_len;
    rt_map known;      /* subjects a PubAck came back for (hashed): fast replies */
    rt_prefixes fastpre; /* subject prefixes a stream is known to listen on (an open KV bucket's) */
    uint64_t anon_503; /* 503s on the fast sub, not yet matched to an entry */
    uint64_t next_token;
    rt_map map; /* token -> entry */
    rt_pubq q;  /* window, sent and held lists, pending count */
    int max_pending;
    uint32_t timeout_ms;
    int retry; /* default retries per message (0: off) */
    uint32_t retry_delay_ms;
    int err_ref;   /* js:on_publish_error callback */
    int codes_ref; /* err_code -> stable code, from js.lua */
    int refs;
    int registered; /* a client of the connection */
    int draining;
    int finished; /* no more publishes; waiting for the sub to complete */
    int sub_done; /* cnats completed the subscription */
    int live;     /* holds an rt_ref while entries are pending */
    uv_timer_t *sweep;
    pa_wait *waits, *waits_tail;
    pa_str *strs;
    char idbase[32];
    uint64_t idseq;
    uint64_t published, acked, failed, retried, unacked_at_exit;
    uint64_t held_in_buffer; /* timeouts re-armed: the message was still in the write buffer */
    uint64_t fast_acks;      /* PubAcks read on the loop (the fast path) */
};

/* ---- ljs_publish_acks.c ---- */
/* Subscribe for PubAcks, register with the connection: 0, or -1. */
int jl_pub_start(pa *p);
/* A new entry (already in the map and the window) goes out or is held. */
void jl_pub_enter(pa *p, pa_entry *e);
/* Let waiters go after acks, failures or sends; finish a drain. */
void jl_pub_settle(pa *p);
void jl_pub_release(pa *p);
const char *jl_pub_intern(pa *p, const char *s, size_t n);
/* A failure nobody looked at: say so, and let the exit status say so. */
void jl_pub_report_unobserved(const char *what, const char *code, const char *detail);
/* 1: publishes to subj take the fast reply "<prefix><token>", 0: the slow
 * one "<prefix>s.<token>" (see ljs_publish_acks.c, "the ack path"). */
int jl_pub_fast(pa *p, const char *subj, size_t len);
/* Subjects under prefix take the fast reply: a stream listens on all of
 * them (the caller knows). 0, or -1 when the prefix is empty or too long
 * (they then learn subject by subject, as any other). See rt_prefixes.h. */
int jl_pub_fast_prefix(pa *p, const char *prefix, size_t len);

/* ---- ljs_publish_wait.c ---- */
/* Yield co until the window has room (W_SLOT) or nothing is pending
 * (W_COMPLETE), or timeout (>= 0 s) passes: then it gets the count still
 * pending. */
int jl_pub_wait(pa *p, rt_co *co, int kind, double timeout);
/* Wake the waiters of a kind while their condition holds. */
void jl_pub_wake(pa *p, int kind);

#endif
