/*
 * lconn.c - jet.connect and the connection object: publish, request, flush,
 * drain, close, on(event), status.
 *
 * I/O: cnats' libuv adapter moves the socket reads and writes into our loop.
 * cnats still calls message and event callbacks on its own threads; those
 * only post to the inbox (rt_post). Nothing here blocks the loop:
 *  - first connect: cnats' natsConnection_Connect does a blocking TCP connect
 *    and handshake, and the adapter requires the first attach on the loop
 *    thread. So we first probe the server with a non-blocking libuv TCP
 *    connect; only a server that answers is handed to natsConnection_Connect,
 *    whose handshake is then a few round trips (bounded by its timeout).
 *    We retry ourselves (cnats' RetryOnFailedConnect would attach from its
 *    reconnect thread, which the adapter refuses).
 *  - flush waits for a PONG: it runs on a libuv worker thread.
 *  - requests use one wildcard reply subscription per connection (the mux)
 *    and a map from reply token to waiter, with a libuv timer per request.
 */
#include "jl.h"
#include "lconn.h"
#include "rt_server.h"

#include <nats/adapters/libuv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "jetlua.conn"

typedef struct { jl_conn *c; } conn_ud;

static const char *const ev_names[JL_EV_COUNT] = {"disconnected", "reconnected", "closed", "error"};

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
    rt_map_free(&c->replies);
    free(c);
}

jl_conn *jl_conn_check(lua_State *L, int idx, const char *fname)
{
    conn_ud *u = luaL_testudata(L, idx, CONN_MT);
    if (!u)
        jl_argerror(L, fname, "self", "connection expected, got %s (call it as nc:%s)",
                    luaL_typename(L, idx), strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
    return u->c;
}

void jl_conn_check_open(lua_State *L, jl_conn *c, const char *fname)
{
    if (c->state == JL_CONN_CLOSED || c->state == JL_CONN_CONNECTING || !c->nc)
        luaL_error(L, "%s: the connection is %s", fname,
                   c->state == JL_CONN_CLOSED ? "closed" : "not connected yet");
}

static const char *status_code(natsStatus s)
{
    const char *code;
    switch (s) {
    case NATS_TIMEOUT:              code = "timeout"; break;
    case NATS_CONNECTION_CLOSED:    code = "closed"; break;
    case NATS_NO_RESPONDERS:        code = "no_responders"; break;
    case NATS_INSUFFICIENT_BUFFER:  code = "buffer_full"; break;
    case NATS_MAX_PAYLOAD:          code = "max_payload"; break;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:        code = "auth_failed"; break;
    case NATS_SSL_ERROR:            code = "tls_error"; break;
    case NATS_DRAINING:             code = "draining"; break;
    case NATS_NO_SERVER:            code = "no_server"; break;
    default:                        code = "nats_error"; break;
    }
    return code;
}

int jl_push_status(lua_State *L, natsStatus s, const char *what)
{
    const char *code = status_code(s);
    lua_pushnil(L);
    lua_pushstring(L, code);
    lua_pushfstring(L, "%s: %s", what, natsStatus_GetText(s));
    return 3;
}

/* ---- publish ---- */

static int add_header_value(lua_State *L, natsMsg *m, const char *key, int vidx, const char *fname)
{
    if (lua_type(L, vidx) != LUA_TSTRING)
        jl_argerror(L, fname, "headers", "value of '%s' must be a string or a list of strings, got %s",
                    key, luaL_typename(L, vidx));
    return natsMsgHeader_Add(m, key, lua_tostring(L, vidx)) == NATS_OK ? 0 : -1;
}

natsStatus jl_conn_publish(lua_State *L, jl_conn *c, const char *subj, const char *reply,
                           const char *data, size_t len, int hidx, const char *fname)
{
    natsMsg *m = NULL;
    natsStatus s;

    if (!hidx) {
        if (reply)
            return natsConnection_PublishRequest(c->nc, subj, reply, data, (int)len);
        return natsConnection_Publish(c->nc, subj, data, (int)len);
    }
    if (lua_type(L, hidx) != LUA_TTABLE)
        jl_argerror(L, fname, "headers", "table expected, got %s", luaL_typename(L, hidx));
    s = natsMsg_Create(&m, subj, reply, data, (int)len);
    if (s != NATS_OK)
        return s;
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        const char *key;
        if (lua_type(L, -2) != LUA_TSTRING) {
            natsMsg_Destroy(m);
            jl_argerror(L, fname, "headers", "header names must be strings");
        }
        key = lua_tostring(L, -2);
        if (!*key || strpbrk(key, " \t\r\n:")) {
            natsMsg_Destroy(m);
            jl_argerror(L, fname, "headers", "invalid header name '%s'", key);
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            int n = (int)lua_objlen(L, -1);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                add_header_value(L, m, key, lua_gettop(L), fname);
                lua_pop(L, 1);
            }
        } else {
            add_header_value(L, m, key, lua_gettop(L), fname);
        }
        lua_pop(L, 1);
    }
    s = natsConnection_PublishMsg(c->nc, m);
    natsMsg_Destroy(m);
    return s;
}

