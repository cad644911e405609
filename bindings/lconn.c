/*
 * lconn.c - the connection object: publish, request, flush, drain, close,
 * on(event), status. jet.connect itself is in lconnect.c.
 *
 * I/O: cnats' libuv adapter moves the socket reads and writes into our loop.
 * cnats still calls message and event callbacks on its own threads; those
 * only post to the inbox (rt_post). Nothing here blocks the loop:
 *  - the first connect: see lconnect.c.
 *  - flush waits for a PONG: it runs on a libuv worker thread.
 *  - requests (nc:request, msg:ack_sync, API calls) wait on the reply mux:
 *    lrequest.c.
 */
#include "jl.h"
#include "lconn.h"
#include "rt_health.h"
#include "rt_metrics.h"
#include "rt_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static const char *const ev_names[JL_EV_COUNT] = {"disconnected", "reconnected", "closed", "error"};

/* ---- every open connection: readiness (rt_health.h) and the write hook ---- */

static jl_conn *all_conns;

/* Before the loop waits for I/O, write out what every connection buffered
 * during this iteration (acks, pull requests, requests, publishes). cnats
 * alone would leave it to its flusher thread, which waits 1 ms first: a
 * request/reply round trip (a sync JetStream publish, an API call) then
 * cost 1 ms instead of ~80 us. One write per iteration also batches the
 * acks of many handlers. */
static uv_prepare_t flush_prep;
static int flush_prep_on;

static void flush_before_poll(uv_prepare_t *h)
{
    (void)h;
    for (jl_conn *c = all_conns, *next; c; c = next) {
        next = c->all_next;
        if (c->state == JL_CONN_CONNECTED)
            jl_conn_write(c);
        if (c->bp_waits)
            jl_conn_bp_check(c);     /* may run Lua: next was read first */
    }
}

void jl_conn_track(jl_conn *c)
{
    char what[160];
    snprintf(what, sizeof what, "connection %s", c->name);
    c->health = rt_health_add(RT_HEALTH_CONNECTION, what);
    if (!flush_prep_on) {
        flush_prep_on = 1;
        uv_prepare_init(RT->loop, &flush_prep);
        uv_prepare_start(&flush_prep, flush_before_poll);
        uv_unref((uv_handle_t *)&flush_prep);
    }
    c->tracked = 1;
    if (c->max_buffered <= 0)
        c->max_buffered = JL_MAX_BUFFERED;
    if (c->wt.epoch == 0)
        c->wt.epoch = 1;          /* 0 marks "never sent" in the publisher */
    c->all_prev = NULL;
    c->all_next = all_conns;
    if (all_conns)
        all_conns->all_prev = c;
    all_conns = c;
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
    if (c->all_prev) c->all_prev->all_next = c->all_next; else all_conns = c->all_next;
    if (c->all_next) c->all_next->all_prev = c->all_prev;
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
    rt_map_free(&c->replies);
    free(c);
}

