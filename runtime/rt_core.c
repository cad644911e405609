/*
 * rt_core.c - the runtime's lifecycle: loop, inbox, liveness and the
 * graceful shutdown state machine (signals: rt_watchdog.c).
 *
 * Shutdown (DESIGN.md "Shutdown"), driven by a uv_prepare handle that looks at
 * the state after every loop iteration:
 *   RUNNING  -> DRAINING  rt_shutdown(): timers stop, sleepers are abandoned,
 *                         "stop" hooks begin (subscriptions drain: no new
 *                         messages, queued ones are still handled), handlers
 *                         still running get to finish (bounded)
 *   DRAINING -> HOOKS     stop hooks done and no handler busy: "close" hooks
 *                         begin (connections drain and close, children die)
 *   HOOKS    -> SERVER    every hook done: the embedded server is stopped
 *   SERVER   -> CLOSING   server gone: every remaining handle is closed and
 *                         uv_run returns
 * A timer bounds the whole thing (--shutdown-timeout); when it fires,
 * whatever is left is abandoned, logged, and the exit code says so. When a
 * handler holds the loop so that the timer cannot fire, the watchdog thread
 * ends the process (rt_watchdog.c), as it does on a second signal.
 *
 * The state every part shares (RT, rt_post, liveness refs) is in
 * rt_state.c, below this file and below what it drives (the scheduler, the
 * watchdog), which therefore never call back up into it.
 */
#include "rt.h"
#include "rt_list.h"
#include "rt_natsuv.h"
#include "rt_notify.h"
#include "rt_sched.h"
#include "rt_server.h"
#include "rt_state.h"
#include "rt_watchdog.h"

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ST_RUNNING = 0, ST_DRAINING, ST_HOOKS, ST_SERVER, ST_CLOSING };

static uv_prepare_t check;   /* runs before each poll: sees state changes at once */
static uv_timer_t shutdown_timer;
static rt_hook   *hooks;

/* ---- hooks ---- */

void rt_hook_add(rt_hook *h)
{
    h->done = 0;
    h->begun = 0;
    RT_LIST_PUSH(hooks, h);
}

/* Removing a hook that is not linked (never added, or removed before) is
 * allowed and does nothing. */
void rt_hook_remove(rt_hook *h)
{
    if (h->prev || hooks == h)
        RT_LIST_UNLINK(hooks, h);
}

void rt_hook_done(rt_hook *h)
{
    h->done = 1;
}

/* ---- shutdown ---- */

static void advance(void);

/* Begin every hook of this phase that has not begun. A begin may remove
 * its own hook (finished at once), so the next pointer is read first. */
static void begin_phase(int phase)
{
    for (rt_hook *h = hooks, *next; h; h = next) {
        next = h->next;
        if (h->phase == phase && !h->begun && !h->done) {
            h->begun = 1;
            if (h->begin)
                h->begin(h);
        }
    }
}

static int phase_pending(int phase)
{
    int n = 0;
    for (rt_hook *h = hooks; h; h = h->next)
        n += (h->phase == phase && !h->done);
    return n;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    int left = rt_sched_abandon_all();
    int hooks_left = 0;
    for (rt_hook *h = hooks, *next; h; h = next) {
        next = h->next;
        if (!h->done)
            hooks_left++;
    }
    rt_error("shutdown timed out after %.1fs: %d handler(s) still running, %d resource(s) not closed; "
             "closing them now", RT->cfg.shutdown_timeout, left, hooks_left);
    RT->unclean = 1;
    /* Close what is left for real: an abandoned connection would keep cnats'
     * threads (and any flush waiting in the threadpool) alive after its loop
     * handles are gone. */
    for (rt_hook *h = hooks, *next; h; h = next) {
        next = h->next;
        if (!h->done && h->force)
            h->force(h);
    }
    for (rt_hook *h = hooks; h; h = h->next)
        h->done = 1;
    if (RT->exiting < ST_HOOKS)
        RT->exiting = ST_HOOKS;
    advance();
}