/* nc:publish(subject, data, {headers=, reply=}) */
static int nc_publish(lua_State *L)
{
    static const char *const keys[] = {"headers", "reply", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:publish");
    size_t len = 0;
    const char *subj = jl_check_subject(L, 2, "nc:publish", 0, NULL);
    const char *data = "";
    const char *reply = NULL;
    int hidx = 0;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, "nc:publish", "data", &len);
    if (jl_opt_table(L, 4, "nc:publish", "opts")) {
        jl_check_keys(L, 4, "nc:publish", keys);
        reply = jl_field_string(L, 4, "reply", "nc:publish", NULL);
        if (reply && jl_subject_invalid(reply, strlen(reply), 0))
            jl_argerror(L, "nc:publish", "reply", "invalid reply subject '%s' (%s)", reply,
                        jl_subject_invalid(reply, strlen(reply), 0));
        lua_getfield(L, 4, "headers");
        if (!lua_isnil(L, -1))
            hidx = lua_gettop(L);
    }
    jl_conn_check_open(L, c, "nc:publish");
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:publish");
    if (s != NATS_OK)
        return jl_push_status(L, s, "nc:publish");
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- reply mux ---- */

static void reply_timer_closed(uv_handle_t *h) { free(h); }

static void reply_finish(jl_reply *r, natsMsg *m, const char *err)
{
    if (r->timer) {
        uv_timer_stop(r->timer);
        uv_close((uv_handle_t *)r->timer, reply_timer_closed);
        r->timer = NULL;
    }
    r->fn(r, m, err);
}

static void reply_timeout(uv_timer_t *t)
{
    jl_reply *r = t->data;
    rt_map_del(&r->conn->replies, r->token);
    reply_finish(r, NULL, "timeout");
}

static void mux_deliver(void *a, void *b)
{
    jl_conn *c = a;
    natsMsg *m = b;
    const char *subj = natsMsg_GetSubject(m);
    jl_reply *r = NULL;

    if (strncmp(subj, c->mux_prefix, c->mux_prefix_len) == 0) {
        uint64_t tok = strtoull(subj + c->mux_prefix_len, NULL, 10);
        r = rt_map_del(&c->replies, tok);
    }
    if (r)
        reply_finish(r, m, NULL);
    else
        natsMsg_Destroy(m);   /* a late reply: its waiter timed out */
}

static void mux_complete(void *a, void *b)
{
    jl_conn *c = a;
    natsSubscription_Destroy(c->mux);
    c->mux = NULL;
    c->mux_live = 0;
    jl_conn_maybe_done(c);
    jl_conn_release(c);
}

void jl_conn_maybe_done(jl_conn *c)
{
    if (c->state == JL_CONN_CLOSED && !c->mux_live && c->nsubs == 0 && !c->hook.done) {
        rt_hook_done(&c->hook);
        rt_hook_remove(&c->hook);
    }
}

static void on_mux_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    if (rt_post_try(mux_deliver, closure, m) != 0)
        natsMsg_Destroy(m);
}

static void on_mux_complete(void *closure)
{
    rt_post(mux_complete, closure, NULL);
}

static int mux_start(jl_conn *c)
{
    char *inbox = NULL;
    char subj[80];
    natsStatus s;

    if (natsInbox_Create((natsInbox **)&inbox) != NATS_OK)
        return -1;
    snprintf(c->mux_prefix, sizeof c->mux_prefix, "%s.", inbox);
    natsInbox_Destroy((natsInbox *)inbox);
    c->mux_prefix_len = strlen(c->mux_prefix);
    snprintf(subj, sizeof subj, "%s*", c->mux_prefix);
    s = natsConnection_Subscribe(&c->mux, c->nc, subj, on_mux_msg, c);
    if (s != NATS_OK)
        return -1;
    natsSubscription_SetPendingLimits(c->mux, -1, -1);
    jl_conn_retain(c);   /* released by mux_complete */
    c->mux_live = 1;
    natsSubscription_SetOnCompleteCB(c->mux, on_mux_complete, c);
    return 0;
}

