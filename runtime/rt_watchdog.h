/*
 * rt_watchdog.h - signals and a watchdog that work while the loop is stuck.
 *
 * A Lua handler that never yields (`while true do end`) holds the loop
 * thread, so nothing that runs on the loop can react to it. A thread of our
 * own (the watchdog) receives SIGINT/SIGTERM, watches how long the current
 * job has run, and:
 *  - first signal: logs it and asks the loop for a graceful shutdown;
 *  - second signal: forced exit, naming the job that was running;
 *  - the --shutdown-timeout bound passed while a job still holds the loop:
 *    forced exit (the loop's own timer cannot fire), naming the job;
 *  - a job that runs longer than --slow-handler: a warning with its name and,
 *    when the interpreter can tell, its file:line (a one-shot count hook set
 *    from a signal handler on the loop thread, as luajit.c does for SIGINT;
 *    JIT-compiled loops skip hooks, then the name is what we have).
 * The watchdog never touches Lua or libuv; the embedded server and children
 * started with a parent-death signal die with the process.
 */
#ifndef JETLUA_RT_WATCHDOG_H
#define JETLUA_RT_WATCHDOG_H

#include <lua.h>

#include "rt.h"

/* Loop thread, once, before any other thread exists. On the first
 * SIGINT/SIGTERM the watchdog posts on_signal to the loop (rt_post): the
 * owner starts its graceful shutdown there. -1 on failure. */
int  rt_watchdog_start(rt_event_fn on_first_signal);
/* Teardown: stop the thread (signals kill the process again afterwards). */
void rt_watchdog_stop(void);
/* The state hooks may be set on; NULL before lua_close. Loop thread. */
void rt_watchdog_set_lua(lua_State *L);
/* The graceful shutdown started (signal, jet.exit, error, nothing left). */
void rt_watchdog_shutdown_begun(void);

/* Loop thread, around each lua_resume of a job (nested ones too). what must
 * stay valid while the job runs (see rt_co_spawn). */
void rt_watchdog_job_begin(const char *what);
void rt_watchdog_job_end(void);

#endif
