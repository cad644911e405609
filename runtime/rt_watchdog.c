/*
 * rt_watchdog.c - signals and the watchdog thread (see rt_watchdog.h).
 *
 * What the loop publishes, per job (plain stores on x86, and a vDSO
 * coarse-clock read when the outermost job starts):
 *   job_id     even: no job runs; odd: a job runs. Bumped when the outermost
 *              job starts and ends, so "same odd id twice" = the same run.
 *   job_start  when the outermost job started (coarse monotonic ms)
 *   job_what   the innermost job's description (jet.spawn inside a handler
 *              names the spawned coroutine while it runs)
 * The watchdog reads id, what, start, id and believes them when both ids
 * agree. It copies the description only while that job still runs (the
 * owner keeps it alive for the job's duration).
 *
 * Signals: SIGINT/SIGTERM handlers only write the signal number to a pipe
 * (async-signal-safe); the watchdog thread polls the pipe, so it reacts
 * whatever the loop is doing. A third signal, sent by the watchdog to the
 * loop thread with pthread_kill, sets a one-shot count hook (lua_sethook is
 * the one Lua call meant for signal handlers: luajit.c stops scripts on
 * SIGINT that way) whose callback records file:line of the running code.
 */
#include "rt_watchdog.h"
#include "rt.h"
#include "rt_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NEST_MAX 32

/* ---- published by the loop thread ---- */
static _Atomic uint64_t     job_id;
static _Atomic uint64_t     job_start;     /* coarse monotonic ms */
static _Atomic(const char *) job_what;
static _Atomic uint64_t     slow_id;       /* watchdog -> loop: this run was reported slow */
static _Atomic uint64_t     loc_shown;     /* watchdog -> loop: ... and loc was where it was */
/* "where is job loc_job now?": request loc_req, answered in loc_ready (loc
 * then holds its file:line). Numbered, so a late answer to an old request
 * (the hook fired only when compiled code left a loop) is never taken as
 * the place where the job is now. */
static _Atomic uint64_t     loc_job, loc_req, loc_ready;
static char                 loc[256];
static _Atomic uint64_t     shutdown_at;   /* ms when the graceful shutdown began, 0 = not yet */

/* loop-thread only */
static uint64_t    ids;
static int         depth;
static const char *nest[NEST_MAX];
static lua_State  *hook_L;               /* read by the poke handler, on the loop thread */

/* ---- the thread ---- */
static int        sig_pipe[2] = { -1, -1 };
static pthread_t  loop_thread, thread;
static int        running;
static int        poke_sig;
static double     slow_s, timeout_s;
static rt_event_fn signal_fn;            /* posted to the loop on the first signal */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- loop side ---- */

void rt_watchdog_job_begin(const char *what)
{
    if (depth < NEST_MAX)
        nest[depth] = what;
    if (depth++ == 0) {
        atomic_store_explicit(&job_start, now_ms(), memory_order_relaxed);
        atomic_store_explicit(&job_what, what, memory_order_relaxed);
        atomic_store_explicit(&job_id, ++ids, memory_order_release);   /* odd */
    } else {
        atomic_store_explicit(&job_what, what, memory_order_release);
    }
}

void rt_watchdog_job_end(void)
{
    if (--depth > 0) {
        atomic_store_explicit(&job_what, nest[depth <= NEST_MAX ? depth - 1 : NEST_MAX - 1],
                              memory_order_release);
        return;
    }
    if (atomic_load_explicit(&slow_id, memory_order_acquire) == ids) {
        /* the watchdog said it was slow: say how slow, now that it is over */
        uint64_t took = now_ms() - atomic_load_explicit(&job_start, memory_order_relaxed);
        int where = atomic_load_explicit(&loc_shown, memory_order_acquire) == ids;
        rt_warn("%s held the event loop for %.2fs%s%s%s", nest[0] ? nest[0] : "a job",
                (double)took / 1000.0, where ? " (at " : "", where ? loc : "", where ? ")" : "");
    }
    atomic_store_explicit(&job_id, ++ids, memory_order_release);       /* even */
}

