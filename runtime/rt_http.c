/*
 * rt_http.c - the --metrics endpoint (see rt_http.h) on libmicrohttpd.
 *
 * Why libmicrohttpd on its own threads, not our server on the loop:
 *  - The old server (libuv + http-parser, on the loop) had no timeout and no
 *    cap: 21,000 half-open connections used up every fd. libmicrohttpd has
 *    the limits built in (connection cap, idle timeout, a per-connection
 *    memory pool that bounds the request), handles HEAD, HTTP/1.0/1.1 and
 *    keep-alive, and is maintained (http-parser is not).
 *  - /livez must answer while the loop is stuck, so the server cannot live
 *    on the loop. It runs in "thread per connection" mode: each connection
 *    has a thread (at most 64, 256 KiB stacks), so one request waiting for
 *    the loop never delays another, and a connection over the cap is
 *    accepted and closed at once (measured with cap 4, timeout 3 s, 20
 *    silent sockets: a real request was served 3.0 s later, when the first
 *    four timed out; MHD's single-thread epoll mode instead stops accepting
 *    at the cap and leaves the rest in the backlog, so the same request was
 *    served only after 15 s, one timeout per backlog round).
 *  - Nothing here touches Lua or the loop's data. /livez and /readyz read
 *    the heartbeat and the readiness registry (rt_health.c: an atomic and a
 *    mutex). /metrics posts a render job through the inbox (rt_post) and
 *    waits on a condition, bounded by RT_HTTP_ANSWER_MS.
 * The price, measured (2 cores shared; sequential GET /metrics of a 5 KB
 * registry, a new connection each, 4000 requests): p50 470 us against
 * 250 us for the old loop server, and ~250 us of CPU per request against
 * ~70 us (a thread per connection, the hop through the inbox). For scrapes
 * every few seconds that is nothing; a stuck loop or a connection flood no
 * longer takes the probes down with it.
 *
 * Heartbeat: a uv_prepare handle beats on every loop iteration and an
 * unref'd 250 ms timer makes sure an idle loop still iterates. Our own, on
 * purpose: the runtime's watchdog may read the same rt_health_stalled_ms().
 */
#include "rt_http.h"
#include "rt.h"
#include "rt_health.h"
#include "rt_metrics.h"
#include "rt_procmetrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTEN 4
#define STACK_SIZE (256 * 1024)

static struct MHD_Daemon *daemons[MAX_LISTEN];
static int ndaemons;
static int port;
static rt_http_router router; /* the --workers master answers for its workers */
static uv_prepare_t beat_prep;
static uv_timer_t beat_timer;

static _Atomic long open_conns;
static _Atomic unsigned long refused;
static _Atomic uint64_t last_refusal_warn;

/* ---- the heartbeat (loop thread) ---- */

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000u; }

static void beat(void)
{
    rt_health_beat(mono_ms());
    if (RT->exiting)
        rt_health_set_stopping();
}

static void on_beat_prep(uv_prepare_t *h) { beat(); }
static void on_beat_timer(uv_timer_t *t) { beat(); }

/* ---- /metrics: rendered on the loop ---- */

typedef struct job {
    int    refs;          /* the waiting HTTP thread and the loop */
    int    done;
    char  *body;
    size_t len;
} job;

static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  job_cv;

static void job_release_locked(job *j)
{
    if (--j->refs == 0) {
        free(j->body);
        free(j);
    }
}

static void render_on_loop(void *a, void *b)
{
    job *j = a;
    size_t n;
    char *body = rt_metrics_render(&n);
    pthread_mutex_lock(&job_mu);
    j->body = body;
    j->len = n;
    j->done = 1;
    pthread_cond_broadcast(&job_cv);
    job_release_locked(j);
    pthread_mutex_unlock(&job_mu);
}

