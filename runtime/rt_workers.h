/*
 * rt_workers.h - `jetlua run --workers N`: one master process and N worker
 * processes, the nginx model (rt_workers.c: the master; rt_workers_http.c:
 * its /metrics, /livez and /readyz; rt_workers_cmdline.c: what passes from
 * the master to a worker).
 *
 * The master never runs Lua and never connects to NATS. It starts each
 * worker by executing its own binary again (/proc/self/exe) as
 *   jetlua run --workers N --worker-index I <the run options> -- SCRIPT args
 * (secrets, --server and --metrics are not on that line: see below), in a
 * session of its own, so a terminal's Ctrl-C reaches the master only. Each
 * worker is a whole jetlua: its own loop, Lua state and connection, running
 * the same script. The master restarts a worker that crashed, forwards
 * SIGHUP, SIGTERM and SIGINT, and serves the --metrics endpoint.
 *
 * Master -> worker, besides the command line (environment, read and removed
 * by the worker at start, so the script and its children never see it):
 *   JETLUA_MASTER_PID         the worker sets PR_SET_PDEATHSIG (SIGTERM) and
 *                             checks its parent is still that process
 *   JETLUA_WORKER_METRICS_FD  a listening AF_UNIX socket (fd 3) to serve
 *                             /metrics, /livez, /readyz on, for the master
 *   NOTIFY_SOCKET             the master's datagram socket: the worker's
 *                             systemd notify messages (READY=1, RELOADING=1,
 *                             STOPPING=1, WATCHDOG=1) go to the master
 *   NATS_URL, NATS_PASSWORD, NATS_TOKEN  the --server URLs, --password and
 *                             --token of the master's command line (a
 *                             command line is readable by every local user)
 */
#ifndef JETLUA_RT_WORKERS_H
#define JETLUA_RT_WORKERS_H

#include "rt.h"

#define RT_WORKERS_MAX 256
#define RT_WORKERS_BACKOFF_MIN 0.1  /* s, first restart delay */
#define RT_WORKERS_BACKOFF_MAX 30.0 /* s, doubling up to this */
#define RT_WORKERS_STABLE 10.0      /* s: a worker that ran this long restarts at the minimum */
#define RT_WORKERS_MARGIN 5.0       /* s after --shutdown-timeout before SIGKILL */

/* Which worker this process is: index 0 and count 1 without --workers. */
extern int rt_worker_index;
extern int rt_worker_count;

/* "--workers VALUE": "auto" (the online CPUs) or 1..RT_WORKERS_MAX.
 * Returns the count, or -1 (not a count). */
int rt_workers_parse(const char *value);

/* The run options as main.c parsed them: the argv span [from, to] of one
 * option with its value (called once per option, in order). The master
 * copies them onto the workers' command lines, leaving some out. */
void rt_workers_note_option(char **argv, int from, int to);

/* The master. argv0: the name to show in ps; script_argv: SCRIPT and its
 * arguments (NULL-terminated); cfg: the parsed options (servers and secrets
 * with their real values); metrics: --metrics HOST:PORT or NULL. Runs until
 * every worker has exited and returns the exit status. */
int rt_workers_master(const char *argv0, char **script_argv, const rt_cfg *cfg, int count,
                      const char *metrics);

/* A worker (--worker-index given), before any thread: reads and removes the
 * master's environment, sets the parent-death signal, ignores SIGHUP until
 * the reload manager handles it. Returns the metrics socket fd or -1; exits
 * with status 1 when the master is already gone. */
int rt_workers_child_init(void);

/* ---- inside the master (rt_workers_cmdline.c) ---- */

/* The workers' command line (see above; NULL-terminated): *index_at is the
 * slot for the worker's index, *password / *token say whether --password /
 * --token were given (they go through the environment). */
char **rt_workers_args(const char *argv0, char **script_argv, int count, int *index_at, int *password,
                       int *token);
/* The workers' environment: the master's, with the entries described above. */
char **rt_workers_env(const rt_cfg *cfg, int password, int token, const char *notify, int metrics);

/* ---- shared with rt_workers_http.c ---- */

/* A worker slot as the HTTP threads see it (a copy, taken under a lock). */
typedef struct rt_worker_view {
    int index;
    int running; /* a process runs in this slot */
    int pid;
    unsigned incarnation; /* starts so far */
    unsigned restarts;
    int ready;      /* said READY=1 since it started or last reloaded */
    char why[96];   /* when not running: "is restarting (exit status 1)" ... */
    char addr[108]; /* its metrics socket (abstract: addr[0] == '\0') */
    unsigned addrlen;
} rt_worker_view;

/* Fill views (cap entries) under the lock; returns the worker count, and
 * *stopping = 1 once the master shuts down. */
int rt_workers_views(rt_worker_view *views, int cap, int *stopping);

/* The metrics state (rt_workers_http.c): a worker's incarnation ended, so
 * its last scraped counters join the dead workers' sums. Loop thread. */
void rt_workers_http_retire(int index);
/* Serve --metrics for the master (rt_http with a router). */
int rt_workers_http_start(const char *hostport, char *err, size_t errlen);
void rt_workers_http_stop(void);

#endif
