/*
 * rt_workers_http.c - the --workers master's /metrics, /livez and /readyz.
 *
 * The master listens on --metrics (rt_http.c, libmicrohttpd's threads, with
 * a router: this file answers). Each worker serves its own endpoint on a
 * listening AF_UNIX socket that the master made for its slot (an abstract
 * name, so nothing is left on disk) and handed over as fd 3; the slot keeps
 * the socket across restarts. A request to the master asks every running
 * worker at once (HTTP/1.0 over that socket, plain poll, 6 s bound: a
 * worker's own /metrics gives up on a stuck loop after 5 s) and merges:
 *
 *   /metrics  rt_promtext's merge: counters and histograms summed over the
 *             workers, gauges per worker with a worker="i" label. A sum must
 *             never go back, or rate() sees a counter reset: when a worker's
 *             process ends, the counters of its last answer are kept and
 *             added to every later sum ("retired"), and a worker that does
 *             not answer counts with its last answer. Increments made after
 *             a worker's last scrape die with it. Plus the master's own
 *             series: jetlua_workers, jetlua_worker_up{worker},
 *             jetlua_worker_restarts_total{worker}.
 *   /readyz   200 when every worker runs and its /readyz says 200; else 503
 *             with each worker's reasons ("worker 1: connection app is
 *             reconnecting", "worker 0 is restarting (it was killed by ...)").
 *             A worker that finished its script (exit 0) is not waited for.
 *   /livez    200 unless a running worker's /livez fails or it does not
 *             answer: a stuck worker takes the whole group's liveness down,
 *             as it would a single process's. A worker being restarted is
 *             the master's business: not a liveness failure.
 *
 * Scrapes of /metrics are serialized (one mutex), so the last answer kept
 * per worker is always the newest.
 */
#include "rt_workers.h"
#include "rt_http.h"
#include "rt_promtext.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ASK_MS 6000
#define BODY_MAX (64u << 20)

static pthread_mutex_t scrape_mu = PTHREAD_MUTEX_INITIALIZER; /* one /metrics at a time */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;  /* retired, last[] */
static rt_prom *retired;              /* counters of worker processes that have ended */
static rt_prom *last[RT_WORKERS_MAX]; /* each worker's last answer */

typedef struct ask {
    int fd;
    int done;
    int code; /* HTTP status, 0 when none came */
    char *buf;
    size_t n, cap;
    const char *body;
    size_t blen;
} ask;

static void ask_finish(ask *a)
{
    char *end;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    a->done = 1;
    if (!a->buf || a->n < 12 || strncmp(a->buf, "HTTP/1.", 7) != 0)
        return;
    a->buf[a->n] = '\0';
    a->code = (int)strtol(a->buf + 9, NULL, 10);
    if ((end = strstr(a->buf, "\r\n\r\n"))) {
        a->body = end + 4;
        a->blen = a->n - (size_t)(a->body - a->buf);
    } else {
        a->code = 0;
    }
}

/* GET path from every running worker at once; a[i].code 0 = no answer. */
static void ask_all(const rt_worker_view *v, int n, const char *path, ask *a)
{
    char req[128];
    struct pollfd pfd[RT_WORKERS_MAX];
    uint64_t deadline = uv_hrtime() / 1000000u + ASK_MS;
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: jetlua-worker\r\n\r\n", path);

    for (int i = 0; i < n; i++) {
        struct sockaddr_un sa;
        memset(&a[i], 0, sizeof a[i]);
        a[i].fd = -1;
        if (!v[i].running || v[i].addrlen == 0) {
            a[i].done = 1;
            continue;
        }
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, v[i].addr, v[i].addrlen);
        a[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        /* a connect to a listening AF_UNIX socket completes at once (or
         * fails when its backlog is full); so does this small write */
        if (a[i].fd < 0 ||
            connect(a[i].fd, (struct sockaddr *)&sa,
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + v[i].addrlen)) != 0 ||
            write(a[i].fd, req, (size_t)len) != len)
            ask_finish(&a[i]);
    }
    for (;;) {
        int np = 0, left;
        int64_t wait = (int64_t)deadline - (int64_t)(uv_hrtime() / 1000000u);
        for (int i = 0; i < n; i++)
            if (!a[i].done) {
                pfd[np].fd = a[i].fd;
                pfd[np].events = POLLIN;
                np++;
            }
        if (np == 0 || wait <= 0)
            break;
        if (poll(pfd, (nfds_t)np, (int)wait) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (a[i].done)
                continue;
            for (;;) {
                ssize_t r;
                if (a[i].cap - a[i].n < 65536) {
                    char *b;
                    if (a[i].cap >= BODY_MAX) {
                        ask_finish(&a[i]);
                        a[i].code = 0;
                        break;
                    }
                    b = realloc(a[i].buf, a[i].cap ? a[i].cap * 2 : 131072);
                    if (!b) {
                        ask_finish(&a[i]);
                        a[i].code = 0;
                        break;
                    }
                    a[i].buf = b;
                    a[i].cap = a[i].cap ? a[i].cap * 2 : 131072;
                }
                r = read(a[i].fd, a[i].buf + a[i].n, a[i].cap - a[i].n - 1);
                if (r > 0) {
                    a[i].n += (size_t)r;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    ask_finish(&a[i]); /* HTTP/1.0: the worker closes when done */
                break;
            }
        }
        left = 0;
        for (int i = 0; i < n; i++)
            left += !a[i].done;
        if (!left)
            break;
    }
    for (int i = 0; i < n; i++)
        if (!a[i].done) {
            ask_finish(&a[i]);
            a[i].code = 0; /* cut short: not an answer */
        }
}

