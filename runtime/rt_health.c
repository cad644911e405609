/*
 * rt_health.c - the readiness registry and the loop heartbeat (see rt_health.h).
 * One mutex guards the list; it is taken when a connection or consumer
 * changes state and when a probe asks, never per message.
 */
#include "rt_health.h"
#include "rt_list.h"
#include "rt_mem.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_health {
    int        kind;
    int        failed;
    int        owned;     /* 0: released by its owner, kept only to show a failure */
    char       what[160];
    char       reason[256];
    rt_health *next, *prev;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rt_health *head, *tail;
static int stopping;
static _Atomic uint64_t last_beat;

static void unlink_locked(rt_health *h)
{
    RT_DLIST_UNLINK(head, tail, h);
}

rt_health *rt_health_add(int kind, const char *what)
{
    rt_health *h = rt_xcalloc(1, sizeof *h);
    h->kind = kind;
    h->owned = 1;
    snprintf(h->what, sizeof h->what, "%s", what);
    pthread_mutex_lock(&mu);
    /* Started again (a script restarting a consumer after a terminal
     * error): the new one speaks for it, the old failure is over. */
    for (rt_health *o = head, *next; o; o = next) {
        next = o->next;
        if (o->kind != kind || !o->failed || strcmp(o->what, h->what) != 0)
            continue;
        if (o->owned) {
            o->failed = 0;
            o->reason[0] = '\0';
        } else {
            unlink_locked(o);
            free(o);
        }
    }
    RT_DLIST_APPEND(head, tail, h);
    pthread_mutex_unlock(&mu);
    return h;
}

void rt_health_ok(rt_health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&mu);
    h->failed = 0;
    h->reason[0] = '\0';
    pthread_mutex_unlock(&mu);
}

void rt_health_fail(rt_health *h, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    if (!h)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&mu);
    h->failed = 1;
    memcpy(h->reason, reason, sizeof reason);
    pthread_mutex_unlock(&mu);
}

void rt_health_remove(rt_health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&mu);
    unlink_locked(h);
    pthread_mutex_unlock(&mu);
    free(h);
}

void rt_health_release(rt_health *h)
{
    int keep;
    if (!h)
        return;
    pthread_mutex_lock(&mu);
    keep = h->failed;
    if (keep)
        h->owned = 0;
    else
        unlink_locked(h);
    pthread_mutex_unlock(&mu);
    if (!keep)
        free(h);
}

void rt_health_set_stopping(void)
{
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_mutex_unlock(&mu);
}

void rt_health_beat(uint64_t now_ms)
{
    atomic_store_explicit(&last_beat, now_ms, memory_order_relaxed);
}

uint64_t rt_health_stalled_ms(uint64_t now_ms)
{
    uint64_t b = atomic_load_explicit(&last_beat, memory_order_relaxed);
    return b == 0 || now_ms <= b ? 0 : now_ms - b;
}

/* Append "a b" to why, after "; " when not first, only when it fits whole;
 * returns the new length. */
static size_t add_reason(char *why, size_t cap, size_t n, const char *a, const char *b)
{
    int w;
    if (cap == 0 || n >= cap - 1)
        return n;
    w = snprintf(why + n, cap - n, "%s%s%s%s", n ? "; " : "", a, *b ? " " : "", b);
    if (w < 0 || (size_t)w >= cap - n) {
        why[n] = '\0';          /* not even one more whole reason: stop here */
        return cap - 1;
    }
    return n + (size_t)w;
}

int rt_health_ready(char *why, size_t cap)
{
    size_t n = 0;
    int conns = 0, ready = 1;
    if (cap)
        why[0] = '\0';
    pthread_mutex_lock(&mu);
    if (stopping) {
        n = add_reason(why, cap, n, "shutting down", "");
        ready = 0;
    }
    for (rt_health *h = head; h; h = h->next) {
        conns += h->kind == RT_HEALTH_CONNECTION;
        if (h->failed) {
            n = add_reason(why, cap, n, h->what, h->reason);
            ready = 0;
        }
    }
    if (conns == 0) {
        add_reason(why, cap, n, "no connection", "");
        ready = 0;
    }
    pthread_mutex_unlock(&mu);
    return ready;
}

void rt_health_reset(void)
{
    pthread_mutex_lock(&mu);
    while (head) {
        rt_health *h = head;
        unlink_locked(h);
        free(h);
    }
    stopping = 0;
    pthread_mutex_unlock(&mu);
    atomic_store(&last_beat, 0);
}
