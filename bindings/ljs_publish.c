/*
 * ljs_publish.c - JetStream async publish: the engine behind js:publish_async,
 * js:publish_async_pending, js:publish_async_complete and
 * js:on_publish_error (the Lua side is in jetlua/js.lua). This file holds
 * the publisher object, publish, the waits and the futures; what happens
 * to each publish afterwards is ljs_publish_acks.c (see ljs_publisher.h).
 *
 * One ack path for every message (PROTOCOL.md §4, DESIGN.md "Async publish"):
 *  - each publisher owns two subscriptions under one "_INBOX.<nuid>."
 *    prefix, and every message gets a reply with a token; on the loop we
 *    find the entry by token in one hash map and resolve its future. No
 *    coroutine, thread or timer per message;
 *  - the fast path: a message to a subject that already had a PubAck gets
 *    the reply "<prefix><token>", on a synchronous subscription that the
 *    loop reads right after each read event (as core subscriptions and pull
 *    consumers are read): no thread hop;
 *  - the slow path: any other message gets "<prefix>s.<token>", on a cnats
 *    async subscription whose delivery thread hands each reply to the loop
 *    through the inbox. cnats' NextMsg swallows a "503 no responders" status
 *    and returns only NATS_NO_RESPONDERS, without the message: the slow path
 *    tells which publish a 503 answers (a subject no stream listens on
 *    fails at once). A 503 on the fast path (the stream went away, or has
 *    no leader) is counted: the subjects are forgotten, so what follows
 *    takes the slow path, and the fast entries that then reach their ack
 *    timeout fail as no_responders, oldest first, as many as were counted;
 *  - one sweep timer per publisher expires entries past their ack timeout
 *    (they sit in a list ordered by deadline, rt_pubq in rt_pubwin.h) and
 *    resends held ones;
 *  - our own in-flight window, bounded in messages (max_pending) and bytes
 *    (max_pending_bytes, rt_pubwin.h): when it is full, publish returns
 *    false and the Lua side yields in wait_slot() until acks free room. We
 *    never reach cnats' blocking stall, and the loop never blocks;
 *  - a message is never re-sent while its first copy still waits in the
 *    connection's write buffer (a frozen server or network: lwire.c tracks
 *    where the buffer stands). Its timeout then re-arms instead: a copy
 *    per retry used to pile up in that buffer until malloc failed. So the
 *    memory a publisher holds is its window plus, at most, one copy of it
 *    in cnats' buffer.
 *
 * Failures never pass silently. A retryable one (timeout, no_responders,
 * disconnected) is retried when the script asked for retries: the message
 * is re-sent unchanged, so its Nats-Msg-Id (jetlua generates one when the
 * script gave none) makes the stream store it once. While the connection is
 * down, new and retried messages are held here instead of filling cnats'
 * reconnect buffer, and sent on reconnect. A failure goes to the future's
 * waiter or callback, else to js:on_publish_error, else to the log -- and an
 * unobserved failure, or any failure during shutdown, makes the exit status 1.
 *
 * Lifetime: the publisher lives while its Lua userdata, any future, or its
 * registration as a connection client exists. A draining connection waits
 * for every pending ack (bounded by the ack timeouts and the shutdown bound).
 */
#include "ljs_publisher.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- futures ---- */

/* the ack table: {stream=, seq=, duplicate=, domain=} */
static int push_ack(lua_State *L, jl_future *jf)
{
    pa_fut *f = (pa_fut *)jf;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, f->stream ? f->stream : "");
    lua_setfield(L, -2, "stream");
    lua_pushnumber(L, (lua_Number)f->seq);
    lua_setfield(L, -2, "seq");
    lua_pushboolean(L, f->duplicate);
    lua_setfield(L, -2, "duplicate");
    if (f->domain) {
        lua_pushstring(L, f->domain);
        lua_setfield(L, -2, "domain");
    }
    return 1;
}

static const jl_future_ops fut_ops = {"f:wait", "publish_async callback", push_ack, NULL};

static pa_fut *check_fut(lua_State *L, const char *fname)
{
    pa_fut *f = luaL_testudata(L, 1, FUT_MT);
    if (!f)
        jl_argerror(L, fname, "self", "future expected, got %s", jl_typename(L, 1));
    return f;
}