int jl_conn_reply_add(jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz)
{
    if (!c->mux || c->state == JL_CONN_CLOSED)
        return -1;
    r->conn = c;
    r->token = ++c->next_token;
    r->timer = NULL;
    if (rt_map_put(&c->replies, r->token, r) != 0)
        return -1;
    if (timeout_ms > 0) {
        r->timer = malloc(sizeof *r->timer);
        uv_timer_init(RT->loop, r->timer);
        r->timer->data = r;
        uv_timer_start(r->timer, reply_timeout, timeout_ms, 0);
    }
    snprintf(buf, bufsz, "%s%llu", c->mux_prefix, (unsigned long long)r->token);
    return 0;
}

void jl_conn_reply_cancel(jl_conn *c, jl_reply *r)
{
    rt_map_del(&c->replies, r->token);
    if (r->timer) {
        uv_timer_stop(r->timer);
        uv_close((uv_handle_t *)r->timer, reply_timer_closed);
        r->timer = NULL;
    }
}

static void fail_all_replies(jl_conn *c, const char *err)
{
    size_t it = 0;
    uint64_t k;
    void *v;
    /* Collect first: finishing a reply may add or remove entries. */
    size_t n = c->replies.n, i = 0;
    jl_reply **list;
    if (n == 0)
        return;
    list = malloc(n * sizeof *list);
    while (rt_map_next(&c->replies, &it, &k, &v) && i < n)
        list[i++] = v;
    for (size_t j = 0; j < i; j++) {
        rt_map_del(&c->replies, list[j]->token);
        reply_finish(list[j], NULL, err);
    }
    free(list);
}

/* ---- nc:request ---- */

typedef struct req_op {
    jl_reply r;
    rt_co   *co;
} req_op;

static void req_done(jl_reply *r, natsMsg *m, const char *err)
{
    req_op *op = r->data;
    rt_co *co = op->co;
    jl_conn *c = r->conn;
    lua_State *T = rt_co_prepare(co);
    int n;

    free(op);
    if (m && natsMsg_IsNoResponders(m)) {
        natsMsg_Destroy(m);
        m = NULL;
        err = "no_responders";
    }
    if (!T) {
        if (m)
            natsMsg_Destroy(m);
        jl_conn_release(c);
        return;
    }
    if (m) {
        jl_msg_push(T, m, c);
        n = 1;
    } else {
        lua_pushnil(T);
        lua_pushstring(T, err);
        n = 2;
    }
    jl_conn_release(c);
    rt_co_resume(co, n);
}

static void req_cancel(rt_co *co, void *p)
{
    req_op *op = p;
    jl_conn_reply_cancel(op->r.conn, &op->r);
    jl_conn_release(op->r.conn);
    free(op);
}

/* nc:request(subject, data, {timeout=, headers=}) -> msg | nil, err */
static int nc_request(lua_State *L)
{
    static const char *const keys[] = {"timeout", "headers", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:request");
    const char *subj = jl_check_subject(L, 2, "nc:request", 0, NULL);
    const char *data = "";
    size_t len = 0;
    double timeout = 5.0;
    int hidx = 0;
    char reply[128];
    rt_co *co;
    req_op *op;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, "nc:request", "data", &len);
    if (jl_opt_table(L, 4, "nc:request", "opts")) {
        jl_check_keys(L, 4, "nc:request", keys);
        timeout = jl_field_number(L, 4, "timeout", "nc:request", 5.0);
        if (!(timeout > 0))
            jl_argerror(L, "nc:request", "timeout", "must be > 0 seconds");
        lua_getfield(L, 4, "headers");
        if (!lua_isnil(L, -1))
            hidx = lua_gettop(L);
    }
    co = rt_co_current(L, "nc:request");
    jl_conn_check_open(L, c, "nc:request");
    op = calloc(1, sizeof *op);
    op->co = co;
    op->r.fn = req_done;
    op->r.data = op;
    if (jl_conn_reply_add(c, &op->r, (uint64_t)(timeout * 1000.0), reply, sizeof reply) != 0) {
        free(op);
        return jl_fail(L, "closed", "nc:request: the connection is closed");
    }
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:request");
    if (s != NATS_OK) {
        jl_conn_reply_cancel(c, &op->r);
        free(op);
        return jl_push_status(L, s, "nc:request");
    }
    jl_conn_retain(c);
    return rt_co_wait(co, req_cancel, op);
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
    jl_conn_check_open(L, c, "nc:flush");
    op = calloc(1, sizeof *op);
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
    natsStatus s;

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
    s = natsConnection_DrainTimeout(c->nc, (int64_t)(timeout * 1000.0));
    if (s != NATS_OK && s != NATS_DRAINING)
        return jl_push_status(L, s, "nc:drain");
    c->closing = 1;
    c->state = JL_CONN_DRAINING;
    c->drain_co = co;
    return rt_co_wait(co, drain_cancel, c);
}