void rt_watchdog_set_lua(lua_State *L)
{
    hook_L = L;
}

void rt_watchdog_shutdown_begun(void)
{
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&shutdown_at, &zero, now_ms());
}

/* On the loop thread, at the next instruction the interpreter runs. */
static void loc_hook(lua_State *L, lua_Debug *ar)
{
    uint64_t req = atomic_load_explicit(&loc_req, memory_order_acquire);
    lua_sethook(L, NULL, 0, 0);
    if (atomic_load_explicit(&job_id, memory_order_relaxed) != atomic_load(&loc_job))
        return;                                   /* that job is over */
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(loc, sizeof loc, "%s:%d", ar->short_src, ar->currentline);
    else if (ar->short_src[0])
        snprintf(loc, sizeof loc, "%s", ar->short_src);
    else
        return;
    atomic_store_explicit(&loc_ready, req, memory_order_release);
}

/* Signal handler, on the loop thread (sent there by the watchdog). */
static void on_poke(int sig)
{
    int e = errno;
    lua_State *L = hook_L;
    if (L && lua_gethook(L) == NULL)              /* never replace a script's own hook */
        lua_sethook(L, loc_hook, LUA_MASKCOUNT, 1);
    errno = e;
    (void)sig;
}

/* SIGINT / SIGTERM, any thread: hand the number to the watchdog. */
static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(sig_pipe[1], &b, 1);
    (void)r;
    errno = e;
}

/* ---- watchdog side ---- */

/* The running job, if any: its id, description (copied), how long it ran. */
static int current_job(uint64_t *id, char *what, size_t cap, double *secs)
{
    uint64_t a = atomic_load_explicit(&job_id, memory_order_acquire);
    const char *w = atomic_load_explicit(&job_what, memory_order_acquire);
    uint64_t start = atomic_load_explicit(&job_start, memory_order_relaxed);
    if (!(a & 1))
        return 0;
    snprintf(what, cap, "%s", w ? w : "a job");
    if (atomic_load_explicit(&job_id, memory_order_acquire) != a)
        return 0;                                 /* it ended meanwhile */
    *id = a;
    *secs = (double)(now_ms() - start) / 1000.0;
    return 1;
}

/* Ask the loop thread where job id is now; returns the request number. */
static uint64_t locate(uint64_t id)
{
    static uint64_t reqs;
    atomic_store(&loc_job, id);
    atomic_store_explicit(&loc_req, ++reqs, memory_order_release);
    pthread_kill(loop_thread, poke_sig);
    return reqs;
}

/* Did request req get its answer (within wait_ms)? */
static int located(uint64_t req, int wait_ms)
{
    for (int i = 0; i < wait_ms && atomic_load_explicit(&loc_ready, memory_order_acquire) != req; i += 5)
        usleep(5000);
    return atomic_load_explicit(&loc_ready, memory_order_acquire) == req;
}

/* " (handler for 'x' has been running for 3.1s without yielding, at app.lua:7)" */
static void describe(char *out, size_t cap, int wait_ms)
{
    char what[200];
    uint64_t id;
    double secs;

    out[0] = '\0';
    if (!current_job(&id, what, sizeof what, &secs))
        return;
    if (located(locate(id), wait_ms))
        snprintf(out, cap, " (%s has been running for %.1fs without yielding, at %s)", what, secs, loc);
    else
        snprintf(out, cap, " (%s has been running for %.1fs without yielding)", what, secs);
}

static void forced_exit(int code)
{
    rt_server_kill_now();          /* the parent-death signal would kill it too */
    _exit(code);
}

static void handle_signal(int sig, int *seen)
{
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    char why[512];

    if (++*seen > 1) {
        describe(why, sizeof why, 50);
        rt_error("received %s again: forced exit%s", name, why);
        forced_exit(128 + sig);
    }
    rt_info("received %s: shutting down gracefully (send it again to force)", name);
    rt_watchdog_shutdown_begun();
    rt_post(signal_fn, NULL, NULL);
}