static void ask_free(ask *a, int n)
{
    for (int i = 0; i < n; i++)
        free(a[i].buf);
}

/* a worker's one-line answer, without "not ready: " and the newline */
static void reason(char *out, size_t cap, const ask *a)
{
    const char *b = a->body ? a->body : "";
    size_t l = a->blen;
    if (l >= 11 && strncmp(b, "not ready: ", 11) == 0) {
        b += 11;
        l -= 11;
    }
    while (l > 0 && (b[l - 1] == '\n' || b[l - 1] == '\r'))
        l--;
    snprintf(out, cap, "%.*s", (int)(l > 400 ? 400 : l), b);
}

typedef struct {
    char *p;
    size_t n, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    int w;
    va_start(ap, fmt);
    w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    if (t->n + (size_t)w + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 512;
        char *p;
        while (t->n + (size_t)w + 1 > cap)
            cap *= 2;
        if (!(p = realloc(t->p, cap)))
            return;
        t->p = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, (size_t)w + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)w;
}

static int health(int ready, unsigned *code, char **body, size_t *len)
{
    rt_worker_view v[RT_WORKERS_MAX];
    ask a[RT_WORKERS_MAX];
    text t = {NULL, 0, 0};
    int stopping, n = rt_workers_views(v, RT_WORKERS_MAX, &stopping), bad = 0, running = 0;
    char why[420];

    ask_all(v, n, ready ? "/readyz" : "/livez", a);
    if (ready && stopping) {
        add(&t, "shutting down");
        bad++;
    }
    for (int i = 0; i < n; i++) {
        running += v[i].running;
        if (!v[i].running) {
            /* finished (exit 0) is fine; restarting is not ready, but alive */
            if (ready && !stopping && strncmp(v[i].why, "is restarting", 13) == 0)
                add(&t, "%sworker %d %s", bad++ ? "; " : "", i, v[i].why);
            continue;
        }
        if (a[i].code == 200)
            continue;
        if (a[i].code == 0) {
            add(&t, "%sworker %d (pid %d) did not answer %s within %d s", bad++ ? "; " : "", i, v[i].pid,
                ready ? "/readyz" : "/livez", ASK_MS / 1000);
        } else {
            reason(why, sizeof why, &a[i]);
            add(&t, "%sworker %d: %s", bad++ ? "; " : "", i, why);
        }
    }
    if (ready && running == 0 && !bad) {
        add(&t, "no worker is running");
        bad++;
    }
    ask_free(a, n);
    if (!bad) {
        free(t.p);
        *body = strdup("ok\n");
        *len = 3;
        *code = 200;
        return 1;
    }
    {
        text out = {NULL, 0, 0};
        add(&out, "%s%s\n", ready ? "not ready: " : "", t.p ? t.p : "");
        free(t.p);
        *body = out.p;
        *len = out.n;
        *code = 503;
    }
    return 1;
}