/* f:wait([timeout]) -> ack | nil, code, detail[, err_code] */
static int fut_wait(lua_State *L)
{
    pa_fut *f = check_fut(L, "f:wait");
    double timeout = -1;

    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "f:wait", "timeout");
        if (timeout < 0)
            jl_argerror(L, "f:wait", "timeout", "must be >= 0 seconds");
    }
    f->observed = 1;
    if (f->f.state != JL_FUT_PENDING)
        return jl_future_push(L, &f->f);
    return jl_future_wait(L, &f->f, rt_co_current(L, "f:wait"), 1, timeout,
                          "f:wait: no ack yet (the publish is still pending)");
}

/* f:on(function(ack, code, detail, err_code) end): called once, in its own
 * coroutine, when the publish is acked or fails for good (now if it already
 * did). Replaces an earlier callback. */
static int fut_on(lua_State *L)
{
    pa_fut *f = check_fut(L, "f:on");
    jl_check_function(L, 2, "f:on", "fn");
    f->observed = 1;
    jl_future_on(L, &f->f, 2, 1);
    return 0;
}

/* f:status() -> "pending" | "acked" | "failed" */
static int fut_status(lua_State *L)
{
    static const char *const names[] = {"pending", "acked", "failed"};
    pa_fut *f = check_fut(L, "f:status");
    f->observed = 1;
    lua_pushstring(L, names[f->f.state]);
    return 1;
}

static int fut_gc(lua_State *L)
{
    pa_fut *f = lua_touserdata(L, 1);
    if (f->f.state == JL_FUT_ERR && !f->observed && f->what)
        jl_pub_report_unobserved(f->what, f->f.code, f->f.detail ? f->f.detail : "");
    free(f->what);
    f->what = NULL;
    if (f->e)
        f->e->fut = NULL;
    jl_future_free(&f->f);
    if (f->p) {
        jl_pub_release(f->p);
        f->p = NULL;
    }
    return 0;
}

/* ---- the publisher object ---- */

typedef struct {
    pa *p;
} pa_ud;

static pa *check_pa(lua_State *L, const char *fname)
{
    pa_ud *u = luaL_testudata(L, 1, PA_MT);
    if (!u || !u->p)
        jl_argerror(L, fname, "self", "publisher expected, got %s", jl_typename(L, 1));
    return u->p;
}

/* jet._js_publisher(nc, max_pending, ack_timeout, retries, retry_delay, codes,
 * max_pending_bytes) -> publisher, or nil, "closed", detail */