static void check(uint64_t *warned, uint64_t *pending, uint64_t *pending_req, uint64_t *pending_since)
{
    char what[200];
    uint64_t id, at, now = now_ms();
    double secs;

    if (!current_job(&id, what, sizeof what, &secs)) {
        *pending = 0;
    } else {
        if (slow_s > 0 && secs >= slow_s && *warned != id) {
            *warned = id;
            atomic_store_explicit(&slow_id, id, memory_order_release);
            *pending = id;
            *pending_since = now;
            *pending_req = locate(id);
        }
        /* log once the hook answered, or after a short wait without it
         * (JIT-compiled code never runs the hook) */
        if (*pending == id && (located(*pending_req, 0) || now - *pending_since >= 200)) {
            int where = located(*pending_req, 0);
            *pending = 0;
            if (where)
                atomic_store_explicit(&loc_shown, id, memory_order_release);
            rt_warn("%s has been running for %.1fs without yielding: the event loop is blocked%s%s%s",
                    what, secs, where ? " (at " : "", where ? loc : "", where ? ")" : "");
        }
    }
    /* the shutdown bound, when the loop cannot enforce it itself */
    at = atomic_load(&shutdown_at);
    if (at && (double)(now - at) >= timeout_s * 1000.0) {
        char why[512];
        /* a job that started before the bound passed and still runs: the
         * loop's own timer cannot fire until it returns */
        if (current_job(&id, what, sizeof what, &secs) && secs >= 1.0) {
            describe(why, sizeof why, 50);
            rt_error("shutdown timed out after %.1fs: forced exit%s", timeout_s, why);
            forced_exit(1);
        }
        /* the loop's timeout path ends the process within seconds (it gives
         * the embedded server up to 5 s to stop); this is the backstop */
        if ((double)(now - at) >= timeout_s * 1000.0 + 10000.0) {
            rt_error("shutdown timed out after %.1fs and the event loop did not finish closing "
                     "10s later: forced exit", timeout_s);
            forced_exit(1);
        }
    }
}

static void *watchdog_main(void *arg)
{
    int seen = 0;
    uint64_t warned = 0, pending = 0, pending_req = 0, pending_since = 0;
    int tick = 100;
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);      /* signals go to the other threads */
    if (slow_s > 0 && slow_s * 1000.0 / 4 < tick)
        tick = slow_s * 1000.0 / 4 < 10 ? 10 : (int)(slow_s * 1000.0 / 4);
    for (;;) {
        struct pollfd p = { .fd = sig_pipe[0], .events = POLLIN };
        if (poll(&p, 1, tick) > 0) {
            unsigned char b[16];
            ssize_t n = read(sig_pipe[0], b, sizeof b);
            for (ssize_t i = 0; i < n; i++) {
                if (b[i] == 0)
                    return NULL;                 /* rt_watchdog_stop */
                handle_signal(b[i], &seen);
            }
        }
        check(&warned, &pending, &pending_req, &pending_since);
    }
}

int rt_watchdog_start(rt_event_fn on_first_signal)
{
    struct sigaction sa;

    signal_fn = on_first_signal;
    if (pipe2(sig_pipe, O_CLOEXEC) != 0)
        return -1;
    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);     /* a flood of signals never blocks a handler */
    loop_thread = pthread_self();
    poke_sig = SIGRTMIN + 3;
    slow_s = RT->cfg.slow_handler == 0 ? 1.0 : RT->cfg.slow_handler;
    timeout_s = RT->cfg.shutdown_timeout;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_poke;
    sigaction(poke_sig, &sa, NULL);
    if (pthread_create(&thread, NULL, watchdog_main, NULL) != 0)
        return -1;
    running = 1;
    return 0;
}

void rt_watchdog_stop(void)
{
    unsigned char zero = 0;
    ssize_t r;

    if (!running)
        return;
    running = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    r = write(sig_pipe[1], &zero, 1);
    (void)r;
    pthread_join(thread, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
}
