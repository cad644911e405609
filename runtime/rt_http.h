/*
 * rt_http.h - the --metrics HTTP endpoint (libmicrohttpd, its own threads):
 *   GET|HEAD /metrics  the registry in the Prometheus text format (rt_metrics.h),
 *                      rendered on the loop thread; 503 if the loop does not
 *                      answer within 5 s
 *   GET|HEAD /livez    200 while the event loop turns; 503 once it has been
 *                      stuck for 5 s (a NATS outage never fails it)
 *   GET|HEAD /readyz   200 when every connection is connected, every consumer
 *                      the script started is alive and the loop turns; else
 *                      503 with the reasons (rt_health.h)
 *   GET|HEAD /healthz  the same as /readyz
 * At most 64 connections per listening address (more are refused at once),
 * 10 s idle timeout per connection, 16 KiB for a request's line and headers;
 * request bodies are never read. The listener does not keep the process alive.
 */
#ifndef JETLUA_RT_HTTP_H
#define JETLUA_RT_HTTP_H

#include <stddef.h>

#define RT_HTTP_CONN_LIMIT  64
#define RT_HTTP_TIMEOUT_S   10
#define RT_HTTP_MEMORY      16384   /* per connection: request line + headers */
#define RT_HTTP_STALL_MS    5000    /* loop silent this long: /livez says 503 */
#define RT_HTTP_ANSWER_MS   5000    /* bound on waiting for the loop to render */

/* Split "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every interface). host gets
 * the name or address without brackets ("" for every interface). Returns 0,
 * or -1 with a reason in err. Pure; for the unit tests too. */
int rt_http_split(const char *hostport, char *host, size_t hostcap, int *port, char *err, size_t errlen);

/* Listen on every address HOST resolves to (a name such as localhost may
 * give 127.0.0.1 and ::1), PORT 0 picking a free port shared by all.
 * Loop thread, after rt_init. Returns 0, or -1 with a reason in err. */
int rt_http_start(const char *hostport, char *err, size_t errlen);
/* Serve on a listening socket handed over by the --workers master (an
 * AF_UNIX one), instead of an address. */
int rt_http_start_fd(int fd, char *err, size_t errlen);

/* The --workers master answers for its workers: before anything else, fn
 * gets each GET/HEAD request's path; when it returns 1 it has set the
 * status code and a malloc'd body (freed by rt_http), else rt_http answers
 * as usual (404 for unknown paths). Called on the HTTP threads. Set it
 * before rt_http_start. */
typedef int (*rt_http_router)(const char *url, unsigned *code, char **body, size_t *len);
void rt_http_set_router(rt_http_router fn);

/* The port actually listened on (after rt_http_start), or 0. */
int rt_http_port(void);
/* Stop serving (joins the HTTP threads). After the loop has ended. */
void rt_http_stop(void);

#endif
