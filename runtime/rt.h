/*
 * rt.h - the jetlua runtime: one libuv loop that owns one lua_State.
 * RT, rt_post, liveness refs and clocks are in rt_state.c; hooks, the
 * shutdown and the lifecycle in rt_core.c.
 *
 * Threading rule: every function declared here runs on the loop thread,
 * except rt_post(), which any thread may call (it is the only bridge from
 * cnats threads into the loop).
 */
#ifndef JETLUA_RT_H
#define JETLUA_RT_H

#include <stdint.h>
#include <stddef.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "rt_log.h"

/* ---- process-wide configuration, filled by main.c from the CLI ---- */
typedef struct rt_cfg {
    const char **servers;      /* NULL-terminated; NULL = embedded default */
    int          nservers;
    const char  *user, *password, *token, *creds;
    const char  *password_file, *token_file; /* read into password/token by rt_auth_resolve */
    const char  *nkey;         /* NKey user seed file */
    char         nkey_pub[64]; /* its public key (rt_auth_resolve) */
    const char  *tls_ca, *tls_cert, *tls_key;
    const char  *name;
    const char  *state_dir;    /* embedded server's state, default ./.jetlua */
    double       shutdown_timeout; /* seconds, bound on graceful shutdown */
    double       slow_handler; /* --slow-handler seconds: 0 = default (1 s), < 0 = off */
    int          watch;        /* --watch: reload when the script or its modules change */
} rt_cfg;

/* ---- the inbox: the only way from another thread into the loop ---- */
typedef void (*rt_event_fn)(void *a, void *b);
/* Any thread. Queues fn(a, b) to run on the loop thread, FIFO. */
void rt_post(rt_event_fn fn, void *a, void *b);

/* ---- shutdown hooks: things that must finish before the loop closes ----
 * Phase RT_PHASE_STOP hooks begin as soon as shutdown starts: they stop new
 * work from arriving (subscriptions drain, consumers stop pulling).
 * Phase RT_PHASE_CLOSE hooks begin once those are done and no handler is
 * busy any more: they close resources (connections, child processes). */
enum { RT_PHASE_CLOSE = 0, RT_PHASE_STOP = 1 };   /* zeroed hooks are close hooks */
typedef struct rt_hook rt_hook;
typedef void (*rt_hook_fn)(rt_hook *h);
struct rt_hook {
    rt_hook_fn  begin;   /* called once, when its phase starts */
    rt_hook_fn  force;   /* optional: the shutdown timed out, close now */
    int         phase;   /* RT_PHASE_STOP or RT_PHASE_CLOSE (default) */
    int         begun;
    int         done;    /* set to 1 (via rt_hook_done) when finished */
    rt_hook    *next, *prev;
    void       *data;
};
void rt_hook_add(rt_hook *h);
void rt_hook_remove(rt_hook *h);
void rt_hook_done(rt_hook *h);

/* ---- the runtime ---- */
typedef struct rt {
    uv_loop_t  *loop;
    lua_State  *L;          /* main state; coroutines are threads of it */
    rt_cfg      cfg;
    const char *script;
    int         live;       /* refs that keep the process alive (node-like) */
    int         exiting;    /* the shutdown state (rt_core.c): 0 running, 1 draining
                               (stop hooks, handlers finish), 2 close hooks, 3 the
                               embedded server stops, 4 closing handles, 5 closed */
    int         exit_code;
    int         unclean;    /* something was left undone at shutdown */
    int         main_done;
} rt_t;

extern rt_t *RT;

/* Liveness: a live subscription, timer, pending operation or running main
 * chunk holds one ref. When the count drops to zero the runtime shuts down
 * gracefully with status 0, like node. */
void rt_ref(void);
void rt_unref(void);

/* Start a graceful shutdown with this exit code (first call wins the code,
 * except that a non-zero code replaces 0). */
void rt_shutdown(int code);

/* The URL of the server the script runs against by default: --server /
 * NATS_URL, or the embedded server (started on first use). */
const char *rt_default_server(void);

/* seconds since the epoch, as a double */
double rt_now(void);
/* monotonic ms */
uint64_t rt_mono_ms(void);

/* Lifecycle, used by main.c. */
int  rt_init(void);
int  rt_run(void);
void rt_teardown(void);
/* Like rt_post, but tells the caller when the event was refused (inbox
 * closed at shutdown) so it can free its data: returns 0 or -1. */
int  rt_post_try(rt_event_fn fn, void *a, void *b);
unsigned long long rt_inbox_events(void);
#endif
