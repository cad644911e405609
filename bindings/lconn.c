/*
 * lconn.c - the connection's life: references, state checks, its clients,
 * the events cnats reports, nc:flush, nc:drain, nc:close, nc:on,
 * nc:status, nc:stats, and the shutdown hook. jet.connect is in
 * lconnect.c, the write buffer in lwire.c, nc:publish in lpublish.c,
 * nc:subscribe in lsub.c, nc:request in lrequest.c, server errors in
 * lperm.c.
 *
 * The connection knows its users only as clients (jl_client, jl_conn.h):
 * core subscriptions, the request mux, the async publisher and pull
 * consumers. It calls
 * them through that interface (after a read, on an event, to drain, when
 * the server refused something) and none of them is called by name.
 *
 * I/O: cnats' libuv adapter moves the socket reads and writes into our loop.
 * cnats still calls message and event callbacks on its own threads; those
 * only post to the inbox (rt_post). Nothing here blocks the loop:
 *  - the first connect: see lconnect.c.
 *  - flush waits for a PONG: it runs on a libuv worker thread.
 *  - requests wait on the request mux (lrequest.c), a passive client: it
 *    hears of the close through the client interface like the others.
 */
#include "jl.h"
#include "lconn.h"
#include "lwire.h"
#include "rt_health.h"
#include "rt_list.h"
#include "rt_mem.h"
#include "rt_metrics.h"
#include "rt_secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ev_names[JL_EV_COUNT] = {"disconnected", "reconnected", "closed", "error"};

/* ---- readiness (rt_health.h) and the write before each poll (lwire.c) ---- */

void jl_conn_track(jl_conn *c)
{
    char what[160];
    snprintf(what, sizeof what, "connection %s", c->name);
    c->health = rt_health_add(RT_HEALTH_CONNECTION, what);
    c->tracked = 1;
    jl_wire_add(c);
}

static void untrack(jl_conn *c)
{
    if (!c->tracked)
        return;
    c->tracked = 0;
    if (!c->closing)             /* not closed by the script: stay unready */
        rt_health_fail(c->health, "is closed (the client gave up reconnecting)");
    rt_health_release(c->health);
    c->health = NULL;
    jl_wire_remove(c);
}

/* ---- refcount ---- */

void jl_conn_retain(jl_conn *c) { c->refs++; }

void jl_conn_release(jl_conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->nc)
        natsConnection_Destroy(c->nc);
    if (c->opts)
        natsOptions_Destroy(c->opts);
    free(c);
}

int jl_conn_bad_self(lua_State *L, int idx, const char *fname)
{
    jl_argerror(L, fname, "self", "connection expected, got %s (call it as nc:%s)",
                jl_typename(L, idx), strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
}

int jl_conn_closed_result(lua_State *L, const char *fname)
{
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushfstring(L, "%s: the connection is closed", fname);
    return 3;
}

int jl_conn_not_open(lua_State *L, jl_conn *c, const char *fname)
{
    luaL_error(L, "%s: the connection is %s", fname, c->state == JL_CONN_CONNECTING ? "not connected yet" : "closed");
    /* cppcheck-suppress unreachableCode ; for compilers that do not know luaL_error never returns */
    abort();
}

size_t jl_inbox_prefix(char *buf, size_t size)
{
    char *inbox = NULL;
    int n;
    if (natsInbox_Create((natsInbox **)&inbox) != NATS_OK)
        return 0;
    n = snprintf(buf, size, "%s.", inbox);
    natsInbox_Destroy((natsInbox *)inbox);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Messages waiting in sub (cnats' queue), or 1 when it cannot say (closed:
 * NextMsg then reports it). NextMsg on an empty subscription formats a
 * "timeout" error text (vsnprintf) every time: with 1,000 idle consumers
 * pumped after every read, that was most of the process's idle CPU. */
int jl_sub_pending(natsSubscription *sub)
{
    int msgs = 0, bytes = 0;
    if (!sub)
        return 0;
    if (natsSubscription_GetPending(sub, &msgs, &bytes) != NATS_OK)
        return 1;
    return msgs;
}

int jl_fast_sub_drain(natsSubscription *const *subp, int (*fn)(void *arg, natsMsg *m), void *arg)
{
    int n503 = 0;
    while (*subp && jl_sub_pending(*subp) > 0) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, *subp, 0);
        if (s == NATS_OK) {
            if (fn(arg, m))
                break;
        } else if (s == NATS_NO_RESPONDERS) {
            n503++;
        } else if (s != NATS_SLOW_CONSUMER) {
            break; /* closed */
        }
    }
    return n503;
}