/* nc:close(): close now; messages not yet handled are dropped. */
static int nc_close(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:close");
    if (c->state != JL_CONN_CLOSED && c->nc) {
        c->closing = 1;
        natsConnection_Close(c->nc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int nc_status(lua_State *L)
{
    static const char *names[] = {"connecting", "connected", "reconnecting", "draining", "closed"};
    jl_conn *c = jl_conn_check(L, 1, "nc:status");
    lua_pushstring(L, names[c->state]);
    return 1;
}

static int nc_connected_url(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:connected_url");
    char buf[256];
    if (c->nc && c->state == JL_CONN_CONNECTED &&
        natsConnection_GetConnectedUrl(c->nc, buf, sizeof buf) == NATS_OK)
        lua_pushstring(L, buf);
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

static int nc_tostring(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:__tostring");
    lua_pushfstring(L, "jetlua.conn(%s)", c->name);
    return 1;
}

/* ---- events from cnats threads ---- */

static void fire_event(jl_conn *c, int ev, const char *info)
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

static void conn_closed(jl_conn *c)
{
    lua_State *L = RT->L;
    rt_co *dco = c->drain_co;

    c->state = JL_CONN_CLOSED;
    rt_info("connection %s closed", c->name);
    fail_all_replies(c, "closed");
    c->drain_co = NULL;
    if (dco && rt_co_prepare(dco)) {
        lua_pushboolean(dco->L, 1);
        rt_co_resume(dco, 1);
    }
    fire_event(c, JL_EV_CLOSED, NULL);
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
    char url[256] = "";

    if (c->state == JL_CONN_CLOSED)
        return;
    switch (ev) {
    case JL_EV_DISCONNECTED:
        if (c->closing)
            break;      /* cnats reports a disconnect on close too */
        c->state = JL_CONN_RECONNECTING;
        rt_warn("connection %s: disconnected, reconnecting", c->name);
        fire_event(c, ev, NULL);
        break;
    case JL_EV_RECONNECTED:
        if (c->state == JL_CONN_RECONNECTING)
            c->state = JL_CONN_CONNECTED;
        c->reconnects++;
        natsConnection_GetConnectedUrl(c->nc, url, sizeof url);
        rt_info("connection %s: reconnected to %s", c->name, url);
        fire_event(c, ev, url);
        break;
    case JL_EV_CLOSED:
        conn_closed(c);
        break;
    }
}

static void conn_error(void *a, void *b)
{
    jl_conn *c = a;
    natsStatus s = (natsStatus)(intptr_t)b;
    const char *text = natsStatus_GetText(s);
    if (c->state == JL_CONN_CLOSED)
        return;
    rt_warn("connection %s: %s", c->name, text);
    fire_event(c, JL_EV_ERROR, s == NATS_SLOW_CONSUMER ? "slow_consumer" : text);
}

static void on_disconnected(natsConnection *nc, void *cl) { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_DISCONNECTED); }
static void on_reconnected(natsConnection *nc, void *cl)  { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_RECONNECTED); }
static void on_closed(natsConnection *nc, void *cl)       { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_CLOSED); }
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *cl)
{
    rt_post(conn_error, cl, (void *)(intptr_t)err);
}

/* ---- shutdown hook ---- */

static void conn_hook_begin(rt_hook *h)
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
    if (c->state != JL_CONN_CONNECTED ||
        natsConnection_DrainTimeout(c->nc, (int64_t)(RT->cfg.shutdown_timeout * 1000.0 * 0.8)) != NATS_OK)
        natsConnection_Close(c->nc);
    else
        c->state = JL_CONN_DRAINING;
}

/* ---- jet.connect ---- */

typedef struct connect_op {
    jl_conn   *c;
    rt_co     *co;          /* NULL once abandoned */
    char     **urls;
    int        nurls;
    int        next;        /* server to probe next */
    int        attempts;
    int        max_attempts;/* -1: forever */
    uint64_t   wait_ms;
    double     deadline;    /* 0: none */
    int        pending;     /* libuv requests/handles in flight */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_tcp_t   tcp;
    uv_connect_t creq;
    uv_timer_t probe_timer;
    char       host[256], port[16];
} connect_op;

