/*
 * rt_sched.h - the coroutine scheduler.
 *
 * Every entry into Lua runs in a coroutine taken from a pool: the main chunk,
 * each handler invocation, each timer callback. A pooled coroutine runs a
 * small Lua trampoline that calls the job under xpcall (LuaJIT can yield
 * across xpcall) and yields a sentinel when the job ends, so the coroutine
 * can be reused: no lua_newthread per message.
 *
 * One driver (rt_co_run) owns lua_resume, the status switch, tracebacks and
 * returning coroutines to the pool.
 *
 * Waiting bindings:
 *     rt_co *co = rt_co_current(L, "nc:request");   // raises outside a coroutine
 *     ... start the operation, remember co ...
 *     return rt_co_wait(co, cancel_fn, op);          // yields
 * and when the operation completes (on the loop thread):
 *     lua_State *T = rt_co_prepare(co);              // NULL if cancelled
 *     push results onto T ...
 *     rt_co_resume(co, nresults);
 */
#ifndef JETLUA_RT_SCHED_H
#define JETLUA_RT_SCHED_H

#include <lua.h>
#include <stdint.h>

typedef struct rt_co rt_co;
typedef void (*rt_cancel_fn)(rt_co *co, void *op);
/* Called when a job finishes: ok = 1 if it returned, 0 if it raised (the
 * error and traceback were logged unless quiet_errors), -1 if it was
 * abandoned (shutdown, or it yielded outside our API). The error message
 * is at the top of co->L during the call when ok <= 0. */
typedef void (*rt_done_fn)(rt_co *co, int ok, void *data);

enum { RT_CO_IDLE = 0, RT_CO_RUNNING, RT_CO_WAITING };

struct rt_co {
    lua_State   *L;
    int          ref;         /* registry ref keeping the thread alive */
    int          state;
    int          sleeping;    /* waiting in jet.sleep: abandoned at shutdown */
    rt_cancel_fn cancel;      /* cleanup of the pending operation */
    void        *op;
    rt_done_fn   done;
    void        *done_data;
    int          quiet_errors;/* 1: the done fn logs errors itself */
    const char  *what;        /* "handler for 'orders.*'", for logs; owned by
                                 the caller of rt_co_spawn, must outlive the job */
    rt_co       *next;        /* pool / waiting list */
    rt_co       *prev;
    uint32_t     gen;         /* bumped on every job, to detect stale completions */
};

void rt_sched_init(lua_State *L);
void rt_sched_close(void);

/* Start a job: the function and its nargs arguments must be pushed on the
 * MAIN state L (function first). Runs it now until it yields or ends.
 * what: description for logs, not copied (it must outlive the job: a
 * per-message snprintf cost measurable throughput). done may be NULL. */
rt_co *rt_co_spawn(lua_State *L, int nargs, const char *what, rt_done_fn done, void *data);

/* The coroutine L runs in, or raise "<fname>: must be called from a jetlua
 * coroutine (handler, timer, main chunk or jet.spawn)". */
rt_co *rt_co_current(lua_State *L, const char *fname);
/* Same, but returns NULL instead of raising. */
rt_co *rt_co_lookup(lua_State *L);

/* Yield co waiting for an operation; cancel(co, op) runs if the coroutine is
 * abandoned (shutdown) before completion. Holds a liveness ref while waiting. */
int rt_co_wait(rt_co *co, rt_cancel_fn cancel, void *op);

/* Before resuming: returns the coroutine's state to push results on, or
 * NULL when co is no longer waiting (then push nothing and do not resume). */
lua_State *rt_co_prepare(rt_co *co);
void rt_co_resume(rt_co *co, int nresults);

/* Counts, for shutdown: coroutines running or waiting, and the subset of
 * those that wait in jet.sleep. */
int rt_sched_busy(void);
int rt_sched_sleeping(void);
/* Shutdown: abandon every coroutine waiting in jet.sleep (runs cancel). */
void rt_sched_abandon_sleepers(void);
/* Forced shutdown: abandon every waiting coroutine. Returns how many. */
int rt_sched_abandon_all(void);

/* Log a Lua error value with where it came from ("<what> failed: msg"),
 * through rt_error_repeat. */
void rt_report_error(const char *what, const char *msg);

/* Log "<line>: <msg>" (msg: an error, maybe with its traceback) unless the
 * same error - same `where`, same text up to the traceback - was logged in
 * the last 10 s: then only count it, and a line "<where>: <text> (repeated
 * N times in the last 10 s)" follows when the window ends (or at exit). */
void rt_error_repeat(const char *where, const char *line, const char *msg);

#endif
