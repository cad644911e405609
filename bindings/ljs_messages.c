/*
 * ljs_messages.c - js:messages and js:fetch: the coroutine that waits for
 * pulled messages (the engine is ljs_pull.c, see ljs_pull.h).
 *
 * messages: an iterator; it:next([timeout]) hands out one buffered message,
 * or waits for one (nil, "timeout" after timeout seconds; nil, code when
 * the engine ends). fetch: one request; f:fetch() waits until it is over
 * (batch reached, a status, its expiry, a missed heartbeat) and returns the
 * messages as a list (with an error code when one ended it).
 */
#include "ljs_pull.h"

#include <stdio.h>
#include <string.h>

void jl_pull_wait_stop(jl_pull *p)
{
    if (p->wait_timer)
        uv_timer_stop(p->wait_timer);
}

static void push_msg(lua_State *T, jl_pull *p)
{
    lmsg *u = jl_msg_push_ud(T, jl_pull_q_pop(p), p->c);
    jl_msg_set_stats(u, p->st);
}

static void messages_wake_next(jl_pull *p, const char *code)
{
    rt_co *co = p->next_co;
    lua_State *T;
    if (!co || p->w.mode != RT_PULL_MESSAGES)
        return;
    if (p->qlen == 0 && !code)
        return;
    p->next_co = NULL;
    jl_pull_wait_stop(p);
    T = rt_co_prepare(co);
    if (!T)
        return;
    if (p->qlen > 0) {
        push_msg(T, p);
        rt_co_resume(co, 1);
        jl_pull_maybe_pull(p);
        return;
    }
    lua_pushnil(T);
    lua_pushstring(T, code);
    if (p->term_code && strcmp(code, p->term_code) == 0) {
        lua_pushstring(T, p->term_detail);
        rt_co_resume(co, 3);
    } else {
        rt_co_resume(co, 2);
    }
}

static void messages_fetch_finish(jl_pull *p, const char *code, const char *detail)
{
    rt_co *co;
    lua_State *T;
    if (p->fetch_done)
        return;
    p->fetch_done = 1;
    p->end_code = code;
    if (detail)
        snprintf(p->end_detail, sizeof p->end_detail, "%s", detail);
    co = p->next_co;
    p->next_co = NULL;
    jl_pull_wait_stop(p);
    jl_pull_close(p, 0, NULL);              /* unsubscribe; the ring is handed over below */
    if (!co || !(T = rt_co_prepare(co)))
        return;
    lua_createtable(T, p->qlen, 0);
    for (int i = 1; p->qlen > 0; i++) {
        push_msg(T, p);
        lua_rawseti(T, -2, i);
    }
    if (code) {
        lua_pushstring(T, code);
        lua_pushstring(T, p->end_detail);
        rt_co_resume(co, 3);
    } else {
        rt_co_resume(co, 1);
    }
}

const jl_pull_ops jl_pull_messages_ops = {NULL, NULL, messages_wake_next, messages_fetch_finish};

static void on_wait_timer(uv_timer_t *t)
{
    jl_pull *p = t->data;
    if (p->w.mode == RT_PULL_FETCH)
        jl_pull_fetch_finish(p, NULL, NULL);    /* expired: what arrived is the answer */
    else
        jl_pull_wake_next(p, "timeout");
}

/* cppcheck-suppress constParameter ; the signature is the callback type's */
static void wait_cancel(rt_co *co, void *op)
{
    jl_pull *p = op;
    if (p->next_co == co) {
        p->next_co = NULL;
        jl_pull_wait_stop(p);
    }
}

/* f:fetch() -> list, nil | list, code, detail (fetch mode) */
int jl_pull_lua_fetch(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "js:fetch");
    rt_co *co;
    if (p->w.mode != RT_PULL_FETCH)
        return luaL_error(L, "consumer:fetch: not a js:fetch request (use js:fetch)");
    co = rt_co_current(L, "js:fetch");
    if (p->fetch_done || !p->wait_timer) {
        lua_newtable(L);
        return 1;
    }
    if (p->next_co)
        return luaL_error(L, "js:fetch: already waiting");
    p->next_co = co;
    uv_timer_start(p->wait_timer, on_wait_timer, p->w.expires_ms + RT_PULL_EXPIRY_GRACE_MS, 0);
    return rt_co_wait(co, wait_cancel, p);
}

/* it:next([timeout]) -> msg | nil, "timeout" | nil, "closed" */
int jl_pull_lua_next(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "it:next");
    double timeout = -1;
    rt_co *co;
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) == LUA_TNUMBER) {
        timeout = lua_tonumber(L, 2);
        if (timeout < 0)
            jl_argerror(L, "it:next", "timeout", "must be >= 0 seconds");
    }
    if (p->w.mode != RT_PULL_MESSAGES)
        return luaL_error(L, "it:next: not a messages() iterator");
    if (p->qlen > 0) {
        push_msg(L, p);
        jl_pull_maybe_pull(p);
        jl_pull_maybe_finalize(p);
        return 1;
    }
    if (p->state == JL_PULL_CLOSED || p->state == JL_PULL_STOPPING ||
        (p->state == JL_PULL_DRAINING && !p->sub && !p->flushing)) {
        if (p->state == JL_PULL_DRAINING) {
            p->state = JL_PULL_STOPPING;
            jl_pull_maybe_finalize(p);
        }
        if (p->term_code)
            return jl_fail(L, p->term_code, p->term_detail);
        return jl_fail(L, "closed", "the iterator is closed");
    }
    if (timeout == 0)
        return jl_fail(L, "timeout", "no message buffered");
    co = rt_co_current(L, "it:next");
    if (p->next_co)
        return luaL_error(L, "it:next: another coroutine is already waiting on this iterator");
    p->next_co = co;
    if (timeout > 0 && p->wait_timer)
        uv_timer_start(p->wait_timer, on_wait_timer, (uint64_t)(timeout * 1000.0), 0);
    return rt_co_wait(co, wait_cancel, p);
}

int jl_pull_lua_call(lua_State *L)
{
    lua_settop(L, 1);                       /* for msg in it do: it(nil, nil) */
    return jl_pull_lua_next(L);
}