/* ---- clients: subscriptions, async publishers, pull consumers ---- */

void jl_conn_client_add(jl_conn *c, jl_client *k)
{
    c->list_gen++;
    RT_LIST_PUSH(c->clients, k);
    if (k->passive)
        c->npassive++;
    else
        c->nsubs++;
    jl_conn_retain(c);
}

void jl_conn_client_remove(jl_conn *c, jl_client *k)
{
    c->list_gen++;
    RT_LIST_UNLINK(c->clients, k);
    if (k->passive)
        c->npassive--;
    else
        c->nsubs--;
    jl_conn_maybe_done(c);
    jl_conn_release(c);
}

/* The loops below run handlers, and a handler may unsubscribe (free) the
 * next subscription or stop another consumer: when the connection's list
 * changed, start over (pumping twice is harmless). Found with a test: a
 * handler unsubscribing the next subscription was a use-after-free
 * (test_regress_unsubscribe_next.lua). */
void jl_conn_after_read(void *conn)
{
    jl_conn *c = conn;
    unsigned gen;
again:
    gen = c->list_gen;
    for (jl_client *k = c->clients, *next; k; k = next) {
        next = k->next;
        if (k->after_read)
            k->after_read(k);
        if (c->list_gen != gen)
            goto again;
    }
}

/* Drain every client; jl_conn_maybe_done closes the connection when the
 * last one is done and c is draining. */
static void drain_clients(jl_conn *c)
{
    unsigned gen;
again:
    gen = c->list_gen;
    for (jl_client *k = c->clients, *next; k; k = next) {
        next = k->next;      /* drain may remove k */
        if (k->drain)
            k->drain(k);     /* idempotent */
        if (c->list_gen != gen)
            goto again;
    }
}

/* Each client hears each event once. An event may resume coroutines (the
 * mux fails its requests at close, the publisher its futures) that stop
 * or free another client: start over when the list changed, skipping who
 * already heard it. */
static void clients_event(jl_conn *c, int ev)
{
    unsigned gen, round = ++c->ev_round;
again:
    gen = c->list_gen;
    for (jl_client *k = c->clients, *next; k; k = next) {
        next = k->next;
        if (k->ev_round == round)
            continue;
        k->ev_round = round;
        if (k->event)
            k->event(k, ev);
        if (c->list_gen != gen)
            goto again;
    }
}

void jl_conn_add_methods(lua_State *L, const luaL_Reg *methods)
{
    luaL_getmetatable(L, CONN_MT);
    lua_getfield(L, -1, "__index");
    luaL_register(L, NULL, methods);
    lua_pop(L, 2);
}

void jl_conn_maybe_done(jl_conn *c)
{
    rt_co *dco;
    if (c->nsubs > 0)
        return;
    if (c->state == JL_CONN_DRAINING && !c->drain_closing) {
        /* subscriptions drained: cnats' drain now only flushes and closes */
        c->drain_closing = 1;
        if (natsConnection_DrainTimeout(c->nc, (int64_t)(c->drain_timeout * 1000.0)) != NATS_OK)
            jl_conn_close_now(c);
        return;
    }
    if (c->state != JL_CONN_CLOSED)
        return;
    /* every subscription finished its queued messages: nc:drain returns */
    if ((dco = c->drain_co)) {
        c->drain_co = NULL;
        if (rt_co_prepare(dco)) {
            lua_pushboolean(dco->L, 1);
            rt_co_resume(dco, 1);
        }
    }
    if (c->npassive == 0 && !c->hook.done) {
        rt_hook_done(&c->hook);
        rt_hook_remove(&c->hook);
    }
}

/* ---- nc:flush ---- */

typedef struct flush_op {
    uv_work_t  w;
    jl_conn   *c;
    rt_co     *co;       /* NULL once abandoned */
    int64_t    ms;
    natsStatus s;
} flush_op;

static void flush_work(uv_work_t *w)
{
    flush_op *op = w->data;
    op->s = natsConnection_FlushTimeout(op->c->nc, op->ms);
}