/* HTTP thread: the rendered registry, or NULL and a reason. */
static char *render_via_loop(size_t *len, const char **why)
{
    job *j = calloc(1, sizeof *j);
    struct timespec until;
    char *body = NULL;
    if (!j) {
        *why = "out of memory\n";
        return NULL;
    }
    j->refs = 2;
    if (rt_post_try(render_on_loop, j, NULL) != 0) {
        free(j);
        *why = "shutting down\n";
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += RT_HTTP_ANSWER_MS / 1000;
    until.tv_nsec += (long)(RT_HTTP_ANSWER_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job_mu);
    while (!j->done)
        if (pthread_cond_timedwait(&job_cv, &job_mu, &until) == ETIMEDOUT)
            break;
    if (j->done) {
        body = j->body;
        *len = j->len;
        j->body = NULL;
    } else {
        *why = "the event loop did not answer within 5 s\n";
    }
    job_release_locked(j);
    pthread_mutex_unlock(&job_mu);
    return body;
}

/* ---- requests (HTTP threads) ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body,
                             size_t len, int owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned code, const char *s)
{
    return reply(conn, code, "text/plain; charset=utf-8", (char *)s, strlen(s), 0);
}

/* "" when the loop turns, else why not (in buf). */
static const char *loop_stuck(char *buf, size_t cap)
{
    uint64_t stalled = rt_health_stalled_ms(mono_ms());
    if (stalled < RT_HTTP_STALL_MS)
        return "";
    snprintf(buf, cap, "event loop stuck for %.1f s", stalled / 1000.0);
    return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state)
{
    char stuck[64], why[2048], body[2200];
    /* Answer on the first call, once the headers are in: a body is never
     * read (MHD closes the connection after the reply if one was sent). */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (router) {
        unsigned code = 0;
        char *b = NULL;
        size_t len = 0;
        if (router(url, &code, &b, &len))
            return reply(conn, code,
                         code == MHD_HTTP_OK && strcmp(url, "/metrics") == 0
                             ? "text/plain; version=0.0.4; charset=utf-8"
                             : "text/plain; charset=utf-8",
                         b, len, 1);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        const char *err = NULL;
        char *m = render_via_loop(&len, &err);
        if (!m)
            return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err);
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", m, len, 1);
    }
    if (strcmp(url, "/livez") == 0) {
        const char *s = loop_stuck(stuck, sizeof stuck);
        if (!*s)
            return text(conn, MHD_HTTP_OK, "ok\n");
        snprintf(body, sizeof body, "%s\n", s);
        return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (strcmp(url, "/readyz") == 0 || strcmp(url, "/healthz") == 0) {
        const char *s = loop_stuck(stuck, sizeof stuck);
        int ready = rt_health_ready(why, sizeof why);
        if (ready && !*s)
            return text(conn, MHD_HTTP_OK, "ok\n");
        snprintf(body, sizeof body, "not ready: %s%s%s\n", s, *s && !ready ? "; " : "", ready ? "" : why);
        return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    return text(conn, MHD_HTTP_NOT_FOUND, "not found (try /metrics, /livez or /readyz)\n");
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    atomic_fetch_add(&open_conns, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* libmicrohttpd's messages. Refusals at the cap come here one per
 * connection: counted, and logged at most once a minute. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (strstr(msg, "connection limit")) {
        unsigned long total = atomic_fetch_add(&refused, 1) + 1;
        uint64_t now = mono_ms(), last = atomic_load(&last_refusal_warn);
        if ((last == 0 || now - last >= 60000) &&
            atomic_compare_exchange_strong(&last_refusal_warn, &last, now))
            rt_warn("metrics endpoint: %d connections open, refusing more (%lu refused so far)",
                    RT_HTTP_CONN_LIMIT, total);
        return;
    }
    rt_debug("metrics endpoint: %s", msg);
}

static void http_collector(void)
{
    static rt_series *conns, *ref;
    if (!conns) {
        conns = rt_metric_simple("jetlua_http_connections", RT_GAUGE,
                                 "connections open to the --metrics endpoint");
        ref = rt_metric_simple("jetlua_http_connections_refused_total", RT_COUNTER,
                               "connections to the --metrics endpoint closed at once: the cap was reached");
    }
    rt_metric_set(conns, (double)atomic_load(&open_conns));
    rt_metric_set(ref, (double)atomic_load(&refused));
}

/* ---- addresses ---- */

int rt_http_split(const char *hostport, char *host, size_t hostcap, int *portp, char *err, size_t errlen)
{
    const char *colon, *h = hostport, *p;
    size_t hl;
    char *end;
    long v;

    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s' is not [IPV6]:PORT (for example [::1]:9464)", hostport);
            return -1;
        }
        h = hostport + 1;
        hl = (size_t)(close - h);
        p = close + 2;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s' is not HOST:PORT (for example 127.0.0.1:9464, localhost:9464, "
                     "[::1]:9464, or :9464 for every interface)", hostport);
            return -1;
        }
        if (memchr(hostport, ':', (size_t)(colon - hostport))) {
            snprintf(err, errlen, "'%s': an IPv6 address goes in brackets, e.g. [::1]:9464", hostport);
            return -1;
        }
        hl = (size_t)(colon - hostport);
        p = colon + 1;
    }
    if (hl >= hostcap) {
        snprintf(err, errlen, "'%s': the host is too long", hostport);
        return -1;
    }
    errno = 0;
    v = strtol(p, &end, 10);
    if (*end || end == p || *p == '-' || *p == '+' || v < 0 || v > 65535 || errno) {
        snprintf(err, errlen, "'%s': the port must be a number from 0 to 65535", hostport);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *portp = (int)v;
    return 0;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]", ip);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s", ip);
    }
}