static int pa_new(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:jetstream");
    int maxp = (int)luaL_checkinteger(L, 2);
    double timeout = luaL_checknumber(L, 3);
    int retry = (int)luaL_checkinteger(L, 4);
    double delay = luaL_checknumber(L, 5);
    double maxb = luaL_checknumber(L, 7);
    pa_ud *u;
    pa *p;

    luaL_checktype(L, 6, LUA_TTABLE);
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "js:publish_async");
    jl_conn_check_open(L, c, "js:publish_async");
    p = rt_xcalloc(1, sizeof *p);
    p->c = c;
    p->max_pending = maxp;
    rt_pubq_init(&p->q, maxp, maxb >= 1 ? (uint64_t)maxb : 1);
    p->timeout_ms = (uint32_t)(timeout * 1000.0);
    p->retry = retry;
    p->retry_delay_ms = (uint32_t)(delay * 1000.0);
    p->err_ref = LUA_NOREF;
    /* the map grows by itself: start small however large the window */
    if (rt_map_init(&p->map, (size_t)(maxp < 4096 ? maxp : 4096) * 2) != 0) {
        free(p);
        return luaL_error(L, "js:publish_async: out of memory");
    }
    if ((p->prefix_len = jl_inbox_prefix(p->prefix, sizeof p->prefix)) == 0 ||
        rt_map_init(&p->known, 16) != 0) {
        rt_map_free(&p->map);
        free(p);
        return luaL_error(L, "js:publish_async: out of memory");
    }
    /* the NUID between "_INBOX." and the final '.' */
    snprintf(p->idbase, sizeof p->idbase, "%.*s", (int)(p->prefix_len - 8), p->prefix + 7);
    if (jl_pub_start(p) != 0) {
        rt_map_free(&p->map);
        rt_map_free(&p->known);
        free(p);
        return jl_fail(L, "closed", "js:publish_async: cannot subscribe for acks");
    }
    lua_pushvalue(L, 6);
    p->codes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    p->refs = 2; /* the userdata and the registration */
    u = lua_newuserdata(L, sizeof *u);
    u->p = p;
    luaL_getmetatable(L, PA_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* Its bytes in the window: what cnats will buffer for it, near enough. */
static uint64_t publish_size(lua_State *L, pa *p, size_t slen, size_t len, const char *id, int tries,
                             int hidx)
{
    uint64_t size = slen + p->prefix_len + 22 + len + (id ? strlen(id) + 16 : 0) + (tries > 0 ? 64 : 0);
    if (hidx) {
        lua_pushnil(L);
        while (lua_next(L, hidx) != 0) {
            size += (lua_type(L, -2) == LUA_TSTRING ? lua_objlen(L, -2) : 0) + 4 +
                    (lua_type(L, -1) == LUA_TSTRING ? lua_objlen(L, -1) : 0);
            lua_pop(L, 1);
        }
    }
    return size;
}

/* p:publish(subject, data, headers|nil, msg_id|nil, timeout|nil, retries|nil, up|nil)
 * -> future (true when linked to up), or false when the window is full
 * (the caller waits in p:wait_slot() and tries again). */
static int pa_publish(lua_State *L)
{
    static const char *const fname = "js:publish_async";
    pa *p = check_pa(L, fname);
    size_t len = 0, slen = 0;
    const char *subj = jl_check_subject(L, 2, fname, 0, &slen);
    const char *data = "";
    const char *id = NULL;
    char reply[96];
    int hidx = lua_istable(L, 4) ? 4 : 0;
    int tries = p->retry;
    double timeout = p->timeout_ms / 1000.0;
    uint64_t size;
    pa_entry *e;
    pa_fut *f;
    lmsg *up = NULL;
    natsMsg *m = NULL;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, fname, "data", &len);
    if (!lua_isnoneornil(L, 5))
        id = lua_tostring(L, 5);
    if (!lua_isnoneornil(L, 6))
        timeout = lua_tonumber(L, 6);
    if (!lua_isnoneornil(L, 7))
        tries = (int)lua_tointeger(L, 7);
    /* {ack = msg}: checked before anything is built or counted */
    if (!lua_isnoneornil(L, 8) && (up = jl_msg_test_ud(L, 8)) == NULL)
        jl_argerror(L, fname, "ack", "a received JetStream message expected, got %s", jl_typename(L, 8));
    jl_check_pub_line(L, fname, "subject", slen, p->prefix_len + 22, hidx || id || tries > 0, len);
    if (jl_conn_is_closed(p->c))
        return jl_conn_closed_result(L, fname);
    jl_conn_check_open(L, p->c, fname);
    if (!p->registered)
        return jl_fail(L, "draining", "js:publish_async: the connection is draining: no new publishes");
    size = publish_size(L, p, slen, len, id, tries, hidx);
    if (!rt_pubwin_admit(&p->q.win, size)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    snprintf(reply, sizeof reply, jl_pub_fast(p, subj, slen) ? "%s%llu" : "%ss.%llu", p->prefix,
             (unsigned long long)(p->next_token + 1));
    s = jl_msg_build(L, &m, subj, reply, data, len, hidx, fname);
    if (s != NATS_OK)
        return jl_push_status(L, s, fname);
    if (id) {
        natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    } else if (tries > 0 && !(hidx && natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK)) {
        /* a retry must never store a second copy: give it an id */
        char gen[64];
        snprintf(gen, sizeof gen, "%s-%llu", p->idbase, (unsigned long long)++p->idseq);
        natsMsgHeader_Set(m, "Nats-Msg-Id", gen);
    }
    e = rt_xcalloc(1, sizeof *e);
    e->q.token = ++p->next_token;
    e->msg = m;
    e->up_ref = LUA_NOREF;
    e->up = up;
    if (rt_map_put(&p->map, e->q.token, e) != 0) {
        /* the token map could not grow: the PubAck could never find it */
        natsMsg_Destroy(m);
        free(e);
        return jl_fail(L, "no_memory", "js:publish_async: out of memory");
    }
    rt_pubq_enter(&p->q, &e->q, size, (uint32_t)(timeout * 1000.0), tries);
    if (e->up) {
        jl_msg_output_add(e->up);
        lua_pushvalue(L, 8);
        e->up_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (e->up) {
        /* linked to a consumed message, which carries the outcome: no
         * future (one userdata and one collection less per message) */
        lua_pushboolean(L, 1);
        jl_pub_enter(p, e);
        if (p->q.pending == 0 && p->draining)
            jl_pub_settle(p);
        return 1;
    }
    f = lua_newuserdata(L, sizeof *f);
    memset(f, 0, sizeof *f);
    jl_future_init(&f->f, &fut_ops);
    f->p = p;
    f->e = e;
    p->refs++;
    luaL_getmetatable(L, FUT_MT);
    lua_setmetatable(L, -2);
    e->fut = f;
    jl_pub_enter(p, e); /* may fail at once: the future then says so */
    if (f->f.state != JL_FUT_PENDING && p->q.pending == 0 && p->draining)
        jl_pub_settle(p);
    return 1;
}

/* p:_fast_prefix(prefix) -> true | false (empty or too long): a stream listens on every
 * subject under prefix, so their PubAcks take the fast path from the first
 * publish on (see jl_pub_fast_prefix). */
static int pa_fast_prefix(lua_State *L)
{
    pa *p = check_pa(L, "js:_fast_prefix");
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    lua_pushboolean(L, jl_pub_fast_prefix(p, s, len) == 0);
    return 1;
}

/* p:wait_slot(): yield until the window has room (or the publisher ends) */
static int pa_wait_slot(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async");
    rt_co *co = rt_co_current(L, "js:publish_async");
    if (!rt_pubwin_full(&p->q.win) || !p->registered)
        return 0;
    return jl_pub_wait(p, co, W_SLOT, -1);
}

/* p:complete([timeout]) -> number still pending */
static int pa_complete(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async_complete");
    double timeout = -1;
    rt_co *co;
    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "js:publish_async_complete", "timeout");
        if (timeout < 0)
            jl_argerror(L, "js:publish_async_complete", "timeout", "must be >= 0 seconds");
    }
    if (p->q.pending == 0 || timeout == 0) {
        lua_pushinteger(L, p->q.pending);
        return 1;
    }
    co = rt_co_current(L, "js:publish_async_complete");
    return jl_pub_wait(p, co, W_COMPLETE, timeout);
}