static void flush_after(uv_work_t *w, int status)
{
    flush_op *op = w->data;
    lua_State *T = op->co ? rt_co_prepare(op->co) : NULL;
    rt_co *co = op->co;
    int n = 1;

    if (T) {
        if (op->s == NATS_OK)
            lua_pushboolean(T, 1);
        else
            n = jl_push_status(T, op->s, "nc:flush");
    }
    jl_conn_release(op->c);
    free(op);
    if (T)
        rt_co_resume(co, n);
}

static void flush_cancel(rt_co *co, void *p)
{
    ((flush_op *)p)->co = NULL;    /* the worker still finishes; after() frees */
}

/* nc:flush([timeout]) -> true | nil, err */
static int nc_flush(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:flush");
    double timeout = 10.0;
    rt_co *co;
    flush_op *op;

    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "nc:flush", "timeout");
        if (!(timeout > 0))
            jl_argerror(L, "nc:flush", "timeout", "must be > 0 seconds");
    }
    co = rt_co_current(L, "nc:flush");
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:flush");
    jl_conn_check_open(L, c, "nc:flush");
    op = rt_xcalloc(1, sizeof *op);
    op->w.data = op;
    op->c = c;
    op->co = co;
    op->ms = (int64_t)(timeout * 1000.0);
    jl_conn_retain(c);
    uv_queue_work(RT->loop, &op->w, flush_work, flush_after);
    return rt_co_wait(co, flush_cancel, op);
}

/* ---- drain / close ---- */

static void drain_cancel(rt_co *co, void *p)
{
    jl_conn *c = p;
    c->drain_co = NULL;
}

/* nc:drain([timeout]): stop taking messages, let handlers see what arrived,
 * flush what was published, then close. Yields until closed. */
static int nc_drain(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:drain");
    double timeout = RT->cfg.shutdown_timeout;
    rt_co *co;
    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "nc:drain", "timeout");
        if (!(timeout > 0))
            jl_argerror(L, "nc:drain", "timeout", "must be > 0 seconds");
    }
    co = rt_co_current(L, "nc:drain");
    if (c->state == JL_CONN_CLOSED) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (c->drain_co)
        return jl_fail(L, "draining", "nc:drain: another coroutine is already draining this connection");
    if (c->state != JL_CONN_CONNECTED)
        return jl_fail(L, c->state == JL_CONN_DRAINING ? "draining" : "not_connected",
                       "nc:drain: the connection is not connected");
    c->closing = 1;
    c->state = JL_CONN_DRAINING;
    rt_health_fail(c->health, "is draining");
    c->drain_co = co;
    c->drain_timeout = timeout;
    drain_clients(c);
    jl_conn_maybe_done(c);      /* no subscriptions: flush and close now */
    return rt_co_wait(co, drain_cancel, c);
}

