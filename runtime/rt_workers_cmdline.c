/*
 * rt_workers_cmdline.c - what passes from the --workers master to a worker
 * (see rt_workers.h): the run options main.c parsed, the workers' command
 * line and environment built from them, and the worker's side, which reads
 * and removes what the master put in its environment.
 */
#include "rt_workers.h"
#include "rt_mem.h"
#include "rt_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

int rt_worker_index = 0;
int rt_worker_count = 1;

/* ---- options (main.c) ---- */

#define MAX_SPANS 128

static struct {
    char **argv;
    int from, to;
} spans[MAX_SPANS];
static int nspans;

void rt_workers_note_option(char **argv, int from, int to)
{
    if (nspans < MAX_SPANS) {
        spans[nspans].argv = argv;
        spans[nspans].from = from;
        spans[nspans].to = to;
        nspans++;
    }
}

static int is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int rt_workers_parse(const char *v)
{
    char *end;
    long n;
    if (strcmp(v, "auto") == 0) {
        cpu_set_t set; /* the CPUs we may run on, as nproc(1) counts them */
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
        return n < 1 ? 1 : n > RT_WORKERS_MAX ? RT_WORKERS_MAX : (int)n;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno || n < 1 || n > RT_WORKERS_MAX)
        return -1;
    return (int)n;
}

/* ---- the worker's side ---- */

int rt_workers_child_init(void)
{
    const char *m = getenv("JETLUA_MASTER_PID"), *f = getenv("JETLUA_WORKER_METRICS_FD");
    long master = m ? strtol(m, NULL, 10) : 0;
    int fd = f && *f ? (int)strtol(f, NULL, 10) : -1;

    static char prefix[32];

    unsetenv("JETLUA_MASTER_PID");
    unsetenv("JETLUA_WORKER_METRICS_FD");
    snprintf(prefix, sizeof prefix, "[worker %d] ", rt_worker_index);
    rt_log_prefix = prefix; /* which worker said it */
    /* Until the reload manager handles SIGHUP, a reload the master forwards
     * to a starting worker must not kill it (the default action). A worker
     * that is starting loads the current script anyway. libuv resets every
     * signal disposition in the children it spawns. */
    signal(SIGHUP, SIG_IGN);
    if (master > 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* graceful: in-flight messages finish */
        if (getppid() != (pid_t)master) {
            fprintf(stderr, "jetlua: worker %d: the master (pid %ld) is gone\n", rt_worker_index, master);
            exit(1);
        }
    }
    if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
        fd = -1;
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* the script's children never get it */
    return fd;
}

static char *env_pair(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *s = rt_xmalloc(n);
    snprintf(s, n, "%s=%s", k, v);
    return s;
}

/* ---- the master's side: what a worker gets ---- */

/* The workers' environment: ours, with the master's settings (rt_workers.h). */
char **rt_workers_env(const rt_cfg *cfg, int password, int token, const char *notify, int metrics)
{
    static const char *const ours[] = {"NOTIFY_SOCKET",
                                       "WATCHDOG_USEC",
                                       "WATCHDOG_PID",
                                       "JETLUA_MASTER_PID",
                                       "JETLUA_WORKER_METRICS_FD",
                                       NULL};
    char num[32];
    int n = 0, cap = 16;
    for (char **e = environ; *e; e++)
        cap++;
    char **env = rt_xcalloc((size_t)cap, sizeof *env);
    for (char **e = environ; *e; e++) {
        size_t kl = strcspn(*e, "=");
        int skip = (cfg->nservers > 0 && kl == 8 && strncmp(*e, "NATS_URL", 8) == 0) ||
                   (password && kl == 13 && strncmp(*e, "NATS_PASSWORD", 13) == 0) ||
                   (token && kl == 10 && strncmp(*e, "NATS_TOKEN", 10) == 0);
        for (int k = 0; ours[k]; k++)
            skip |= kl == strlen(ours[k]) && strncmp(*e, ours[k], kl) == 0;
        if (!skip)
            env[n++] = *e;
    }
    env[n++] = rt_xstrdup(notify);
    snprintf(num, sizeof num, "%d", (int)getpid());
    env[n++] = env_pair("JETLUA_MASTER_PID", num);
    if (metrics)
        env[n++] = rt_xstrdup("JETLUA_WORKER_METRICS_FD=3");
    if (rt_notify_watchdog_usec()) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)rt_notify_watchdog_usec());
        env[n++] = env_pair("WATCHDOG_USEC", num);
    }
    if (cfg->nservers > 0) {
        size_t len = 1;
        char *urls;
        for (int i = 0; i < cfg->nservers; i++)
            len += strlen(cfg->servers[i]) + 1;
        urls = rt_xcalloc(1, len);
        for (int i = 0; i < cfg->nservers; i++) {
            if (i)
                strcat(urls, ",");
            strcat(urls, cfg->servers[i]);
        }
        env[n++] = env_pair("NATS_URL", urls);
        free(urls);
    }
    if (password && cfg->password)
        env[n++] = env_pair("NATS_PASSWORD", cfg->password);
    if (token && cfg->token)
        env[n++] = env_pair("NATS_TOKEN", cfg->token);
    env[n] = NULL;
    return env;
}

/* The workers' command line: argv0 run --workers N --worker-index I <options
 * but -s/--server, --password, --token, --metrics, --workers> -- SCRIPT args */
char **rt_workers_args(const char *argv0, char **script_argv, int count, int *index_at, int *password,
                       int *token)
{
    static const char *const dropped[] = {"--server",  "-s",        "--password",     "--token",
                                          "--metrics", "--workers", "--worker-index", NULL};
    char num[16];
    int n = 0, cap = 8;
    for (int i = 0; i < nspans; i++)
        cap += spans[i].to - spans[i].from + 1;
    for (char **a = script_argv; *a; a++)
        cap++;
    char **args = rt_xcalloc((size_t)cap, sizeof *args);
    args[n++] = (char *)argv0;
    args[n++] = "run";
    snprintf(num, sizeof num, "%d", count);
    args[n++] = "--workers";
    args[n++] = rt_xstrdup(num);
    args[n++] = "--worker-index";
    *index_at = n++;
    for (int i = 0; i < nspans; i++) {
        const char *opt = spans[i].argv[spans[i].from];
        int drop = 0;
        for (int k = 0; dropped[k]; k++)
            drop |= is_opt(opt, dropped[k]);
        *password |= is_opt(opt, "--password");
        *token |= is_opt(opt, "--token");
        if (!drop)
            for (int k = spans[i].from; k <= spans[i].to; k++)
                args[n++] = spans[i].argv[k];
    }
    args[n++] = "--";
    for (char **a = script_argv; *a; a++)
        args[n++] = *a;
    args[n] = NULL;
    return args;
}
