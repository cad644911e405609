/*
 * lsub.c - core NATS subscriptions: nc:subscribe(subject, fn, {queue=,
 * concurrency=, pending_limit=}) and sub:unsubscribe(), sub:drain(),
 * sub:stats().
 *
 * Path of a message: cnats delivery thread -> on_msg (counts it, posts it)
 * -> inbox -> sub_deliver on the loop -> the handler runs in a pooled
 * coroutine. At most `concurrency` handlers run at once (default 1: in
 * order); the rest wait in a FIFO. `pending_limit` bounds what is queued
 * (inbox + FIFO); beyond it messages are dropped and reported as a slow
 * consumer, like cnats' own pending limits.
 *
 * Lifetime: the jl_sub struct lives until cnats reported completion
 * (unsubscribe, drain or connection closed), its FIFO is empty and no
 * handler of it still runs. Until then it holds: a registry ref on the Lua
 * userdata, the handler ref, a connection ref and a liveness ref.
 */
#include "jl.h"
#include "lconn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_MT "jetlua.sub"

enum { SUB_ACTIVE = 0, SUB_DRAINING, SUB_UNSUBSCRIBED };

struct jl_sub {
    jl_conn          *conn;
    natsSubscription *sub;
    int               handler_ref;
    int               self_ref;
    int               state;
    int               completed;     /* cnats will deliver nothing more */
    int               concurrency;
    int               running;
    int               pumping;
    int64_t           limit;         /* <= 0: unlimited */
    atomic_llong      queued;        /* in the inbox or the FIFO */
    atomic_llong      dropped;
    long long         dropped_reported;
    uint64_t          last_drop_log;
    uint64_t          delivered;
    natsMsg         **fifo;          /* ring buffer */
    size_t            fifo_cap, fifo_head, fifo_n;
    rt_co            *drain_co;
    struct sub_ud    *ud;
    rt_hook           hook;          /* drains the subscription at shutdown */
    char              what[160];     /* "handler for 'subject'" */
};

typedef struct sub_ud { jl_sub *s; } sub_ud;

static void finalize(jl_sub *s);

/* ---- FIFO ---- */

static int fifo_push(jl_sub *s, natsMsg *m)
{
    if (s->fifo_n == s->fifo_cap) {
        size_t ncap = s->fifo_cap ? s->fifo_cap * 2 : 64;
        natsMsg **nf = malloc(ncap * sizeof *nf);
        if (!nf)
            return -1;
        for (size_t i = 0; i < s->fifo_n; i++)
            nf[i] = s->fifo[(s->fifo_head + i) % s->fifo_cap];
        free(s->fifo);
        s->fifo = nf;
        s->fifo_cap = ncap;
        s->fifo_head = 0;
    }
    s->fifo[(s->fifo_head + s->fifo_n) % s->fifo_cap] = m;
    s->fifo_n++;
    return 0;
}

static natsMsg *fifo_pop(jl_sub *s)
{
    natsMsg *m = s->fifo[s->fifo_head];
    s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
    s->fifo_n--;
    return m;
}

static void fifo_discard(jl_sub *s)
{
    while (s->fifo_n) {
        natsMsg_Destroy(fifo_pop(s));
        atomic_fetch_sub(&s->queued, 1);
    }
}

/* ---- dispatch ---- */

static void handler_done(rt_co *co, int ok, void *data);

static void dispatch(jl_sub *s, natsMsg *m)
{
    lua_State *L = RT->L;
    s->running++;
    s->delivered++;
    atomic_fetch_sub(&s->queued, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
    jl_msg_push(L, m, s->conn);
    rt_co_spawn(L, 1, s->what, handler_done, s);
}

/* Run queued messages while the concurrency limit allows. The guard keeps
 * this iterative: a handler that ends at once calls handler_done -> pump
 * from inside dispatch, and must not recurse once per queued message. */
static void pump(jl_sub *s)
{
    if (s->pumping)
        return;
    s->pumping = 1;
    while (s->fifo_n && s->running < s->concurrency && s->state != SUB_UNSUBSCRIBED)
        dispatch(s, fifo_pop(s));
    s->pumping = 0;
    if (s->completed && s->running == 0 && (s->fifo_n == 0 || s->state == SUB_UNSUBSCRIBED))
        finalize(s);
}

static void handler_done(rt_co *co, int ok, void *data)
{
    jl_sub *s = data;
    s->running--;
    pump(s);
}

static void report_drops(jl_sub *s)
{
    long long d = atomic_load(&s->dropped);
    uint64_t now = rt_mono_ms();
    if (d == s->dropped_reported || now - s->last_drop_log < 1000)
        return;
    rt_warn("slow consumer on '%s': %lld message(s) dropped so far (pending_limit %lld)",
            natsSubscription_GetSubject(s->sub), d, (long long)s->limit);
    s->dropped_reported = d;
    s->last_drop_log = now;
    jl_conn_fire_event(s->conn, JL_EV_ERROR, "slow_consumer");
}

static void sub_deliver(void *a, void *b)
{
    jl_sub *s = a;
    natsMsg *m = b;

    if (s->state == SUB_UNSUBSCRIBED) {
        natsMsg_Destroy(m);
        atomic_fetch_sub(&s->queued, 1);
        return;
    }
    if (s->dropped_reported != atomic_load_explicit(&s->dropped, memory_order_relaxed))
        report_drops(s);
    if (s->fifo_n == 0 && s->running < s->concurrency && !s->pumping) {
        dispatch(s, m);     /* the fast path: no queueing */
        return;
    }
    if (fifo_push(s, m) != 0) {
        natsMsg_Destroy(m);
        atomic_fetch_sub(&s->queued, 1);
        atomic_fetch_add(&s->dropped, 1);
        return;
    }
    pump(s);
}

static void sub_completed(void *a, void *b)
{
    jl_sub *s = a;
    s->completed = 1;
    if (s->conn->dropping) {        /* nc:close(): what is queued is dropped */
        s->state = SUB_UNSUBSCRIBED;
        fifo_discard(s);
    }
    pump(s);
}

/* cnats delivery thread */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    jl_sub *s = closure;
    long long q = atomic_fetch_add_explicit(&s->queued, 1, memory_order_relaxed);
    if (s->limit > 0 && q >= s->limit) {
        atomic_fetch_sub(&s->queued, 1);
        atomic_fetch_add(&s->dropped, 1);
        natsMsg_Destroy(m);
        return;
    }
    if (rt_post_try(sub_deliver, s, m) != 0) {
        atomic_fetch_sub(&s->queued, 1);
        natsMsg_Destroy(m);
    }
}