/* nc:close(): close now; messages not yet handled are dropped. */
static int nc_close(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:close");
    if (c->state != JL_CONN_CLOSED && c->nc && !c->dropping) {
        c->closing = 1;
        c->dropping = 1;
        jl_conn_close_now(c);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int nc_status(lua_State *L)
{
    static const char *names[] = {"connecting", "connected", "reconnecting", "draining", "closed"};
    jl_conn *c = jl_conn_check(L, 1, "nc:status");
    lua_pushstring(L, c->dropping ? "closed" : names[c->state]);
    return 1;
}

static int nc_connected_url(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:connected_url");
    char buf[256], shown[256];
    if (c->nc && c->state == JL_CONN_CONNECTED &&
        natsConnection_GetConnectedUrl(c->nc, buf, sizeof buf) == NATS_OK)
        lua_pushstring(L, rt_redact_url(buf, shown, sizeof shown));   /* never a password */
    else
        lua_pushnil(L);
    return 1;
}

/* nc:on(event, fn): fn(nc, info) runs in its own coroutine. */
static int nc_on(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:on");
    const char *ev = jl_check_string(L, 2, "nc:on", "event", NULL);
    int i;
    for (i = 0; i < JL_EV_COUNT; i++)
        if (strcmp(ev, ev_names[i]) == 0)
            break;
    if (i == JL_EV_COUNT)
        jl_argerror(L, "nc:on", "event", "unknown event '%s' (disconnected, reconnected, closed or error)", ev);
    if (!lua_isnil(L, 3))
        jl_check_function(L, 3, "nc:on", "fn");
    luaL_unref(L, LUA_REGISTRYINDEX, c->ev_ref[i]);
    lua_pushvalue(L, 3);
    c->ev_ref[i] = lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* nc:jetstream(opts) and nc:service(opts) live in Lua (jetlua/js.lua,
 * jetlua/service.lua), loaded on first use so scripts without them never
 * pay for them: require(module)[fn](nc, opts), with nres results. */
static int call_module(lua_State *L, const char *fname, const char *module, const char *fn, int nres)
{
    jl_conn_check(L, 1, fname);
    lua_settop(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, fn);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, nres);
    return nres == LUA_MULTRET ? lua_gettop(L) - 3 : nres;
}

static int nc_jetstream(lua_State *L)
{
    return call_module(L, "nc:jetstream", "jetlua.js", "jetstream", 1);
}

static int nc_service(lua_State *L)
{
    return call_module(L, "nc:service", "jetlua.service", "service", LUA_MULTRET);
}

/* nc:stats() -> {in_msgs=, out_msgs=, in_bytes=, out_bytes=, reconnects=,
 * buffered=, max_buffered=, fast_replies=}: cnats' counters, what waits in
 * the write buffer (bytes not yet taken by the socket), and the request
 * replies read on the loop (lmux.c, the fast path) */
static int nc_stats(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:stats");
    uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnects = 0;
    natsStatistics *st = NULL;
    int buffered = 0;

    if (c->nc && natsStatistics_Create(&st) == NATS_OK) {
        if (natsConnection_GetStats(c->nc, st) == NATS_OK)
            natsStatistics_GetCounts(st, &in_msgs, &in_bytes, &out_msgs, &out_bytes, &reconnects);
        natsStatistics_Destroy(st);
    }
    if (c->nc && !jl_conn_is_closed(c))
        buffered = natsConnection_Buffered(c->nc);
    lua_createtable(L, 0, 8);
    lua_pushnumber(L, (lua_Number)in_msgs);    lua_setfield(L, -2, "in_msgs");
    lua_pushnumber(L, (lua_Number)out_msgs);   lua_setfield(L, -2, "out_msgs");
    lua_pushnumber(L, (lua_Number)in_bytes);   lua_setfield(L, -2, "in_bytes");
    lua_pushnumber(L, (lua_Number)out_bytes);  lua_setfield(L, -2, "out_bytes");
    lua_pushnumber(L, (lua_Number)c->reconnects); lua_setfield(L, -2, "reconnects");
    lua_pushinteger(L, buffered > 0 ? buffered : 0); lua_setfield(L, -2, "buffered");
    lua_pushinteger(L, c->max_buffered);       lua_setfield(L, -2, "max_buffered");
    lua_pushnumber(L, (lua_Number)c->fast_replies);
    lua_setfield(L, -2, "fast_replies");
    return 1;
}

static int nc_tostring(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:__tostring");
    lua_pushfstring(L, "jetlua.conn(%s)", c->name);
    return 1;
}

/* ---- events from cnats threads ---- */

void jl_conn_fire_event(jl_conn *c, int ev, const char *info)
{
    lua_State *L = RT->L;
    if (c->ev_ref[ev] == LUA_NOREF || c->self_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ev_ref[ev]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
    if (info)
        lua_pushstring(L, info);
    else
        lua_pushnil(L);
    rt_co_spawn(L, 2, "connection event handler", NULL, NULL);
}

void jl_conn_fire_error(jl_conn *c, const char *code, const char *detail, const char *subject)
{
    lua_State *L = RT->L;
    if (c->ev_ref[JL_EV_ERROR] == LUA_NOREF || c->self_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ev_ref[JL_EV_ERROR]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
    lua_pushstring(L, code);
    lua_pushstring(L, detail ? detail : code);
    if (subject)
        lua_pushstring(L, subject);
    else
        lua_pushnil(L);
    rt_co_spawn(L, 4, "connection error handler", NULL, NULL);
}

static void conn_closed(jl_conn *c)
{
    lua_State *L = RT->L;

    c->state = JL_CONN_CLOSED;
    untrack(c);
    rt_info("connection %s closed", c->name);
    jl_conn_bp_event(c, JL_EV_CLOSED);
    jl_conn_after_read(c); /* subscriptions see the close and complete */
    clients_event(c, JL_EV_CLOSED);
    jl_conn_fire_event(c, JL_EV_CLOSED, NULL);
    jl_conn_maybe_done(c);
    for (int i = 0; i < JL_EV_COUNT; i++) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->ev_ref[i]);
        c->ev_ref[i] = LUA_NOREF;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, c->self_ref);
    c->self_ref = LUA_NOREF;
    jl_conn_release(c);   /* the connection's own ref */
}

static void conn_event(void *a, void *b)
{
    jl_conn *c = a;
    int ev = (int)(intptr_t)b;
    char url[256] = "", raw[256] = "";

    if (c->state == JL_CONN_CLOSED)
        return;
    switch (ev) {
    case JL_EV_DISCONNECTED:
        if (c->closing)
            break;      /* cnats reports a disconnect on close too */
        if (RT->exiting) {
            /* shutting down: waiting for a reconnect would only stall it */
            rt_warn("connection %s: disconnected during shutdown; closing it", c->name);
            c->closing = 1;
            natsConnection_Close(c->nc);
            break;
        }
        c->state = JL_CONN_RECONNECTING;
        rt_health_fail(c->health, "is reconnecting");
        rt_metric_add(rt_metric_simple("jetlua_disconnects_total", RT_COUNTER,
                                       "connections lost (each is followed by reconnect attempts)"), 1);
        rt_warn("connection %s: disconnected, reconnecting", c->name);
        jl_conn_bp_event(c, ev);
        clients_event(c, ev);
        jl_conn_fire_event(c, ev, NULL);
        break;
    case JL_EV_RECONNECTED:
        if (c->state == JL_CONN_RECONNECTING) {
            c->state = JL_CONN_CONNECTED;
            rt_health_ok(c->health);
        }
        c->reconnects++;
        rt_metric_add(rt_metric_simple("jetlua_reconnects_total", RT_COUNTER, "successful reconnects"), 1);
        natsConnection_GetConnectedUrl(c->nc, raw, sizeof raw);
        rt_redact_url(raw, url, sizeof url);                            /* never a password */
        rt_info("connection %s: reconnected to %s", c->name, url);
        clients_event(c, ev);
        jl_conn_fire_event(c, ev, url);
        break;
    case JL_EV_CLOSED:
        conn_closed(c);
        break;
    }
}

void jl_conn_on_disconnected(natsConnection *nc, void *cl) { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_DISCONNECTED); }
void jl_conn_on_reconnected(natsConnection *nc, void *cl)  { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_RECONNECTED); }
void jl_conn_on_closed(natsConnection *nc, void *cl)       { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_CLOSED); }