static void op_unpend(connect_op *op);

static void op_handle_closed(uv_handle_t *h)
{
    op_unpend(h->data);
}

static void op_free(connect_op *op)
{
    for (int i = 0; i < op->nurls; i++)
        free(op->urls[i]);
    free(op->urls);
    jl_conn_release(op->c);
    free(op);
}

/* The op is freed when it is finished (co == NULL) and nothing is pending. */
static void op_unpend(connect_op *op)
{
    if (--op->pending == 0 && op->co == NULL)
        op_free(op);
}

static void connect_finish(connect_op *op, int ok, const char *code, const char *detail)
{
    rt_co *co = op->co;
    lua_State *T = co ? rt_co_prepare(co) : NULL;
    jl_conn *c = op->c;
    int n = 1;

    op->co = NULL;
    uv_close((uv_handle_t *)&op->timer, op_handle_closed);
    if (T) {
        if (ok) {
            lua_rawgeti(T, LUA_REGISTRYINDEX, c->self_ref);
        } else {
            lua_pushnil(T);
            lua_pushstring(T, code);
            lua_pushstring(T, detail);
            n = 3;
        }
    }
    if (!ok) {
        /* never connected: drop the Lua object's hold on itself */
        c->state = JL_CONN_CLOSED;
        rt_hook_remove(&c->hook);
        luaL_unref(RT->L, LUA_REGISTRYINDEX, c->self_ref);
        c->self_ref = LUA_NOREF;
    }
    if (T)
        rt_co_resume(co, n);
}

static void connect_cancel(rt_co *co, void *p)
{
    connect_op *op = p;
    op->co = NULL;
    /* Stop retrying; in-flight probes finish and see co == NULL. */
    if (!uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, op_handle_closed);
}

static void start_attempt(connect_op *op);

static void retry_fired(uv_timer_t *t)
{
    start_attempt(t->data);
}

static void attempt_failed(connect_op *op, const char *url, const char *why)
{
    op->attempts++;
    if (!op->co)
        return;
    if (op->max_attempts >= 0 && op->attempts > op->max_attempts) {
        char detail[512];
        snprintf(detail, sizeof detail, "jet.connect: cannot connect to %s: %s", url, why);
        connect_finish(op, 0, "connect_failed", detail);
        return;
    }
    if (op->deadline > 0 && rt_now() + (double)op->wait_ms / 1000.0 > op->deadline) {
        char detail[512];
        snprintf(detail, sizeof detail, "jet.connect: no server answered in time (last: %s: %s)", url, why);
        connect_finish(op, 0, "timeout", detail);
        return;
    }
    rt_warn("connect to %s failed: %s; retrying in %.1fs (attempt %d)",
            url, why, (double)op->wait_ms / 1000.0, op->attempts);
    op->next++;
    uv_timer_start(&op->timer, retry_fired, op->wait_ms, 0);
}

static int status_retryable(natsStatus s)
{
    return s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR ||
           s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED ||
           s == NATS_STALE_CONNECTION;
}