jl_conn *jl_conn_check(lua_State *L, int idx, const char *fname)
{
    conn_ud *u = luaL_testudata(L, idx, CONN_MT);
    if (!u)
        jl_argerror(L, fname, "self", "connection expected, got %s (call it as nc:%s)",
                    jl_typename(L, idx), strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
    return u->c;
}

int jl_conn_is_closed(jl_conn *c)
{
    return c->state == JL_CONN_CLOSED || c->dropping || !c->nc;
}

int jl_conn_closed_result(lua_State *L, const char *fname)
{
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushfstring(L, "%s: the connection is closed", fname);
    return 3;
}

void jl_conn_check_open(lua_State *L, jl_conn *c, const char *fname)
{
    /* dropping: nc:close() was called; the closed event may not have come
     * back yet, but the connection is closed for the script from then on */
    if (c->state == JL_CONN_CLOSED || c->dropping || c->state == JL_CONN_CONNECTING || !c->nc)
        luaL_error(L, "%s: the connection is %s", fname,
                   c->state == JL_CONN_CONNECTING ? "not connected yet" : "closed");
}

const char *jl_status_code(natsStatus s)
{
    const char *code;
    switch (s) {
    case NATS_TIMEOUT:              code = "timeout"; break;
    case NATS_CONNECTION_CLOSED:    code = "closed"; break;
    case NATS_NO_RESPONDERS:        code = "no_responders"; break;
    case NATS_INSUFFICIENT_BUFFER:  code = "buffer_full"; break;
    case NATS_MAX_PAYLOAD:          code = "max_payload"; break;
    case NATS_CONNECTION_AUTH_FAILED: code = "auth_failed"; break;
    case NATS_NOT_PERMITTED:        code = "permission_denied"; break;
    case NATS_SSL_ERROR:            code = "tls_error"; break;
    case NATS_DRAINING:             code = "draining"; break;
    case NATS_NO_SERVER:            code = "no_server"; break;
    default:                        code = "nats_error"; break;
    }
    return code;
}

const char *jl_last_error(void)
{
    const char *t = nats_GetLastError(NULL), *e;
    if (!t)
        return "";
    /* "(pub.c:130): Payload ..." -> "Payload ..." */
    if (*t == '(' && (e = strstr(t, "): ")) != NULL && strchr(t, ')') == e)
        t = e + 3;
    return t;
}

int jl_push_status(lua_State *L, natsStatus s, const char *what)
{
    const char *code = jl_status_code(s);
    const char *last = jl_last_error();
    lua_pushnil(L);
    lua_pushstring(L, code);
    if (s == NATS_MAX_PAYLOAD && last && *last)
        /* cnats' own sentence carries the sizes: "Payload 1048586 greater
         * than maximum allowed: 1048576" (headers included) */
        lua_pushfstring(L, "%s: the message is too large for the server: %s", what, last);
    else if (s == NATS_INSUFFICIENT_BUFFER)
        lua_pushfstring(L, "%s: the reconnect buffer is full (the connection is down)", what);
    else
        lua_pushfstring(L, "%s: %s", what, natsStatus_GetText(s));
    return 3;
}

/* ---- publish ---- */

/* (jl_conn_write_some, lwire.c: with the libuv adapter, cnats writes only
 * when the loop sees the socket writable. A script publishing in a tight
 * loop never returns to the loop, so cnats' buffer would grow (realloc +
 * page faults: measured 5x slower than raw cnats). Every 64 publishes we
 * write what is buffered ourselves, non-blocking, as the adapter's writable
 * callback would.) */
/* natsConnection_Close flushes a non-empty write buffer with a PING and
 * waits up to 500 ms for the PONG, on the calling thread. Called on the loop
 * thread, the only one that reads the socket, it always waited the full
 * 500 ms (blocking the loop) and the buffered publishes were lost. So write
 * the buffer out first (non-blocking; a few tries while the socket takes it),
 * then close. Found by a helper's repro (tests/lua/repro_close_stall.lua). */
void jl_conn_close_now(jl_conn *c)
{
    for (int i = 0; i < 64 && natsConnection_Buffered(c->nc) > 0; i++)
        jl_conn_write(c);
    natsConnection_Close(c->nc);
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

/* Adds the value at vidx; on a wrong type destroys m first, then raises
 * (a raise must not leak the message). */
static void add_header_value(lua_State *L, natsMsg *m, const char *key, int vidx, const char *fname)
{
    if (lua_type(L, vidx) != LUA_TSTRING) {
        const char *t = luaL_typename(L, vidx);
        natsMsg_Destroy(m);
        jl_argerror(L, fname, "headers", "value of '%s' must be a string or a list of strings, got %s", key, t);
    }
    natsMsgHeader_Add(m, key, lua_tostring(L, vidx));
}

natsStatus jl_msg_build(lua_State *L, natsMsg **out, const char *subj, const char *reply,
                        const char *data, size_t len, int hidx, const char *fname)
{
    natsMsg *m = NULL;
    natsStatus s;

    *out = NULL;
    if (hidx && lua_type(L, hidx) != LUA_TTABLE)
        jl_argerror(L, fname, "headers", "table expected, got %s", luaL_typename(L, hidx));
    s = natsMsg_Create(&m, subj, reply, data, (int)len);
    if (s != NATS_OK || !hidx) {
        *out = m;
        return s;
    }
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
    *out = m;
    return NATS_OK;
}

natsStatus jl_conn_publish(lua_State *L, jl_conn *c, const char *subj, const char *reply,
                           const char *data, size_t len, int hidx, const char *fname)
{
    natsMsg *m = NULL;
    natsStatus s;

    if (!hidx) {
        if (reply)
            s = natsConnection_PublishRequest(c->nc, subj, reply, data, (int)len);
        else
            s = natsConnection_Publish(c->nc, subj, data, (int)len);
        jl_conn_write_some(c, len);
        return s;
    }
    s = jl_msg_build(L, &m, subj, reply, data, len, hidx, fname);
    if (s != NATS_OK)
        return s;
    s = natsConnection_PublishMsg(c->nc, m);
    natsMsg_Destroy(m);
    jl_conn_write_some(c, len);
    return s;
}

/* ---- clients (async publishers, pull consumers) ---- */

void jl_conn_client_add(jl_conn *c, jl_client *k)
{
    c->list_gen++;
    k->prev = NULL;
    k->next = c->clients;
    if (c->clients)
        c->clients->prev = k;
    c->clients = k;
    c->nsubs++;
    jl_conn_retain(c);
}

void jl_conn_client_remove(jl_conn *c, jl_client *k)
{
    c->list_gen++;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->clients = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->next = k->prev = NULL;
    c->nsubs--;
    jl_conn_maybe_done(c);
    jl_conn_release(c);
}

static void clients_event(jl_conn *c, int ev)
{
    for (jl_client *k = c->clients, *next; k; k = next) {
        next = k->next;
        if (k->event)
            k->event(k, ev);
    }
}

/* nc:publish(subject, data, {headers=, reply=}) */
static int nc_publish(lua_State *L)
{
    static const char *const keys[] = {"headers", "reply", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:publish");
    size_t len = 0, slen = 0;
    const char *subj = jl_check_subject(L, 2, "nc:publish", 0, &slen);
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
    jl_check_pub_line(L, "nc:publish", reply && strlen(reply) > slen ? "reply" : "subject", slen,
                      reply ? strlen(reply) : 0, hidx != 0, len);
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:publish");
    jl_conn_check_open(L, c, "nc:publish");
    if (c->over_buffered && !rt_co_lookup(L))
        return jl_fail(L, "buffer_full", "nc:publish: the connection's write buffer is full (the server "
                                         "is not reading) and this coroutine cannot wait");
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:publish");
    if (s != NATS_OK)
        return jl_push_status(L, s, "nc:publish");
    if (c->over_buffered && c->state == JL_CONN_CONNECTED) {
        /* backpressure: this message is in the buffer; wait until it drained */
        rt_co *co;
        jl_conn_write(c);
        c->over_buffered = natsConnection_Buffered(c->nc) > c->max_buffered;
        if (c->over_buffered && (co = rt_co_lookup(L)) != NULL)
            return jl_conn_bp_wait(c, co);
    }
    lua_pushboolean(L, 1);
    return 1;
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
    if (!c->mux_live && !c->hook.done) {
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
    jl_conn_drain_subs(c);
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

/* nc:jetstream(opts): the JetStream context lives in Lua (jetlua/js.lua),
 * loaded on first use so scripts without JetStream never pay for it. */
static int nc_jetstream(lua_State *L)
{
    jl_conn_check(L, 1, "nc:jetstream");
    lua_settop(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jetlua.js");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "jetstream");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

/* nc:service(opts): NATS services live in Lua (jetlua/service.lua) */
static int nc_service(lua_State *L)
{
    jl_conn_check(L, 1, "nc:service");
    lua_settop(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "jetlua.service");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "service");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, LUA_MULTRET);
    return lua_gettop(L) - 3;
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
    jl_conn_after_read(c);     /* subscriptions see the close and complete */
    jl_conn_fail_all_replies(c, "closed");
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
    char url[256] = "";

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
        natsConnection_GetConnectedUrl(c->nc, url, sizeof url);
        rt_info("connection %s: reconnected to %s", c->name, url);
        clients_event(c, ev);
        jl_conn_fire_event(c, ev, url);
        break;
    case JL_EV_CLOSED:
        conn_closed(c);
        break;
    }
}

/* An asynchronous error from cnats, with the server's sentence when there
 * is one (cnats hands it to the error handler's thread as its last error). */
typedef struct srv_err {
    natsStatus s;
    char       text[];
} srv_err;

static void conn_error(void *a, void *b)
{
    jl_conn *c = a;
    srv_err *e = b;
    if (c->state != JL_CONN_CLOSED)
        jl_conn_server_error(c, e->s, e->text);
    free(e);
}

void jl_conn_on_disconnected(natsConnection *nc, void *cl) { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_DISCONNECTED); }
void jl_conn_on_reconnected(natsConnection *nc, void *cl)  { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_RECONNECTED); }
void jl_conn_on_closed(natsConnection *nc, void *cl)       { rt_post(conn_event, cl, (void *)(intptr_t)JL_EV_CLOSED); }
void jl_conn_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *cl)
{
    const char *t = err == NATS_SLOW_CONSUMER ? NULL : jl_last_error();
    size_t n = t ? strlen(t) : 0;
    srv_err *e = malloc(sizeof *e + n + 1);
    if (!e)
        return;
    e->s = err;
    memcpy(e->text, t ? t : "", n);
    e->text[n] = '\0';
    if (rt_post_try(conn_error, cl, e) != 0)
        free(e);
}

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
    jl_conn_drain_subs(c);
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
    static const luaL_Reg methods[] = {
        {"publish", nc_publish},     {"subscribe", jl_conn_subscribe},
        {"request", jl_conn_request}, {"flush", nc_flush},
        {"drain", nc_drain},         {"close", nc_close},
        {"status", nc_status},       {"on", nc_on},
        {"connected_url", nc_connected_url}, {"jetstream", nc_jetstream},
        {"service", nc_service}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", conn_gc}, {"__tostring", nc_tostring}, {NULL, NULL}};

    jl_newclass(L, CONN_MT, methods, meta);
    jl_inject_sub(L);
    jl_inject_wire(L);
    jl_inject_connect(L);
}