/* ---- shutdown hook ---- */

/* The shutdown timed out: close now, dropping whatever is still queued. */
void jl_conn_hook_force(rt_hook *h)
{
    jl_conn *c = h->data;
    if (c->state != JL_CONN_CLOSED && c->nc && !c->dropping) {
        c->closing = 1;
        c->dropping = 1;
        natsConnection_Close(c->nc);
    }
}

void jl_conn_hook_begin(rt_hook *h)
{
    jl_conn *c = h->data;
    if (c->state == JL_CONN_CLOSED || !c->nc) {
        rt_hook_done(h);
        return;
    }
    if (c->state == JL_CONN_DRAINING)
        return;
    c->closing = 1;
    /* Drain: handlers see what already arrived, publishes get flushed. A
     * connection that cannot drain (reconnecting) is closed. */
    if (c->state != JL_CONN_CONNECTED) {
        natsConnection_Close(c->nc);
        return;
    }
    c->state = JL_CONN_DRAINING;
    c->drain_timeout = RT->cfg.shutdown_timeout * 0.8;
    drain_clients(c);
    jl_conn_maybe_done(c);
}

static int conn_gc(lua_State *L)
{
    conn_ud *u = lua_touserdata(L, 1);
    if (u->c) {
        /* Only reachable when closed or never connected (an open connection
         * holds its own userdata through self_ref). */
        jl_conn_release(u->c);
        u->c = NULL;
    }
    return 0;
}

void jl_inject_conn(lua_State *L)
{
    static const luaL_Reg methods[] = {{"flush", nc_flush},
                                       {"drain", nc_drain},
                                       {"close", nc_close},
                                       {"status", nc_status},
                                       {"on", nc_on},
                                       {"connected_url", nc_connected_url},
                                       {"jetstream", nc_jetstream},
                                       {"service", nc_service},
                                       {"stats", nc_stats},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", conn_gc}, {"__tostring", nc_tostring}, {NULL, NULL}};

    jl_newclass(L, CONN_MT, methods, meta);
}