/* The probe succeeded: now the (short) cnats handshake on the loop thread. */
static void do_connect(connect_op *op)
{
    jl_conn *c = op->c;
    const char *url = op->urls[op->next % op->nurls];
    const char **order = malloc((size_t)op->nurls * sizeof *order);
    natsStatus s;

    /* The server that answered goes first; cnats keeps the rest for reconnects. */
    order[0] = url;
    for (int i = 0, k = 1; i < op->nurls; i++)
        if (i != op->next % op->nurls)
            order[k++] = op->urls[i];
    natsOptions_SetServers(c->opts, order, op->nurls);
    free(order);
    s = natsConnection_Connect(&c->nc, c->opts);
    if (s == NATS_OK) {
        if (mux_start(c) != 0) {
            natsConnection_Close(c->nc);
            connect_finish(op, 0, "nats_error", "jet.connect: cannot subscribe the reply inbox");
            return;
        }
        c->state = JL_CONN_CONNECTED;
        rt_hook_add(&c->hook);
        jl_conn_retain(c);        /* the connection's own ref, until closed */
        {
            char cu[256] = "";
            natsConnection_GetConnectedUrl(c->nc, cu, sizeof cu);
            rt_info("connected to %s as %s", cu, c->name);
        }
        connect_finish(op, 1, NULL, NULL);
        return;
    }
    if (c->nc) {
        natsConnection_Destroy(c->nc);
        c->nc = NULL;
    }
    {
        char why[256];
        const char *last = nats_GetLastError(NULL);
        snprintf(why, sizeof why, "%s%s%s", natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
        if (status_retryable(s)) {
            attempt_failed(op, url, why);
        } else {
            char detail[512];
            snprintf(detail, sizeof detail, "jet.connect: %s: %s", url, why);
            connect_finish(op, 0, status_code(s), detail);
        }
    }
}

static void probe_done(connect_op *op, int status)
{
    const char *url = op->urls[op->next % op->nurls];
    if (!op->co)
        return;
    if (status < 0)
        attempt_failed(op, url, uv_strerror(status));
    else
        do_connect(op);
}

static void probe_tcp_closed(uv_handle_t *h)
{
    connect_op *op = h->data;
    int status = (int)(intptr_t)op->creq.data;
    probe_done(op, status);
    op_unpend(op);
}

static void probe_timer_closed(uv_handle_t *h) { op_unpend(h->data); }

static void on_probe(uv_connect_t *req, int status)
{
    connect_op *op = req->handle->data;
    if (status == UV_ECANCELED)
        return;          /* probe_timeout closed the handles already */
    req->data = (void *)(intptr_t)status;
    uv_timer_stop(&op->probe_timer);
    uv_close((uv_handle_t *)&op->probe_timer, probe_timer_closed);
    uv_close((uv_handle_t *)&op->tcp, probe_tcp_closed);
}

static void probe_timeout(uv_timer_t *t)
{
    connect_op *op = t->data;
    /* closing the socket makes on_probe run with UV_ECANCELED */
    op->creq.data = (void *)(intptr_t)UV_ETIMEDOUT;
    uv_close((uv_handle_t *)&op->tcp, probe_tcp_closed);
    uv_close((uv_handle_t *)&op->probe_timer, probe_timer_closed);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    connect_op *op = req->data;
    if (status < 0 || !op->co) {
        if (op->co)
            attempt_failed(op, op->urls[op->next % op->nurls], uv_strerror(status));
        if (res)
            uv_freeaddrinfo(res);
        op_unpend(op);
        return;
    }
    uv_tcp_init(RT->loop, &op->tcp);
    op->tcp.data = op;
    uv_timer_init(RT->loop, &op->probe_timer);
    op->probe_timer.data = op;
    op->pending += 2;     /* tcp + probe timer */
    op->creq.data = (void *)(intptr_t)0;
    if (uv_tcp_connect(&op->creq, &op->tcp, res->ai_addr, on_probe) != 0) {
        op->creq.data = (void *)(intptr_t)UV_ECONNREFUSED;
        uv_close((uv_handle_t *)&op->probe_timer, probe_timer_closed);
        uv_close((uv_handle_t *)&op->tcp, probe_tcp_closed);
    } else {
        uv_timer_start(&op->probe_timer, probe_timeout, 2000, 0);
    }
    uv_freeaddrinfo(res);
    op_unpend(op);
}

/* host and port of a NATS URL: [scheme://][user[:pass]@]host[:port] */
static void split_url(const char *url, char *host, size_t hl, char *port, size_t pl)
{
    const char *p = strstr(url, "://");
    const char *at, *end, *colon;
    p = p ? p + 3 : url;
    at = strchr(p, '@');
    if (at)
        p = at + 1;
    end = p + strcspn(p, "/?");
    if (*p == '[') {                       /* [::1]:4222 */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        size_t n = rb ? (size_t)(rb - p - 1) : 0;
        snprintf(host, hl, "%.*s", (int)n, p + 1);
        colon = rb && rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        snprintf(host, hl, "%.*s", (int)((colon ? colon : end) - p), p);
    }
    if (colon)
        snprintf(port, pl, "%.*s", (int)(end - colon - 1), colon + 1);
    else
        snprintf(port, pl, "4222");
    if (!*host)
        snprintf(host, hl, "127.0.0.1");
}

static void start_attempt(connect_op *op)
{
    struct addrinfo hints;
    const char *url;

    if (!op->co)
        return;
    url = op->urls[op->next % op->nurls];
    split_url(url, op->host, sizeof op->host, op->port, sizeof op->port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    op->gai.data = op;
    op->pending++;
    if (uv_getaddrinfo(RT->loop, &op->gai, on_resolved, op->host, op->port, &hints) != 0) {
        op->pending--;
        attempt_failed(op, url, "cannot resolve host");
    }
}

static void embedded_ready(const char *url, const char *err, void *data)
{
    connect_op *op = data;
    if (!op->co) {
        op_unpend(op);
        return;
    }
    if (!url) {
        op->pending--;
        connect_finish(op, 0, "no_server", err);
        return;
    }
    op->urls = calloc(1, sizeof *op->urls);
    op->urls[0] = strdup(url);
    op->nurls = 1;
    op->pending--;
    start_attempt(op);
}

/* Collect a list of URL strings from a string or a table at idx. */
static int read_servers(lua_State *L, int idx, connect_op *op)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        op->urls = calloc(1, sizeof *op->urls);
        op->urls[0] = strdup(lua_tostring(L, idx));
        op->nurls = 1;
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        jl_argerror(L, "jet.connect", "servers", "string or list of strings expected, got %s", luaL_typename(L, idx));
    int n = (int)lua_objlen(L, idx);
    if (n == 0)
        jl_argerror(L, "jet.connect", "servers", "the list is empty");
    op->urls = calloc((size_t)n, sizeof *op->urls);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            jl_argerror(L, "jet.connect", "servers", "entry %d: string expected, got %s", i, luaL_typename(L, -1));
        op->urls[op->nurls++] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return 1;
}

#define NATS_CHECK(call, what)                                                          \
    do {                                                                                \
        natsStatus s_ = (call);                                                         \
        if (s_ != NATS_OK)                                                              \
            jl_argerror(L, "jet.connect", what, "%s", natsStatus_GetText(s_));          \
    } while (0)

/* jet.connect{servers=, name=, user=, password=, token=, creds=,
 *             tls={ca=, cert=, key=}, reconnect={max=, wait=}, timeout=} */
static int jet_connect(lua_State *L)
{
    static const char *const keys[] = {"servers", "name", "user", "password", "token",
                                       "creds", "tls", "reconnect", "timeout", NULL};
    static const char *const rkeys[] = {"max", "wait", NULL};
    static const char *const tkeys[] = {"ca", "cert", "key", NULL};
    const rt_cfg *cfg = &RT->cfg;
    int has = jl_opt_table(L, 1, "jet.connect", "opts");
    int explicit_servers = 0;
    const char *user = NULL, *password = NULL, *token = NULL, *creds = NULL, *name = NULL;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    double max = -1, wait = 2.0, timeout = 0;
    int tls = 0;
    rt_co *co = rt_co_current(L, "jet.connect");
    connect_op *op;
    jl_conn *c;
    conn_ud *ud;

    if (has) {
        jl_check_keys(L, 1, "jet.connect", keys);
        lua_getfield(L, 1, "servers");
        explicit_servers = !lua_isnil(L, -1);
        lua_pop(L, 1);
        name = jl_field_string(L, 1, "name", "jet.connect", NULL);
        user = jl_field_string(L, 1, "user", "jet.connect", NULL);
        password = jl_field_string(L, 1, "password", "jet.connect", NULL);
        token = jl_field_string(L, 1, "token", "jet.connect", NULL);
        creds = jl_field_string(L, 1, "creds", "jet.connect", NULL);
        timeout = jl_field_number(L, 1, "timeout", "jet.connect", 0);
        lua_getfield(L, 1, "reconnect");
        if (jl_opt_table(L, -1, "jet.connect", "reconnect")) {
            int r = lua_gettop(L);
            jl_check_keys(L, r, "jet.connect reconnect", rkeys);
            max = jl_field_number(L, r, "max", "jet.connect", -1);
            wait = jl_field_number(L, r, "wait", "jet.connect", 2.0);
            if (wait < 0)
                jl_argerror(L, "jet.connect", "reconnect.wait", "must be >= 0 seconds");
        }
        lua_pop(L, 1);
        lua_getfield(L, 1, "tls");
        if (jl_opt_table(L, -1, "jet.connect", "tls")) {
            int t = lua_gettop(L);
            jl_check_keys(L, t, "jet.connect tls", tkeys);
            ca = jl_field_string(L, t, "ca", "jet.connect", NULL);
            cert = jl_field_string(L, t, "cert", "jet.connect", NULL);
            key = jl_field_string(L, t, "key", "jet.connect", NULL);
            tls = 1;
        }
        lua_pop(L, 1);
    }
    if (!explicit_servers) {
        /* the server jetlua was started with: take its credentials too */
        if (!user && !token && !creds) {
            user = cfg->user;
            password = cfg->password;
            token = cfg->token;
            creds = cfg->creds;
        }
        if (!tls && (cfg->tls_ca || cfg->tls_cert)) {
            ca = cfg->tls_ca;
            cert = cfg->tls_cert;
            key = cfg->tls_key;
            tls = 1;
        }
        if (!name)
            name = cfg->name;
    }
    if ((cert && !key) || (key && !cert))
        jl_argerror(L, "jet.connect", "tls", "cert and key go together");

    c = calloc(1, sizeof *c);
    c->self_ref = LUA_NOREF;
    for (int i = 0; i < JL_EV_COUNT; i++)
        c->ev_ref[i] = LUA_NOREF;
    rt_map_init(&c->replies, 64);
    c->hook.begin = conn_hook_begin;
    c->hook.data = c;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "jetlua");
    /* From here the userdata owns c: an error raised below frees it via __gc. */
    ud = lua_newuserdata(L, sizeof *ud);
    ud->c = c;
    jl_conn_retain(c);
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);

    NATS_CHECK(natsOptions_Create(&c->opts), "opts");
    natsOptions_SetEventLoop(c->opts, RT->loop, natsLibuv_Attach, natsLibuv_Read,
                             natsLibuv_Write, natsLibuv_Detach);
    natsOptions_SetNoRandomize(c->opts, true);
    natsOptions_SetTimeout(c->opts, 5000);
    natsOptions_SetAllowReconnect(c->opts, true);
    natsOptions_SetMaxReconnect(c->opts, max < 0 ? -1 : (int)max);
    natsOptions_SetReconnectWait(c->opts, (int64_t)(wait * 1000.0));
    natsOptions_SetName(c->opts, c->name);
    natsOptions_SetDisconnectedCB(c->opts, on_disconnected, c);
    natsOptions_SetReconnectedCB(c->opts, on_reconnected, c);
    natsOptions_SetClosedCB(c->opts, on_closed, c);
    natsOptions_SetErrorHandler(c->opts, on_error, c);
    if (user)
        NATS_CHECK(natsOptions_SetUserInfo(c->opts, user, password ? password : ""), "user");
    if (token)
        NATS_CHECK(natsOptions_SetToken(c->opts, token), "token");
    if (creds)
        NATS_CHECK(natsOptions_SetUserCredentialsFromFiles(c->opts, creds, NULL), "creds");
    if (tls) {
        NATS_CHECK(natsOptions_SetSecure(c->opts, true), "tls");
        if (ca)
            NATS_CHECK(natsOptions_LoadCATrustedCertificates(c->opts, ca), "tls.ca");
        if (cert)
            NATS_CHECK(natsOptions_LoadCertificatesChain(c->opts, cert, key), "tls.cert");
    }

    op = calloc(1, sizeof *op);
    if (explicit_servers) {
        lua_getfield(L, 1, "servers");
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TTABLE) {
            free(op);
            jl_argerror(L, "jet.connect", "servers", "string or list of strings expected, got %s",
                        luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops the userdata */
    op->c = c;
    jl_conn_retain(c);
    op->max_attempts = max < 0 ? -1 : (int)max;
    op->wait_ms = (uint64_t)(wait * 1000.0);
    op->deadline = timeout > 0 ? rt_now() + timeout : 0;
    uv_timer_init(RT->loop, &op->timer);
    op->timer.data = op;
    op->pending = 1;                 /* the retry timer, closed at finish */
    op->co = co;

    if (explicit_servers) {
        lua_getfield(L, 1, "servers");
        read_servers(L, lua_gettop(L), op);
        lua_pop(L, 1);
    } else if (cfg->nservers > 0) {
        op->urls = calloc((size_t)cfg->nservers, sizeof *op->urls);
        for (int i = 0; i < cfg->nservers; i++)
            op->urls[op->nurls++] = strdup(cfg->servers[i]);
    }
    if (op->nurls > 0) {
        start_attempt(op);
    } else {
        op->pending++;
        rt_server_ensure(embedded_ready, op);
    }
    if (!op->co) {
        /* finished synchronously (cannot happen today: probes are async) */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
        return 1;
    }
    return rt_co_wait(co, connect_cancel, op);
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
    static const luaL_Reg methods[] = {
        {"publish", nc_publish},     {"subscribe", jl_conn_subscribe},
        {"request", nc_request},     {"flush", nc_flush},
        {"drain", nc_drain},         {"close", nc_close},
        {"status", nc_status},       {"on", nc_on},
        {"connected_url", nc_connected_url}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", conn_gc}, {"__tostring", nc_tostring}, {NULL, NULL}};

    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(RT->loop);
    jl_newclass(L, CONN_MT, methods, meta);
    jl_inject_sub(L);
    lua_pushcfunction(L, jet_connect);
    lua_setfield(L, -2, "connect");
}