static int pa_pending(lua_State *L)
{
    lua_pushinteger(L, check_pa(L, "js:publish_async_pending")->q.pending);
    return 1;
}

static int pa_on_error(lua_State *L)
{
    pa *p = check_pa(L, "js:on_publish_error");
    if (!lua_isnil(L, 2))
        jl_check_function(L, 2, "js:on_publish_error", "fn");
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    lua_pushvalue(L, 2);
    p->err_ref = lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int pa_stats(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async_stats");
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, (lua_Number)p->published);
    lua_setfield(L, -2, "published");
    lua_pushnumber(L, (lua_Number)p->acked);
    lua_setfield(L, -2, "acked");
    lua_pushnumber(L, (lua_Number)p->failed);
    lua_setfield(L, -2, "failed");
    lua_pushnumber(L, (lua_Number)p->retried);
    lua_setfield(L, -2, "retried");
    lua_pushinteger(L, p->q.pending);
    lua_setfield(L, -2, "pending");
    lua_pushinteger(L, p->max_pending);
    lua_setfield(L, -2, "max_pending");
    lua_pushnumber(L, (lua_Number)p->q.win.bytes);
    lua_setfield(L, -2, "pending_bytes");
    lua_pushnumber(L, (lua_Number)p->q.win.max_bytes);
    lua_setfield(L, -2, "max_pending_bytes");
    lua_pushnumber(L, (lua_Number)p->held_in_buffer);
    lua_setfield(L, -2, "buffer_waits");
    lua_pushnumber(L, (lua_Number)p->fast_acks);
    lua_setfield(L, -2, "fast_acks");
    return 1;
}

static int pa_gc(lua_State *L)
{
    pa_ud *u = lua_touserdata(L, 1);
    if (u->p) {
        jl_pub_release(u->p);
        u->p = NULL;
    }
    return 0;
}

void jl_inject_js_publish(lua_State *L)
{
    static const luaL_Reg pa_methods[] = {{"publish", pa_publish},
                                          {"wait_slot", pa_wait_slot},
                                          {"_fast_prefix", pa_fast_prefix},
                                          {"complete", pa_complete},
                                          {"pending", pa_pending},
                                          {"on_error", pa_on_error},
                                          {"stats", pa_stats},
                                          {NULL, NULL}};
    static const luaL_Reg pa_meta[] = {{"__gc", pa_gc}, {NULL, NULL}};
    static const luaL_Reg fut_methods[] = {
        {"wait", fut_wait}, {"on", fut_on}, {"status", fut_status}, {NULL, NULL}};
    static const luaL_Reg fut_meta[] = {{"__gc", fut_gc}, {NULL, NULL}};

    jl_newclass(L, PA_MT, pa_methods, pa_meta);
    jl_newclass(L, FUT_MT, fut_methods, fut_meta);
    lua_pushcfunction(L, pa_new);
    lua_setfield(L, -2, "_js_publisher");
}