static int metrics(unsigned *code, char **body, size_t *len)
{
    static rt_worker_view v[RT_WORKERS_MAX], now[RT_WORKERS_MAX]; /* under scrape_mu */
    static ask a[RT_WORKERS_MAX];
    int up[RT_WORKERS_MAX], st;
    rt_prom *sum = rt_prom_new();
    text t = {NULL, 0, 0};
    char *merged;
    size_t mlen;
    int stopping, n;

    pthread_mutex_lock(&scrape_mu);
    n = rt_workers_views(v, RT_WORKERS_MAX, &stopping);
    ask_all(v, n, "/metrics", a);
    pthread_mutex_lock(&state_mu);
    /* the loop marks a process gone (pid 0) before it retires its last
     * answer, under state_mu: an answer from a process that has ended since
     * it was asked was either retired already or is dropped here */
    rt_workers_views(now, RT_WORKERS_MAX, &st);
    for (int i = 0; i < n; i++) {
        rt_prom *fresh = NULL;
        char err[200], label[16];
        up[i] = 0;
        if (a[i].code == 200) {
            fresh = rt_prom_new();
            if (rt_prom_parse(fresh, a[i].body, a[i].blen, err, sizeof err) != 0) {
                rt_warn("workers: worker %d's /metrics does not parse (%s): its last answer counts", i, err);
                rt_prom_free(fresh);
                fresh = NULL;
            }
        }
        if (fresh && (!now[i].running || now[i].pid != v[i].pid)) {
            rt_prom_free(fresh);
            fresh = NULL;
        }
        snprintf(label, sizeof label, "%d", i);
        if (fresh) {
            up[i] = 1;
            rt_prom_add(sum, fresh, "worker", label);
            rt_prom_free(last[i]);
            last[i] = fresh;
        } else if (last[i]) {
            rt_prom_add(sum, last[i], NULL, NULL); /* its counters as last seen; no gauges */
        }
    }
    rt_prom_add(sum, retired, NULL, NULL);
    pthread_mutex_unlock(&state_mu);
    ask_free(a, n);

    /* the master's own series (a worker's family of the same name would clash) */
    rt_prom_drop(sum, "jetlua_workers");
    rt_prom_drop(sum, "jetlua_worker_up");
    rt_prom_drop(sum, "jetlua_worker_restarts_total");
    merged = rt_prom_render(sum, &mlen);
    rt_prom_free(sum);
    add(&t, "%s", merged);
    free(merged);
    add(&t,
        "# HELP jetlua_workers worker processes the master keeps running (--workers)\n"
        "# TYPE jetlua_workers gauge\njetlua_workers %d\n",
        n);
    add(&t, "# HELP jetlua_worker_up 1 when the worker runs and answered this scrape\n"
            "# TYPE jetlua_worker_up gauge\n");
    for (int i = 0; i < n; i++)
        add(&t, "jetlua_worker_up{worker=\"%d\"} %d\n", i, up[i]);
    add(&t, "# HELP jetlua_worker_restarts_total times the master restarted the worker after it crashed\n"
            "# TYPE jetlua_worker_restarts_total counter\n");
    for (int i = 0; i < n; i++)
        add(&t, "jetlua_worker_restarts_total{worker=\"%d\"} %u\n", i, v[i].restarts);
    pthread_mutex_unlock(&scrape_mu);
    *body = t.p;
    *len = t.n;
    *code = 200;
    return 1;
}

static int route(const char *url, unsigned *code, char **body, size_t *len)
{
    if (strcmp(url, "/metrics") == 0)
        return metrics(code, body, len);
    if (strcmp(url, "/livez") == 0)
        return health(0, code, body, len);
    if (strcmp(url, "/readyz") == 0 || strcmp(url, "/healthz") == 0)
        return health(1, code, body, len);
    return 0;
}

void rt_workers_http_retire(int index)
{
    if (index < 0 || index >= RT_WORKERS_MAX)
        return;
    pthread_mutex_lock(&state_mu);
    if (last[index]) {
        if (!retired)
            retired = rt_prom_new();
        rt_prom_add(retired, last[index], NULL, NULL);
        rt_prom_free(last[index]);
        last[index] = NULL;
    }
    pthread_mutex_unlock(&state_mu);
}

int rt_workers_http_start(const char *hostport, char *err, size_t errlen)
{
    rt_http_set_router(route);
    return rt_http_start(hostport, err, errlen);
}

void rt_workers_http_stop(void)
{
    rt_http_stop();
    pthread_mutex_lock(&state_mu);
    for (int i = 0; i < RT_WORKERS_MAX; i++) {
        rt_prom_free(last[i]);
        last[i] = NULL;
    }
    rt_prom_free(retired);
    retired = NULL;
    pthread_mutex_unlock(&state_mu);
}
