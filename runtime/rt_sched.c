/*
 * rt_sched.c - pooled coroutines and the one resume driver (see rt_sched.h).
 *
 * Lifetime: each rt_co is malloc'd and owns a registry ref to its thread
 * (co->ref) for as long as it is pooled, running or waiting. A coroutine that
 * is abandoned (shutdown, or it yielded outside our API) drops the ref and the
 * struct is freed; the thread is then garbage.
 */
#include "rt_sched.h"
#include "rt.h"
#include "rt_list.h"
#include "rt_mem.h"
#include "rt_repeat.h"
#include "rt_traceback.h"
#include "rt_watchdog.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trampoline every pooled coroutine runs. `step` yields IDLE with the
 * previous job's outcome and receives the next job; both calls are tail
 * calls, so the coroutine's stack does not grow from job to job. xpcall with
 * extra arguments and yielding across it are LuaJIT features we rely on.
 *
 * The message handler is a coroutine.wrap function whose body runs on its
 * own stack and reads the failed job's stack from there (job_traceback):
 * after a stack overflow in JIT-compiled code, LuaJIT can still resume it
 * where it cannot enter any Lua or C handler (see rt_traceback.c). The
 * chunk also returns the handler and a capturing variant ({value=,
 * traceback=}) for the Lua parts of jetlua (jet._onerror, jet._capture_error). */
#include "scheduler.lua.h" /* trampoline_src[]: runtime/embedded/scheduler.lua */

#define POOL_MAX 256

static lua_State *ML;           /* main state */
static int        trampoline_ref = LUA_NOREF;
static int        map_ref = LUA_NOREF;   /* registry table: thread ptr -> rt_co ptr */
static char       idle_key;              /* address used as the IDLE sentinel */
static rt_co     *pool;
static int        pool_n;
static rt_co     *waiting;               /* doubly linked list of waiting coroutines */
static int        n_busy, n_sleeping;
static lua_State *job_L;                 /* the job running now (innermost) */

/* job_traceback(err): called on the handler's coroutine, reads the stack of
 * the job that failed. */
static int job_traceback(lua_State *L)
{
    rt_traceback_push(L, job_L ? job_L : L);
    return 1;
}

/* ---- errors, said once per window (rt_repeat) ---- */

#define REPEAT_WINDOW_MS 10000

static rt_repeat  repeats;
static uv_timer_t repeat_timer;
static int        repeat_ready, repeat_armed;

static void repeat_line(const char *where, const char *text, uint64_t count, uint64_t ms, void *ud)
{
    (void)ud;
    rt_error("%s: %s (repeated %llu time%s in the last %.0f s)", where, text, (unsigned long long)count,
             count == 1 ? "" : "s", ms / 1000.0 < 1 ? 1.0 : ms / 1000.0);
}

static void on_repeat_timer(uv_timer_t *t)
{
    if (rt_repeat_flush(&repeats, uv_now(t->loop), 0, repeat_line, NULL) == 0) {
        uv_timer_stop(t);
        repeat_armed = 0;
    }
}

void rt_error_repeat(const char *where, const char *line, const char *msg)
{
    const char *text = msg ? msg : "(error object is not a string)";
    uint64_t now;
    if (!RT || !RT->loop) {
        rt_error("%s: %s", line, text);
        return;
    }
    if (!repeat_ready) {
        rt_repeat_init(&repeats, REPEAT_WINDOW_MS);
        uv_timer_init(RT->loop, &repeat_timer);
        uv_unref((uv_handle_t *)&repeat_timer);
        repeat_ready = 1;
    }
    now = uv_now(RT->loop);
    if (rt_repeat_hit(&repeats, where, text, rt_repeat_text_len(text), now, repeat_line, NULL))
        rt_error("%s: %s", line, text);
    if (!repeat_armed && repeats.n > 0 && !uv_is_closing((uv_handle_t *)&repeat_timer)) {
        uv_timer_start(&repeat_timer, on_repeat_timer, 1000, 1000);
        repeat_armed = 1;
    }
}

void rt_report_error(const char *what, const char *msg)
{
    char where[256];
    snprintf(where, sizeof where, "%s failed", what ? what : "coroutine");
    rt_error_repeat(where, where, msg);
}

