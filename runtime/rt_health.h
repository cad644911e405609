/*
 * rt_health.h - what /livez and /readyz answer (served by rt_http.c).
 *
 * Readiness registry. Every open connection and every running consumer
 * (js:consume, js:messages) registers an item; the owner marks it failed
 * with a reason, or ok again, and removes it when the script ends it on
 * purpose. Ready = at least one connection, every item ok, not shutting
 * down. A failure outlives its owner (rt_health_release): a consumer
 * deleted on the server keeps the process unready, even after its handle
 * is gone, until the script stops it or starts the same consumer again.
 *
 * Liveness: the loop records a heartbeat (rt_health_beat) on every
 * iteration and at least twice a second; the HTTP threads read how long ago
 * that was. Lua-free, and every function is safe from any thread.
 */
#ifndef JETLUA_RT_HEALTH_H
#define JETLUA_RT_HEALTH_H

#include <stddef.h>
#include <stdint.h>

enum { RT_HEALTH_CONNECTION = 0, RT_HEALTH_CONSUMER };

typedef struct rt_health rt_health;

/* Register an item, ok. what: "connection orders", "consumer ORDERS/billing".
 * Clears the failure of earlier items of the same kind and what. */
rt_health *rt_health_add(int kind, const char *what);
/* Mark ok / failed (reason: a sentence, e.g. "is reconnecting"). NULL-safe. */
void rt_health_ok(rt_health *h);
void rt_health_fail(rt_health *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The script ended it on purpose (stop, drain, close): forget it. NULL-safe. */
void rt_health_remove(rt_health *h);
/* The owner is gone without the script ending it: forget it if ok, keep it
 * (failed, ownerless) if failed. NULL-safe. */
void rt_health_release(rt_health *h);
/* Shutting down: never ready again. */
void rt_health_set_stopping(void);

/* Heartbeat, on the loop thread: now_ms on a monotonic clock (uv_hrtime()/1e6). */
void rt_health_beat(uint64_t now_ms);
/* How long since the last beat, in ms (0 before the first). Any thread. */
uint64_t rt_health_stalled_ms(uint64_t now_ms);

/* 1 when ready; else 0 and the reasons in why, joined by "; " (whole
 * reasons only, as many as fit in cap). */
int rt_health_ready(char *why, size_t cap);

/* Forget everything (unit tests only: owners still hold their items). */
void rt_health_reset(void);

#endif