/* cnats delivery thread: nothing more will be delivered. */
static void on_complete(void *closure)
{
    rt_post(sub_completed, closure, NULL);
}

static void finalize(jl_sub *s)
{
    lua_State *L = RT->L;
    rt_co *dco = s->drain_co;

    s->drain_co = NULL;
    fifo_discard(s);
    rt_hook_done(&s->hook);
    rt_hook_remove(&s->hook);
    if (s->ud)
        s->ud->s = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->self_ref);
    natsSubscription_Destroy(s->sub);
    s->conn->nsubs--;
    jl_conn_maybe_done(s->conn);
    jl_conn_release(s->conn);
    free(s->fifo);
    free(s);
    rt_unref();
    if (dco && rt_co_prepare(dco)) {
        lua_pushboolean(dco->L, 1);
        rt_co_resume(dco, 1);
    }
}

/* Shutdown, first phase: stop receiving, handle what already arrived. */
static void sub_hook_begin(rt_hook *h)
{
    jl_sub *s = h->data;
    if (s->state != SUB_ACTIVE || s->completed)
        return;
    /* A drain needs the server; without one, stop at once (cnats then
     * completes the subscription and finalize() marks the hook done). */
    if (s->conn->state == JL_CONN_CONNECTED && natsSubscription_Drain(s->sub) == NATS_OK) {
        s->state = SUB_DRAINING;
    } else {
        s->state = SUB_UNSUBSCRIBED;
        fifo_discard(s);
        if (natsSubscription_Unsubscribe(s->sub) != NATS_OK)
            natsConnection_Close(s->conn->nc);
    }
    /* done when finalize() runs; a sub that cannot drain (connection
     * gone) is completed by cnats anyway */
}

/* ---- Lua API ---- */

int jl_conn_subscribe(lua_State *L)
{
    static const char *const keys[] = {"queue", "concurrency", "pending_limit", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:subscribe");
    const char *subj = jl_check_subject(L, 2, "nc:subscribe", 1, NULL);
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
    jl_conn_check_open(L, c, "nc:subscribe");

    s = calloc(1, sizeof *s);
    s->conn = c;
    s->concurrency = (int)conc;
    s->limit = (int64_t)limit;
    snprintf(s->what, sizeof s->what, "handler for '%s'%s%s", subj,
             queue ? " in queue " : "", queue ? queue : "");
    if (queue)
        st = natsConnection_QueueSubscribe(&s->sub, c->nc, subj, queue, on_msg, s);
    else
        st = natsConnection_Subscribe(&s->sub, c->nc, subj, on_msg, s);
    if (st != NATS_OK) {
        free(s);
        return jl_push_status(L, st, "nc:subscribe");
    }
    /* Our own counter bounds the queue; cnats only hands messages over. */
    natsSubscription_SetPendingLimits(s->sub, -1, -1);
    natsSubscription_SetOnCompleteCB(s->sub, on_complete, s);

    lua_pushvalue(L, 3);
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ud = lua_newuserdata(L, sizeof *ud);
    ud->s = s;
    s->ud = ud;
    luaL_getmetatable(L, SUB_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    jl_conn_retain(c);
    c->nsubs++;
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
        jl_argerror(L, fname, "self", "subscription expected, got %s", luaL_typename(L, 1));
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
    fifo_discard(s);
    if (natsSubscription_Unsubscribe(s->sub) != NATS_OK && !s->completed) {
        /* the connection is gone: cnats completes the sub by itself */
    }
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
    natsStatus st;

    if (!s) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (s->state == SUB_UNSUBSCRIBED)
        return jl_fail(L, "closed", "sub:drain: the subscription was unsubscribed");
    if (s->drain_co)
        return jl_fail(L, "draining", "sub:drain: another coroutine is already draining it");
    if (s->state == SUB_ACTIVE) {
        st = natsSubscription_Drain(s->sub);
        if (st != NATS_OK && !s->completed)
            return jl_push_status(L, st, "sub:drain");
        s->state = SUB_DRAINING;
    }
    s->drain_co = co;
    return rt_co_wait(co, drain_cancel, s);
}

static int sub_stats(lua_State *L)
{
    jl_sub *s = check_sub(L, "sub:stats");
    lua_newtable(L);
    if (!s) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "closed");
        return 1;
    }
    lua_pushnumber(L, (double)s->delivered);
    lua_setfield(L, -2, "delivered");
    lua_pushnumber(L, (double)atomic_load(&s->dropped));
    lua_setfield(L, -2, "dropped");
    lua_pushnumber(L, (double)atomic_load(&s->queued));
    lua_setfield(L, -2, "pending");
    lua_pushinteger(L, s->running);
    lua_setfield(L, -2, "running");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "closed");
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
        {"stats", sub_stats}, {"subject", sub_subject}, {NULL, NULL}};
    jl_newclass(L, SUB_MT, methods, NULL);
}
