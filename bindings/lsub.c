/*
 * lsub.c - core NATS subscriptions: nc:subscribe(subject, fn, {queue=,
 * concurrency=, pending_limit=}) and sub:unsubscribe(), sub:drain(),
 * sub:stats().
 *
 * Path of a message: the loop thread reads the socket (rt_natsuv.c) and
 * cnats' parser queues the message in the subscription, which is a cnats
 * *synchronous* subscription; right after the read event, pump() takes
 * messages out with natsSubscription_NextMsg(timeout 0) and runs the
 * handler in a pooled coroutine. No cnats delivery thread, no inbox hop.
 * At most `concurrency` handlers run at once (default 1: in order); the
 * rest stay in cnats' queue, bounded by `pending_limit` (cnats' pending
 * limits: beyond it cnats drops and reports a slow consumer).
 *
 * Each subscription is a client of its connection (jl_client): the
 * connection calls it after every read (pump), to drain, and when the
 * server refused it; it knows nothing else about subscriptions.
 *
 * Lifetime: the jl_sub struct lives until cnats reports the subscription
 * closed (unsubscribe, drain done or connection closed) and no handler of it
 * still runs, and no drain flush of it is in flight. Until it is finalized
 * it holds: a registry ref on the Lua userdata, the handler ref, its place
 * among the connection's clients (a connection ref) and a liveness ref.
 */
#include "jl.h"
#include "lconn.h"
#include "lmsg.h"
#include "rt_mem.h"
#include "rt_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_MT "jetlua.sub"

enum { SUB_ACTIVE = 0, SUB_DRAINING, SUB_UNSUBSCRIBED };

typedef struct jl_sub {
    jl_client         client;        /* first: the connection calls us through it */
    jl_conn          *conn;
    natsSubscription *sub;
    int               handler_ref;
    int               self_ref;
    int               state;
    int               completed;     /* cnats will deliver nothing more */
    int               concurrency;
    int               running;
    int               pumping;
    int               finalized;
    int64_t           limit;         /* <= 0: unlimited */
    uint64_t          delivered;
    rt_co            *drain_co;
    int               drain_flushed; /* the UNSUB reached the server: what it
                                        sent before is queued here */
    int               flushing;      /* a drain flush is in flight: it frees a
                                        finalized s */
    struct sub_ud    *ud;
    char             *queue;         /* queue group, or NULL */
    const char       *error;         /* "permission_denied" once the server refused it */
    rt_hook           hook;          /* drains the subscription at shutdown */
    char              what[160];     /* "handler for 'subject'" */
} jl_sub;

typedef struct sub_ud {
    jl_sub  *s;            /* NULL once the subscription is finalized */
    uint64_t delivered;    /* kept for sub:stats() after the end */
    const char *error;     /* why it ended, if the server ended it (static) */
} sub_ud;

static void finalize(jl_sub *s);
static void handler_done(rt_co *co, int ok, void *data);


static rt_series *m_received, *m_handler_errors;

static void dispatch(jl_sub *s, natsMsg *m)
{
    lua_State *L = RT->L;
    if (!m_received) {
        m_received = rt_metric_simple("jetlua_messages_received_total", RT_COUNTER,
                                      "core NATS messages handed to subscription handlers");
        m_handler_errors = rt_metric_simple("jetlua_handler_errors_total", RT_COUNTER,
                                            "handlers that raised an error");
    }
    rt_metric_add(m_received, 1);
    s->running++;
    s->delivered++;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
    jl_msg_push(L, m, s->conn);
    rt_co_spawn(L, 1, s->what, handler_done, s);
}

/* Hand queued messages to handlers while the concurrency limit allows. The
 * guard keeps this iterative: a handler that ends at once calls
 * handler_done -> pump from inside dispatch. */
