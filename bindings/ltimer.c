/*
 * ltimer.c - jet.sleep, jet.timer, jet.every.
 *
 * Lifetime: a timer's C struct is malloc'd (libuv needs stable memory until
 * its close callback) and the userdata points to it. While a timer is armed
 * it holds a registry ref on its own userdata and a liveness ref, so a timer
 * the script dropped still fires and keeps the process alive, like node.
 */
#include "jl.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdlib.h>

#define TIMER_MT "jetlua.timer"

/* ---- jet.sleep ---- */

/* The pending operation is the timer itself (rt_timer.h); its data is the
 * sleeping coroutine. */
static void sleep_fired(uv_timer_t *t)
{
    rt_co *co = t->data;
    rt_timer_free(&t);
    if (rt_co_prepare(co))
        rt_co_resume(co, 0);
}

static void sleep_cancel(rt_co *co, void *p)
{
    uv_timer_t *t = p;
    rt_timer_free(&t);
}

static uint64_t check_seconds(lua_State *L, int idx, const char *fname, const char *arg)
{
    double s = jl_check_number(L, idx, fname, arg);
    if (!(s >= 0) || s > 1e9)
        jl_argerror(L, fname, arg, "seconds must be >= 0 and <= 1e9, got %g", s);
    return (uint64_t)(s * 1000.0 + 0.5);
}

static int jl_sleep(lua_State *L)
{
    uint64_t ms = check_seconds(L, 1, "jet.sleep", "seconds");
    rt_co *co = rt_co_current(L, "jet.sleep");
    uv_timer_t *t = rt_timer_new(sleep_fired, co, ms, 0);
    co->sleeping = 1;
    return rt_co_wait(co, sleep_cancel, t);
}

/* ---- jet.timer / jet.every ---- */

typedef struct ltimer {
    uv_timer_t t;
    int        fn_ref;
    int        self_ref;    /* held while armed */
    int        running;     /* callbacks in flight */
    int        armed;
    int        repeat;
    int        gone;        /* userdata collected */
} ltimer;

typedef struct { ltimer *t; } ltimer_ud;

static void free_handle(uv_handle_t *h) { free(h->data); }

static void timer_disarm(lua_State *L, ltimer *t)
{
    if (!t->armed)
        return;
    t->armed = 0;
    uv_timer_stop(&t->t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
    rt_unref();
}

static void timer_done(rt_co *co, int ok, void *data)
{
    ltimer *t = data;
    t->running--;
}

static void timer_fired(uv_timer_t *h)
{
    ltimer *t = h->data;
    lua_State *L = RT->L;

    if (RT->exiting) {
        timer_disarm(L, t);
        return;
    }
    if (!t->repeat) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);  /* the timer object, for the callback */
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
        lua_insert(L, -2);
        timer_disarm(L, t);
    } else {
        if (t->running > 0) {
            rt_debug("jet.every: previous run still busy, tick skipped");
            return;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
    }
    t->running++;
    rt_co_spawn(L, 1, t->repeat ? "jet.every callback" : "jet.timer callback", timer_done, t);
}

static int new_timer(lua_State *L, const char *fname, int repeat)
{
    uint64_t ms = check_seconds(L, 1, fname, "seconds");
    ltimer_ud *ud;
    ltimer *t;

    jl_check_function(L, 2, fname, "fn");
    if (repeat && ms == 0)
        jl_argerror(L, fname, "seconds", "an interval must be > 0");
    t = rt_xcalloc(1, sizeof *t);
    uv_timer_init(RT->loop, &t->t);
    t->t.data = t;
    t->repeat = repeat;
    lua_pushvalue(L, 2);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ud = lua_newuserdata(L, sizeof *ud);
    ud->t = t;
    luaL_getmetatable(L, TIMER_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->armed = 1;
    rt_ref();
    uv_update_time(RT->loop);   /* the cached time may be old: see rt_timer.h */
    uv_timer_start(&t->t, timer_fired, ms, repeat ? ms : 0);
    return 1;
}

static int jl_timer(lua_State *L) { return new_timer(L, "jet.timer", 0); }
static int jl_every(lua_State *L) { return new_timer(L, "jet.every", 1); }

static int timer_stop(lua_State *L)
{
    ltimer_ud *ud = luaL_checkudata(L, 1, TIMER_MT);
    int was = ud->t->armed;
    timer_disarm(L, ud->t);
    lua_pushboolean(L, was);
    return 1;
}

static int timer_active(lua_State *L)
{
    ltimer_ud *ud = luaL_checkudata(L, 1, TIMER_MT);
    lua_pushboolean(L, ud->t->armed);
    return 1;
}

static int timer_gc(lua_State *L)
{
    ltimer_ud *ud = luaL_checkudata(L, 1, TIMER_MT);
    ltimer *t = ud->t;
    /* Not armed (an armed timer holds a ref to this userdata). */
    luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    if (uv_is_closing((uv_handle_t *)&t->t))
        free(t);          /* closed by the shutdown walk already */
    else
        uv_close((uv_handle_t *)&t->t, free_handle);
    return 0;
}

void jl_inject_timer(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"stop", timer_stop}, {"active", timer_active}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", timer_gc}, {NULL, NULL}};
    jl_newclass(L, TIMER_MT, methods, meta);
    lua_pushcfunction(L, jl_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, jl_timer);
    lua_setfield(L, -2, "timer");
    lua_pushcfunction(L, jl_every);
    lua_setfield(L, -2, "every");
}