/* Shutdown: say the counts still pending, close the timer. */
static void repeat_close(void)
{
    if (!repeat_ready)
        return;
    rt_repeat_flush(&repeats, uv_now(RT->loop), 1, repeat_line, NULL);
    rt_repeat_free(&repeats);
    if (!uv_is_closing((uv_handle_t *)&repeat_timer))
        uv_close((uv_handle_t *)&repeat_timer, NULL);
    repeat_ready = repeat_armed = 0;
}

static void map_set(lua_State *co, rt_co *c)
{
    lua_rawgeti(ML, LUA_REGISTRYINDEX, map_ref);
    lua_pushlightuserdata(ML, co);
    if (c)
        lua_pushlightuserdata(ML, c);
    else
        lua_pushnil(ML);
    lua_rawset(ML, -3);
    lua_pop(ML, 1);
}

rt_co *rt_co_lookup(lua_State *L)
{
    rt_co *c;
    lua_rawgeti(L, LUA_REGISTRYINDEX, map_ref);
    lua_pushlightuserdata(L, L);
    lua_rawget(L, -2);
    c = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return c;
}

rt_co *rt_co_current(lua_State *L, const char *fname)
{
    rt_co *c = rt_co_lookup(L);
    if (!c || c->L != L || c->state != RT_CO_RUNNING)
        luaL_error(L, "%s: must be called from a jetlua coroutine "
                      "(main chunk, handler, timer or jet.spawn), not from a "
                      "plain coroutine or a metamethod", fname);
    return c;
}

/* c is WAITING: it is in the waiting list */
static void unlink_waiting(rt_co *c)
{
    RT_LIST_UNLINK(waiting, c);
}

static void destroy_co(rt_co *c)
{
    map_set(c->L, NULL);
    luaL_unref(ML, LUA_REGISTRYINDEX, c->ref);
    free(c);
}

static void run(rt_co *c, int nargs);

static rt_co *new_co(void)
{
    rt_co *c = rt_xcalloc(1, sizeof *c);
    c->L = lua_newthread(ML);
    c->ref = luaL_ref(ML, LUA_REGISTRYINDEX);
    map_set(c->L, c);
    /* Start the trampoline: it yields IDLE at once. */
    lua_rawgeti(c->L, LUA_REGISTRYINDEX, trampoline_ref);
    c->state = RT_CO_IDLE;
    if (lua_resume(c->L, 0) != LUA_YIELD) {
        rt_error("scheduler: trampoline failed to start: %s", lua_tostring(c->L, -1));
        destroy_co(c);
        return NULL;
    }
    lua_settop(c->L, 0);
    return c;
}

static void release(rt_co *c)
{
    c->state = RT_CO_IDLE;
    c->done = NULL;
    c->done_data = NULL;
    c->cancel = NULL;
    c->op = NULL;
    c->sleeping = 0;
    c->quiet_errors = 0;
    n_busy--;
    lua_settop(c->L, 0);
    if (pool_n < POOL_MAX) {
        RT_LIST_PUSH(pool, c);
        pool_n++;
    } else {
        destroy_co(c);
    }
}

/* A coroutine we cannot resume any more: drop it. */
static void abandon(rt_co *c, const char *why)
{
    rt_done_fn done = c->done;
    void *data = c->done_data;

    if (c->state == RT_CO_WAITING) {
        unlink_waiting(c);
        if (c->cancel)
            c->cancel(c, c->op);
        if (c->sleeping)
            n_sleeping--;
        rt_unref();
    }
    c->state = RT_CO_IDLE;
    n_busy--;
    if (done) {
        lua_pushstring(c->L, why);
        done(c, -1, data);
    }
    destroy_co(c);
}