static void pump(jl_sub *s)
{
    if (s->pumping || s->finalized)
        return;
    s->pumping = 1;
    while (!s->completed && s->state != SUB_UNSUBSCRIBED &&
           (s->running < s->concurrency || (s->state == SUB_DRAINING && s->running == 0))) {
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, s->sub, 0);
        if (st == NATS_OK)
            dispatch(s, m);
        else if (st == NATS_TIMEOUT) {
            if (s->state == SUB_DRAINING && s->drain_flushed && s->running == 0) {
                natsSubscription_Unsubscribe(s->sub);   /* drained: close it locally */
                s->completed = 1;
            }
            break;                       /* nothing queued */
        }
        else if (st == NATS_SLOW_CONSUMER || st == NATS_NO_RESPONDERS)
            continue;                    /* slow consumer: reported by the connection's error
                                            event; a 503 status: cnats consumed it */
        else
            s->completed = 1;            /* unsubscribed, drained or connection closed */
    }
    s->pumping = 0;
    if ((s->completed || s->state == SUB_UNSUBSCRIBED) && s->running == 0)
        finalize(s);
}

static void handler_done(rt_co *co, int ok, void *data)
{
    jl_sub *s = data;
    if (ok == 0)
        rt_metric_add(m_handler_errors, 1);
    s->running--;
    pump(s);
}

static void sub_after_read(jl_client *k) { pump((jl_sub *)k); }

/* Drain (ours: cnats never ends the drain of a synchronous subscription
 * whose queue is already empty): cnats sends the UNSUB at once; a flush
 * round trip then proves the server got it, so everything it sent before is
 * in our queue; when that queue is empty and no handler runs, it is done. */
typedef struct drain_flush {
    uv_work_t  w;
    jl_sub    *s;
    jl_conn   *c;        /* retained: the worker uses c->nc */
    natsStatus st;
} drain_flush;

static void drain_flush_work(uv_work_t *w)
{
    drain_flush *f = w->data;
    f->st = natsConnection_FlushTimeout(f->c->nc, 10000);
}

static void drain_flush_after(uv_work_t *w, int status)
{
    drain_flush *f = w->data;
    jl_sub *s = f->s;
    jl_conn_release(f->c);
    free(f);
    s->flushing = 0;
    if (s->finalized) {          /* ended while the flush was out: ours to free */
        free(s);
        return;
    }
    if (s->state == SUB_DRAINING && !s->drain_flushed) {
        s->drain_flushed = 1;
        pump(s);
    }
}

/* Returns 1 if s is now draining. Returns 0 if it was stopped instead (no
 * server to drain against): then s may already be freed, do not touch it. */
static int start_drain(jl_sub *s)
{
    if (s->state == SUB_DRAINING)
        return 1;
    if (s->state != SUB_ACTIVE || s->completed)
        return 0;
    if (s->conn->state == JL_CONN_CONNECTED || s->conn->state == JL_CONN_DRAINING) {
        if (natsSubscription_Drain(s->sub) == NATS_OK) {
            s->state = SUB_DRAINING;
            return 1;
        }
    }
    s->state = SUB_UNSUBSCRIBED;
    natsSubscription_Unsubscribe(s->sub);
    pump(s);          /* may finalize (free) s */
    return 0;
}

/* A flush after the UNSUB, on a worker thread (it waits for the PONG). One
 * per subscription at a time: a flush still out was sent after its UNSUB. */
static void flush_drain(jl_sub *s)
{
    drain_flush *f;
    if (s->flushing || s->drain_flushed)
        return;
    f = rt_xcalloc(1, sizeof *f);
    f->w.data = f;
    f->s = s;
    f->c = s->conn;
    jl_conn_retain(f->c);
    s->flushing = 1;
    uv_queue_work(RT->loop, &f->w, drain_flush_work, drain_flush_after);
}

/* Stop receiving, handle what already arrived: the connection drains, or
 * the shutdown's first phase (sub_hook_begin). */
static void drain(jl_sub *s)
{
    if (start_drain(s))
        flush_drain(s);
}

static void sub_drain_cb(jl_client *k) { drain((jl_sub *)k); }

static void finalize(jl_sub *s)
{
    lua_State *L = RT->L;
    rt_co *dco = s->drain_co;
    jl_conn *c = s->conn;

    s->finalized = 1;
    s->drain_co = NULL;
    rt_hook_done(&s->hook);
    rt_hook_remove(&s->hook);
    if (s->ud) {
        s->ud->delivered = s->delivered;
        s->ud->error = s->error;
        s->ud->s = NULL;
    }
    free(s->queue);
    s->queue = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->self_ref);
    natsSubscription_Destroy(s->sub);
    s->sub = NULL;
    rt_unref();
    /* may close the connection (a drain's last client) and run Lua (nc:drain
     * returns): s is unlinked, and nothing reaches it from Lua any more */
    jl_conn_client_remove(c, &s->client);
    if (!s->flushing)
        free(s);              /* else drain_flush_after frees it */
    if (dco && rt_co_prepare(dco)) {
        lua_pushboolean(dco->L, 1);
        rt_co_resume(dco, 1);
    }
}

