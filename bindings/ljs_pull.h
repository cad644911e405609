/*
 * ljs_pull.h - the pull engine behind js:consume, js:messages and js:fetch,
 * shared by its three binding files (private to them):
 *
 *   ljs_pull.c      the engine at work: the subscription's pump, the
 *                   buffer, sending pulls, statuses, consumer info, the
 *                   periodic tick, errors reported to the script; its end
 *                   (close, finalize)
 *   ljs_pull_life.c its start: subscribe, join the connection and the
 *                   shutdown, connection events, drain, free
 *   ljs_consume.c   js:consume: the handle every mode returns (jet._js_pull,
 *                   stop, drain, stats, ...) and the handler runners
 *   ljs_messages.c  js:messages and js:fetch: it:next() and f:fetch(), the
 *                   coroutine that waits for messages
 *
 * The engine (the first two) never calls the modes by name: each engine has
 * the jl_pull_ops of its mode (below), so the calls run one way, down.
 *
 * What the engine decides (the request table, the window, the refill rule,
 * status -> action, back-off, heartbeats, limits) is runtime/rt_pull.c,
 * without Lua or cnats, with a unit test (tests/unit/test_pull.c). The
 * options are checked by jetlua/pull.lua.
 *
 * Lifetime: the engine holds a registry ref on its userdata (self_ref)
 * until it is finalized (closed, no handler running, subscription gone);
 * __gc frees it. Nothing that may raise runs once self_ref is taken.
 */
#ifndef JETLUA_LJS_PULL_H
#define JETLUA_LJS_PULL_H

#include "jl.h"
#include "lconn.h"
#include "lmsg.h"
#include "ljs_consumer_watch.h"
#include "rt_health.h"
#include "rt_metrics.h"
#include "rt_pull.h"

#define JL_PULL_MT "jetlua.pull"
#define JL_PULL_INFO_TIMEOUT_MS 5000

enum { JL_PULL_ACTIVE = 0, JL_PULL_DRAINING, JL_PULL_STOPPING, JL_PULL_CLOSED };

typedef struct jl_pull jl_pull;

/* What the engine calls above it, given by the mode: ljs_consume.c for
 * js:consume, ljs_messages.c for js:messages and js:fetch (NULL: nothing
 * to do in that mode). */
typedef struct jl_pull_ops {
    void (*dispatch)(jl_pull *p);                   /* start handlers for buffered messages */
    void (*keepalive)(jl_pull *p, uint64_t now);    /* +WPI for long-running handlers */
    void (*wake_next)(jl_pull *p, const char *code);/* hand a message (or code) to it:next() */
    void (*fetch_finish)(jl_pull *p, const char *code, const char *detail);
} jl_pull_ops;

extern const jl_pull_ops jl_pull_consume_ops;      /* ljs_consume.c */
extern const jl_pull_ops jl_pull_messages_ops;     /* ljs_messages.c: messages and fetch */

/* The handle's userdata: every mode's handle is a JL_PULL_MT. */
typedef struct jl_pull_ud { jl_pull *p; } jl_pull_ud;

/* A handler runner's slot (consume). Allocated one by one: a running
 * handler holds a pointer to its slot while the slots array grows. */
typedef struct jl_pull_slot {
    jl_pull  *p;
    lmsg     *u;          /* the message its handler runs on, or NULL */
    int       idx;        /* index in the slots table, from 1 */
    int       busy;
    uint64_t  last_wpi;   /* mono ms: start, or the last automatic +WPI */
    uint64_t  started_ns;
} jl_pull_slot;

struct jl_pull {
    jl_client  client;    /* first: the connection calls us through it */
    const jl_pull_ops *ops;/* the mode's side */
    jl_conn   *c;         /* retained for the engine's whole life */
    natsSubscription *sub;
    rt_pull    w;         /* requests, window, back-off, liveness (rt_pull.h) */
    char       prefix[64];/* "_INBOX.<nuid>.": request k replies to "<prefix>k" */
    size_t     prefix_len;
    char      *next_subj; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> */
    char       what[192]; /* "consumer ORDERS/worker", for logs */
    char       where[200];/* "handler failed on ORDERS/worker": the key of repeated errors */
    int        state;
    int        auto_ack;
    int        handler_ref, err_ref, self_ref;
    /* buffered messages: a ring of natsMsg* */
    natsMsg  **q;
    int        qhead, qlen, qcap;
    int64_t    qbytes;    /* counted with max_bytes only */
    int        running;
    jl_pull_slot **slots;
    int        nslots;
    int        pumping, dispatching;
    uv_timer_t *tick;     /* rt_pull_tick, every w.tick_ms */
    uint64_t   tick_ms;   /* the period it runs at */
    uv_timer_t *wait_timer;    /* it:next(timeout), fetch's expiry */
    uv_timer_t *backoff_timer; /* pulls again when a back-off ends */
    int        live;      /* holds rt_ref (consume) */
    int        registered;/* a client of the connection */
    int        hooked;    /* the shutdown hook is added */
    int        finalized;
    int        flushing;  /* a drain flush runs on a worker: do not free */
    rt_hook    hook;
    /* waiters */
    rt_co     *next_co;   /* it:next() or fetch */
    rt_co     *drain_co;
    int        fetch_n, fetch_got, fetch_done;
    const char *end_code; /* fetch: the error that ended it */
    char       end_detail[200];
    const char *term_code;/* consume/messages: the terminal error, for it:next() */
    char       term_detail[200];
    /* what the server says about the consumer (ljs_consumer_watch.c) */
    jl_cwatch *cw;
    int64_t    num_pending, num_ack_pending;
    jl_ackstats *st;
    /* per-consumer metrics (NULL for fetch) */
    rt_series *mc_delivered, *mc_redelivered, *mc_errors, *mc_buffered, *mc_in_flight;
    rt_series *mc_seconds, *mc_pending, *mc_ack_pending, *mc_max_deliveries;
    rt_health *health;    /* /readyz: consume and messages, until the script ends it */
    /* stats */
    uint64_t   delivered, errors, handler_errors, redelivered, max_deliveries;
};