/* A listening socket on sa with the given port; -1 and errno on failure. */
static int listen_on(struct sockaddr_storage *ss, socklen_t len, int want_port, int *got_port)
{
    int one = 1, fd, saved;
    struct sockaddr_storage b;
    socklen_t bl = sizeof b;
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)want_port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)want_port);
    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);   /* [::] and 0.0.0.0 apart */
    if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&b, &bl) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *got_port = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                              : ((struct sockaddr_in *)&b)->sin_port);
    return fd;
}

static void serving(const char *shown);

static struct MHD_Daemon *serve(int fd, int v6)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)RT_HTTP_CONN_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)RT_HTTP_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RT_HTTP_MEMORY,
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)STACK_SIZE,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                            MHD_OPTION_END);
}

int rt_http_start(const char *hostport, char *err, size_t errlen)
{
    char host[256], portstr[8], shown[4 * 64] = "", first_err[160] = "";
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_storage seen[MAX_LISTEN];
    int want, r, nseen = 0;
    pthread_condattr_t ca;

    if (rt_http_split(hostport, host, sizeof host, &want, err, errlen) != 0)
        return -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (hostport[0] == '[' ? AI_NUMERICHOST : 0);
    snprintf(portstr, sizeof portstr, "%d", want);
    if ((r = getaddrinfo(*host ? host : NULL, portstr, &hints, &res)) != 0) {
        snprintf(err, errlen, "'%s': cannot resolve '%s': %s", hostport, host, gai_strerror(r));
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job_cv, &ca);
    pthread_condattr_destroy(&ca);

    for (ai = res; ai && ndaemons < MAX_LISTEN; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        char name[INET6_ADDRSTRLEN + 4];
        int fd, got = 0, dup = 0;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof ss)
            continue;
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        for (int k = 0; k < nseen; k++)
            dup |= memcmp(&seen[k], &ss, sizeof ss) == 0;
        if (dup || nseen == MAX_LISTEN)
            continue;
        seen[nseen++] = ss;
        addr_text((struct sockaddr *)&ss, name, sizeof name);
        fd = listen_on(&ss, ai->ai_addrlen, port ? port : want, &got);
        if (fd < 0) {
            /* e.g. localhost -> ::1 on a host without IPv6: the others may do */
            if (!*first_err)
                snprintf(first_err, sizeof first_err, "%s:%d: %s", name, port ? port : want, strerror(errno));
            rt_debug("metrics endpoint: cannot listen on %s:%d: %s", name, port ? port : want, strerror(errno));
            continue;
        }
        daemons[ndaemons] = serve(fd, ss.ss_family == AF_INET6);
        if (!daemons[ndaemons]) {
            close(fd);
            if (!*first_err)
                snprintf(first_err, sizeof first_err, "%s: libmicrohttpd did not start", name);
            continue;
        }
        ndaemons++;
        port = got;
        snprintf(shown + strlen(shown), sizeof shown - strlen(shown), "%shttp://%s:%d", *shown ? ", " : "",
                 name, got);
    }
    freeaddrinfo(res);
    if (ndaemons == 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", hostport, *first_err ? first_err : "no address");
        return -1;
    }
    serving(shown);
    return 0;
}

void rt_http_set_router(rt_http_router fn)
{
    router = fn;
}

int rt_http_start_fd(int fd, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job_cv, &ca);
    pthread_condattr_destroy(&ca);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (!(daemons[0] = serve(fd, 0))) {
        snprintf(err, errlen, "libmicrohttpd did not start on the master's socket (fd %d)", fd);
        return -1;
    }
    ndaemons = 1;
    serving(NULL);
    return 0;
}

/* Listening: the heartbeat, the collectors, one log line. */
static void serving(const char *shown)
{
    rt_metrics_collector(http_collector);
    rt_procmetrics_start();
    uv_prepare_init(RT->loop, &beat_prep);
    uv_prepare_start(&beat_prep, on_beat_prep);
    uv_unref((uv_handle_t *)&beat_prep);
    uv_timer_init(RT->loop, &beat_timer);
    uv_timer_start(&beat_timer, on_beat_timer, 250, 250);
    uv_unref((uv_handle_t *)&beat_timer);
    beat();
    if (shown)
        rt_info("metrics on %s (/metrics; health: /livez, /readyz)", shown);
    else
        rt_debug("metrics on the --workers master's socket");
}

int rt_http_port(void) { return port; }

void rt_http_stop(void)
{
    for (int i = 0; i < ndaemons; i++)
        MHD_stop_daemon(daemons[i]);
    ndaemons = 0;
}
