/*
 * rt_http.h - the --metrics HTTP endpoint, served from the libuv loop:
 *   GET /metrics  the registry in the Prometheus text format (rt_metrics.h)
 *   GET /healthz  200 "ok" when ready, else 503 with the reason
 * Requests are parsed with http-parser (Debian's libhttp-parser). The
 * listener does not keep the process alive.
 */
#ifndef JETLUA_RT_HTTP_H
#define JETLUA_RT_HTTP_H

#include <stddef.h>

/* Listen on "HOST:PORT" (PORT 0: any free port). Returns 0, or -1 with a
 * reason in err. */
int rt_http_start(const char *hostport, char *err, size_t errlen);
/* The port actually listened on (after rt_http_start), or 0. */
int rt_http_port(void);

/* Readiness for /healthz: returns 1 when ready; else 0 and a reason. Set by
 * the connection bindings; NULL means "not ready: no connection". */
extern int (*rt_http_ready)(const char **why);

#endif
