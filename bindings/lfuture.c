/*
 * lfuture.c - a result that one coroutine waits for or one callback hears
 * (see lfuture.h). One implementation of the waiter that js:publish_async's
 * futures, nc:request and msg:ack_sync each used to write by hand.
 */
#include "lfuture.h"
#include "rt.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

void jl_future_init(jl_future *f, const jl_future_ops *ops)
{
    memset(f, 0, sizeof *f);
    f->ops = ops;
    f->state = JL_FUT_PENDING;
    f->cb_ref = LUA_NOREF;
    f->self_ref = LUA_NOREF;
}

void jl_future_free(jl_future *f)
{
    free(f->detail);
    f->detail = NULL;
}

int jl_future_push(lua_State *L, jl_future *f)
{
    if (f->state == JL_FUT_OK)
        return f->ops->push_value(L, f);
    lua_pushnil(L);
    if (f->state == JL_FUT_PENDING) {
        lua_pushliteral(L, "pending");
        lua_pushfstring(L, "%s: not resolved yet", f->ops->name);
        return 3;
    }
    lua_pushstring(L, f->code);
    lua_pushstring(L, f->detail ? f->detail : f->code);
    if (f->err_code) {
        lua_pushinteger(L, f->err_code);
        return 4;
    }
    return 3;
}

static void anchor(lua_State *L, jl_future *f, int idx)
{
    if (idx > 0 && f->self_ref == LUA_NOREF) {
        lua_pushvalue(L, idx);
        f->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

static void unanchor(jl_future *f)
{
    if (f->self_ref != LUA_NOREF) {
        luaL_unref(RT->L, LUA_REGISTRYINDEX, f->self_ref);
        f->self_ref = LUA_NOREF;
    }
}

/* The waiter leaves (resolved, timed out or abandoned). */
static rt_co *wait_end(jl_future *f)
{
    rt_co *co = f->waiter;
    f->waiter = NULL;
    rt_timer_free(&f->timer);
    return co;
}

static void wait_timeout(uv_timer_t *t)
{
    jl_future *f = t->data;
    rt_co *co = wait_end(f);
    lua_State *T;
    if (f->cb_ref == LUA_NOREF)
        unanchor(f); /* nobody listens now: Lua may collect it */
    if ((T = rt_co_prepare(co)) == NULL)
        return;
    lua_pushnil(T);
    lua_pushliteral(T, "timeout");
    lua_pushstring(T, f->timeout_detail ? f->timeout_detail : "no result in time");
    rt_co_resume(co, 3);
}

static void wait_cancel(rt_co *co, void *op)
{
    jl_future *f = op;
    wait_end(f);
    if (f->cb_ref == LUA_NOREF)
        unanchor(f);
    if (f->ops->abandoned)
        f->ops->abandoned(f);
}

int jl_future_wait(lua_State *L, jl_future *f, rt_co *co, int self_idx, double timeout_s,
                   const char *timeout_detail)
{
    if (f->state != JL_FUT_PENDING)
        return jl_future_push(L, f);
    if (f->waiter)
        return luaL_error(L, "%s: another coroutine is already waiting on this future", f->ops->name);
    f->waiter = co;
    if (timeout_s >= 0) {
        f->timeout_detail = timeout_detail;
        f->timer = rt_timer_new(wait_timeout, f, (uint64_t)(timeout_s * 1000.0), 0);
    }
    anchor(L, f, self_idx);
    return rt_co_wait(co, wait_cancel, f);
}

void jl_future_on(lua_State *L, jl_future *f, int fn_idx, int self_idx)
{
    if (f->state != JL_FUT_PENDING) {
        lua_pushvalue(L, fn_idx);
        rt_co_spawn(L, jl_future_push(L, f), f->ops->cb_what, NULL, NULL);
        return;
    }
    if (f->cb_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, f->cb_ref);
    lua_pushvalue(L, fn_idx);
    f->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    anchor(L, f, self_idx);
}

/* Tell the callback (first) and the waiter. */
static int resolve(jl_future *f)
{
    lua_State *L = RT->L;
    int told = 0, cb = f->cb_ref;

    f->cb_ref = LUA_NOREF;
    if (cb != LUA_NOREF) {
        told = 1;
        lua_rawgeti(L, LUA_REGISTRYINDEX, cb);
        luaL_unref(L, LUA_REGISTRYINDEX, cb);
        rt_co_spawn(L, jl_future_push(L, f), f->ops->cb_what, NULL, NULL);
    }
    if (f->waiter) {
        rt_co *co = wait_end(f);
        lua_State *T;
        told = 1;
        if ((T = rt_co_prepare(co)) != NULL)
            rt_co_resume(co, jl_future_push(T, f));
    }
    unanchor(f);
    return told;
}

int jl_future_ok(jl_future *f)
{
    if (f->state != JL_FUT_PENDING)
        return 0;
    f->state = JL_FUT_OK;
    return resolve(f);
}

int jl_future_fail(jl_future *f, const char *code, const char *detail, int err_code)
{
    if (f->state != JL_FUT_PENDING)
        return 0;
    f->state = JL_FUT_ERR;
    f->code = code;
    f->err_code = err_code;
    f->detail = detail ? rt_xstrdup(detail) : NULL;
    return resolve(f);
}