/* Shutdown, first phase: stop receiving, handle what already arrived. */
static void sub_hook_begin(rt_hook *h)
{
    drain(h->data);
}

/* The server refused the subscription(s) p names (lperm.c): stop them. */
static void sub_denied(jl_client *k, const rt_perm *p, const char *text)
{
    jl_sub *s = (jl_sub *)k;
    if (s->state == SUB_UNSUBSCRIBED || s->error || !rt_perm_matches(p, natsSubscription_GetSubject(s->sub)) ||
        strcmp(s->queue ? s->queue : "", p->queue) != 0)
        return;
    rt_warn("subscription to '%s'%s%s stopped: the server refused it (%s)", natsSubscription_GetSubject(s->sub),
            s->queue ? " in queue " : "", s->queue ? s->queue : "", text);
    s->error = "permission_denied";
    s->state = SUB_UNSUBSCRIBED;
    natsSubscription_Unsubscribe(s->sub);
    pump(s);          /* finalizes now unless a handler still runs */
}

/* ---- Lua API ---- */

/* nc:subscribe(subject, fn, {queue=, concurrency=, pending_limit=}) */
static int nc_subscribe(lua_State *L)
{
    static const char *const keys[] = {"queue", "concurrency", "pending_limit", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:subscribe");
    size_t slen = 0;
    const char *subj = jl_check_subject(L, 2, "nc:subscribe", 1, &slen);
    const char *queue = NULL;
    double conc = 1, limit = 65536;
    jl_sub *s;
    sub_ud *ud;
    natsStatus st;

    jl_check_function(L, 3, "nc:subscribe", "handler");
    if (jl_opt_table(L, 4, "nc:subscribe", "opts")) {
        jl_check_keys(L, 4, "nc:subscribe", keys);
        queue = jl_field_string(L, 4, "queue", "nc:subscribe", NULL);
        conc = jl_field_number(L, 4, "concurrency", "nc:subscribe", 1);
        limit = jl_field_number(L, 4, "pending_limit", "nc:subscribe", 65536);
        if (queue && (!*queue || jl_subject_invalid(queue, strlen(queue), 0)))
            jl_argerror(L, "nc:subscribe", "queue", "invalid queue group name '%s'", queue);
        if (conc < 1)
            jl_argerror(L, "nc:subscribe", "concurrency", "must be >= 1, got %g", conc);
    }
    jl_check_sub_line(L, "nc:subscribe", slen, queue ? strlen(queue) : 0);
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:subscribe");
    jl_conn_check_open(L, c, "nc:subscribe");

    s = rt_xcalloc(1, sizeof *s);
    s->conn = c;
    s->concurrency = (int)conc;
    s->limit = (int64_t)limit;
    snprintf(s->what, sizeof s->what, "handler for '%s'%s%s", subj,
             queue ? " in queue " : "", queue ? queue : "");
    if (queue)
        st = natsConnection_QueueSubscribeSync(&s->sub, c->nc, subj, queue);
    else
        st = natsConnection_SubscribeSync(&s->sub, c->nc, subj);
    if (st != NATS_OK) {
        free(s);
        return jl_push_status(L, st, "nc:subscribe");
    }
    s->queue = queue ? rt_xstrdup(queue) : NULL;
    natsSubscription_SetPendingLimits(s->sub, s->limit > 0 ? (int)s->limit : -1, -1);
    s->client.after_read = sub_after_read;
    s->client.drain = sub_drain_cb;
    s->client.sub_denied = sub_denied;
    jl_conn_client_add(c, &s->client);   /* retains c */

    lua_pushvalue(L, 3);
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ud = lua_newuserdata(L, sizeof *ud);
    ud->s = s;
    ud->delivered = 0;
    s->ud = ud;
    luaL_getmetatable(L, SUB_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->hook.begin = sub_hook_begin;
    s->hook.phase = RT_PHASE_STOP;
    s->hook.data = s;
    rt_hook_add(&s->hook);
    rt_ref();
    return 1;
}

static jl_sub *check_sub(lua_State *L, const char *fname)
{
    sub_ud *ud = luaL_testudata(L, 1, SUB_MT);
    if (!ud)
        jl_argerror(L, fname, "self", "subscription expected, got %s", jl_typename(L, 1));
    return ud->s;   /* NULL once closed */
}

/* sub:unsubscribe(): stop now; queued messages are dropped. */
static int sub_unsubscribe(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:unsubscribe");
    if (!s || s->state == SUB_UNSUBSCRIBED) {
        lua_pushboolean(L, 0);
        return 1;
    }
    s->state = SUB_UNSUBSCRIBED;
    natsSubscription_Unsubscribe(s->sub);
    pump(s);          /* finalizes now unless a handler still runs */
    lua_pushboolean(L, 1);
    return 1;
}

static void drain_cancel(rt_co *co, void *p)
{
    ((jl_sub *)p)->drain_co = NULL;
}

/* sub:drain(): stop receiving, handle what already arrived, then close.
 * Yields until done; returns true. */
static int sub_drain(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:drain");
    rt_co *co = rt_co_current(L, "sub:drain");

    if (!s) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (s->state == SUB_UNSUBSCRIBED)
        return jl_fail(L, "closed", "sub:drain: the subscription was unsubscribed");
    if (s->drain_co)
        return jl_fail(L, "draining", "sub:drain: another coroutine is already draining it");
    if (s->state == SUB_ACTIVE) {
        sub_ud *ud = lua_touserdata(L, 1);
        if (start_drain(s)) {
            flush_drain(s);
        } else if (!ud->s) {                 /* stopped and finalized at once */
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    s->drain_co = co;
    return rt_co_wait(co, drain_cancel, s);
}

static int sub_stats(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:stats");
    lua_newtable(L);
    if (!s) {
        /* finished: what it handled stays readable */
        sub_ud *ud = lua_touserdata(L, 1);
        lua_pushnumber(L, (double)ud->delivered);
        lua_setfield(L, -2, "delivered");
        lua_pushnumber(L, 0);
        lua_setfield(L, -2, "pending");
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, "running");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "closed");
        if (ud->error) {
            lua_pushstring(L, ud->error);
            lua_setfield(L, -2, "error");
        }
        return 1;
    }
    lua_pushnumber(L, (double)s->delivered);
    lua_setfield(L, -2, "delivered");
    {
        int64_t dropped = 0;
        int pending = 0, bytes = 0;
        natsSubscription_GetDropped(s->sub, &dropped);
        natsSubscription_GetPending(s->sub, &pending, &bytes);
        lua_pushnumber(L, (double)dropped);
        lua_setfield(L, -2, "dropped");
        lua_pushnumber(L, pending > 0 ? pending : 0);
        lua_setfield(L, -2, "pending");
    }
    lua_pushinteger(L, s->running);
    lua_setfield(L, -2, "running");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "closed");
    if (s->error) {
        lua_pushstring(L, s->error);
        lua_setfield(L, -2, "error");
    }
    return 1;
}

/* sub:_set_handler(fn): hot reload swaps the handler in place; messages
 * already handed to the old one finish there. */
static int sub_set_handler(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:_set_handler");
    jl_check_function(L, 2, "sub:_set_handler", "fn");
    if (!s) {
        lua_pushboolean(L, 0);
        return 1;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
    lua_pushvalue(L, 2);
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 1);
    return 1;
}

static int sub_subject(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:subject");
    if (s)
        lua_pushstring(L, natsSubscription_GetSubject(s->sub));
    else
        lua_pushnil(L);
    return 1;
}

void jl_inject_sub(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"unsubscribe", sub_unsubscribe}, {"drain", sub_drain},
        {"stats", sub_stats}, {"subject", sub_subject}, {"_set_handler", sub_set_handler},
        {NULL, NULL}};
    static const luaL_Reg conn_methods[] = {{"subscribe", nc_subscribe}, {NULL, NULL}};
    jl_newclass(L, SUB_MT, methods, NULL);
    jl_conn_add_methods(L, conn_methods);
}