void rt_shutdown(int code)
{
    if (code != 0 && RT->exit_code == 0)
        RT->exit_code = code;
    if (RT->exiting != ST_RUNNING)
        return;
    RT->exiting = ST_DRAINING;
    rt_notify_stopping();             /* systemd: STOPPING=1 */
    rt_watchdog_shutdown_begun();     /* it enforces the bound if a job holds the loop */
    rt_debug("shutdown: draining (exit code %d)", RT->exit_code);
    rt_sched_abandon_sleepers();
    uv_timer_start(&shutdown_timer, on_shutdown_timeout,
                   (uint64_t)(RT->cfg.shutdown_timeout * 1000.0), 0);
    uv_unref((uv_handle_t *)&shutdown_timer);
}

static void server_stopped(void *data)
{
    RT->exiting = ST_CLOSING;
    advance();
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void advance(void)
{
    int progress = 1;

    while (progress) {
        progress = 0;
        switch (RT->exiting) {
        case ST_RUNNING:
            if (RT->live <= 0 && RT->main_done) {
                rt_shutdown(0);
                progress = 1;
            }
            break;
        case ST_DRAINING:
            begin_phase(RT_PHASE_STOP);     /* also stops work registered late */
            rt_sched_abandon_sleepers();
            if (phase_pending(RT_PHASE_STOP) || rt_sched_busy() - rt_sched_sleeping() > 0)
                break;
            RT->exiting = ST_HOOKS;
            rt_debug("shutdown: closing resources");
            begin_phase(RT_PHASE_CLOSE);
            progress = 1;
            break;
        case ST_HOOKS: {
            if (phase_pending(RT_PHASE_CLOSE) || phase_pending(RT_PHASE_STOP))
                break;
            /* cnats reports a connection closed before its (possibly
             * off-thread) detach reaches us: wait for the detach, or the
             * handle walk below would close an async cnats still signals */
            if (!RT->unclean && rt_natsuv_live() > 0)
                break;
            RT->exiting = ST_SERVER;
            rt_server_stop(server_stopped, NULL);
            progress = 1;   /* server_stopped may have run synchronously */
            break;
        }
        case ST_SERVER:
            break;
        case ST_CLOSING:
            RT->exiting = ST_CLOSING + 1;
            uv_timer_stop(&shutdown_timer);
            rt_state_close_inbox();
            uv_walk(RT->loop, close_walk, NULL);
            /* After a timed-out shutdown, work may still sit in libuv's
             * threadpool (a flush waiting up to its own timeout): do not let
             * it hold the exit past the bound. main() then exits at once. */
            if (RT->unclean)
                uv_stop(RT->loop);
            break;
        default:
            break;
        }
    }
}

static void on_check(uv_prepare_t *h)
{
    advance();
}

/* The watchdog thread got a first SIGINT/SIGTERM (rt_post: loop thread). */
static void on_signal(void *a, void *b)
{
    rt_shutdown(0);
}

/* ---- lifecycle ---- */

int rt_init(void)
{
    RT->loop = uv_default_loop();
    if (rt_state_open_inbox(RT->loop) != 0)
        return -1;
    uv_prepare_init(RT->loop, &check);
    uv_prepare_start(&check, on_check);
    uv_timer_init(RT->loop, &shutdown_timer);
    signal(SIGPIPE, SIG_IGN);
    if (RT->cfg.shutdown_timeout <= 0)
        RT->cfg.shutdown_timeout = 10.0;
    /* SIGINT/SIGTERM: handled by the watchdog thread, so they work even
     * while a handler holds the loop (see rt_watchdog.h) */
    return rt_watchdog_start(on_signal);
}

/* Runs until the shutdown state machine closed every handle. */
int rt_run(void)
{
    advance();            /* the main chunk may already be done */
    uv_run(RT->loop, UV_RUN_DEFAULT);
    return 0;
}

void rt_teardown(void)
{
    if (RT->L) {
        rt_sched_close();
        rt_watchdog_set_lua(NULL);
        lua_close(RT->L);
        RT->L = NULL;
    }
    /* lua_close may have closed handles (finalizers): let them finish. */
    uv_run(RT->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(RT->loop) != 0)
        rt_debug("loop closed with handles still open");
    /* Wait for cnats' threads, so no late callback finds freed memory. */
    nats_CloseAndWait(2000);
    rt_watchdog_stop();
    rt_state_free_inbox();
}