/* The one resume driver. */
static void run(rt_co *c, int nargs)
{
    int st;

    lua_State *outer = job_L;

    c->state = RT_CO_RUNNING;
    c->gen++;
    job_L = c->L;
    rt_watchdog_job_begin(c->what);
    st = lua_resume(c->L, nargs);
    rt_watchdog_job_end();
    job_L = outer;
    if (st == LUA_YIELD) {
        int n = lua_gettop(c->L);
        if (n >= 1 && lua_touserdata(c->L, 1) == &idle_key) {
            /* the job ended: (IDLE, ok, err) */
            int ok = lua_toboolean(c->L, 2);
            if (!ok && !c->quiet_errors)
                rt_report_error(c->what, lua_tostring(c->L, 3));
            if (c->done) {
                lua_settop(c->L, 3);
                c->done(c, ok, c->done_data);
            }
            release(c);
        } else if (c->state == RT_CO_WAITING) {
            /* a binding is waiting for an operation: nothing to do */
        } else {
            rt_error("%s: coroutine.yield() was called outside a jetlua API; "
                     "the coroutine is abandoned (use jet.sleep or a waiting "
                     "jetlua call instead)", c->what);
            abandon(c, "yielded outside a jetlua API");
        }
        return;
    }
    /* The trampoline itself failed (out of memory, C-call boundary...). */
    rt_report_error(c->what, lua_tostring(c->L, -1));
    c->state = RT_CO_IDLE;
    n_busy--;
    if (c->done) {
        c->done(c, 0, c->done_data);
    }
    destroy_co(c);
}

rt_co *rt_co_spawn(lua_State *L, int nargs, const char *what, rt_done_fn done, void *data)
{
    rt_co *c = pool;
    if (c) {
        RT_LIST_UNLINK(pool, c);
        pool_n--;
    } else if (!(c = new_co())) {
        lua_pop(L, nargs + 1);
        rt_error("scheduler: cannot create a coroutine for %s", what);
        return NULL;
    }
    c->done = done;
    c->done_data = data;
    c->what = what ? what : "coroutine";
    n_busy++;
    lua_xmove(L, c->L, nargs + 1);
    run(c, nargs + 1);
    return c;
}

int rt_co_wait(rt_co *c, rt_cancel_fn cancel, void *op)
{
    c->state = RT_CO_WAITING;
    c->cancel = cancel;
    c->op = op;
    RT_LIST_PUSH(waiting, c);
    if (c->sleeping)
        n_sleeping++;
    rt_ref();
    return lua_yield(c->L, 0);
}

lua_State *rt_co_prepare(rt_co *c)
{
    if (c->state != RT_CO_WAITING)
        return NULL;
    unlink_waiting(c);
    if (c->sleeping) {
        n_sleeping--;
        c->sleeping = 0;
    }
    c->cancel = NULL;
    c->op = NULL;
    c->state = RT_CO_RUNNING;
    rt_unref();
    return c->L;
}

void rt_co_resume(rt_co *c, int nresults)
{
    run(c, nresults);
}

int rt_sched_busy(void)     { return n_busy; }
int rt_sched_sleeping(void) { return n_sleeping; }

void rt_sched_abandon_sleepers(void)
{
    rt_co *c = waiting, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->sleeping)
            abandon(c, "jet.sleep abandoned at shutdown");
    }
}

int rt_sched_abandon_all(void)
{
    int n = 0;
    while (waiting) {
        rt_debug("abandoning %s at shutdown", waiting->what);
        abandon(waiting, "abandoned at shutdown");
        n++;
    }
    return n;
}

void rt_sched_init(lua_State *L)
{
    ML = L;
    rt_watchdog_set_lua(L);     /* where it may set its location hook */
    lua_newtable(L);
    map_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_loadbuffer(L, trampoline_src, sizeof trampoline_src - 1, "=jetlua.scheduler") != 0) {
        rt_error("scheduler: %s", lua_tostring(L, -1));
        abort();
    }
    lua_pushlightuserdata(L, &idle_key);
    lua_pushcfunction(L, job_traceback);
    lua_call(L, 2, 3);
    lua_setfield(L, LUA_REGISTRYINDEX, "jetlua.capture_error");
    lua_setfield(L, LUA_REGISTRYINDEX, "jetlua.onerror");
    trampoline_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void rt_sched_close(void)
{
    repeat_close();
    rt_sched_abandon_all();
    while (pool) {
        rt_co *c = pool;
        RT_LIST_UNLINK(pool, c);
        destroy_co(c);
    }
    pool_n = 0;
}