/* ---- ljs_pull_life.c ---- */

/* A new engine in mode for next_subj (nothing raises; the caller fills the
 * options and refs, then calls jl_pull_start). */
jl_pull *jl_pull_new(jl_conn *c, rt_pull_mode mode, const jl_pull_ops *ops, const char *next_subj,
                     const char *what);
/* Subscribe, watch the consumer (info_subj/adv_subj, NULL: no watch),
 * join the connection and the shutdown, start the timers and the first
 * pull: 0, or -1 with what the script gets (the engine is then closed). */
int  jl_pull_start(jl_pull *p, const char *info_subj, const char *adv_subj, const char **code,
                   const char **detail);
/* Free what C owns (from __gc; the Lua refs are the caller's). */
void jl_pull_free(jl_pull *p);
/* Stop pulling; finish what arrived and what the server already sent. */
void jl_pull_start_drain(jl_pull *p);

/* ---- ljs_pull.c ---- */

/* Stop now: no more pulls; buffered messages are nak'd (nak=1) or
 * dropped; running handlers finish. code: what a waiting it:next() gets. */
void jl_pull_close(jl_pull *p, int nak, const char *code);
void jl_pull_maybe_finalize(jl_pull *p);
/* Leave the subscription, the consumer watch and the connection. */
void jl_pull_unsubscribe(jl_pull *p);
/* Leave the shutdown. */
void jl_pull_unhook(jl_pull *p);
/* The engine behind the handle at index 1; raises when it is gone. */
jl_pull *jl_pull_check(lua_State *L, const char *fname);

uint64_t jl_pull_now(void);
/* Metrics, and the consumer watch (info_subj/adv_subj; not for fetch). */
void jl_pull_observe(jl_pull *p, const char *info_subj, const char *adv_subj);
/* Move everything cnats queued into the buffer. */
void jl_pull_drain_sub(jl_pull *p);
/* Send one pull request: 0, or -1 (the table is full, or cnats refused). */
int  jl_pull_send(jl_pull *p, int64_t batch, int64_t bytes);
/* Tell the script (on_error) or the log; count: an error in stats(). */
void jl_pull_tell(jl_pull *p, const char *code, const char *detail, int terminal, int count);
/* Take what arrived, run handlers / wake waiters, pull, finalize. */
void jl_pull_pump(jl_pull *p);
/* Ask for more when held dropped to the refill threshold. */
void jl_pull_maybe_pull(jl_pull *p);
natsMsg *jl_pull_q_pop(jl_pull *p);
void jl_pull_gauges(jl_pull *p);
/* (Re)start the tick timer at w.tick_ms when it changed, or always (force). */
void jl_pull_tick_sync(jl_pull *p, int force);

/* ---- the mode's side, through p->ops ---- */

/* Start runners for buffered messages, up to the concurrency (consume). */
static inline void jl_pull_dispatch(jl_pull *p)
{
    if (p->ops->dispatch)
        p->ops->dispatch(p);
}
/* +WPI for handlers running longer than in_progress (consume). */
static inline void jl_pull_keepalive(jl_pull *p, uint64_t now)
{
    if (p->ops->keepalive)
        p->ops->keepalive(p, now);
}
/* Hand one buffered message to a waiting it:next(), or end it with code. */
static inline void jl_pull_wake_next(jl_pull *p, const char *code)
{
    if (p->ops->wake_next)
        p->ops->wake_next(p, code);
}
/* A fetch is over: hand over what arrived, with code (NULL: no error). */
static inline void jl_pull_fetch_finish(jl_pull *p, const char *code, const char *detail)
{
    if (p->ops->fetch_finish)
        p->ops->fetch_finish(p, code, detail);
}

/* ---- ljs_messages.c ---- */

void jl_pull_wait_stop(jl_pull *p);
int  jl_pull_lua_next(lua_State *L);     /* it:next([timeout]) */
int  jl_pull_lua_call(lua_State *L);     /* for msg in it do */
int  jl_pull_lua_fetch(lua_State *L);    /* f:fetch() */

#endif
