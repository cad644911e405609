/*
 * rt_inbox.h - a multi-producer, single-consumer queue of (fn, a, b) events
 * woken by one uv_async. Producers are cnats threads; the consumer is the
 * loop thread, which takes the whole queue at once (one wakeup serves a batch;
 * uv_async coalesces wakeups anyway).
 *
 * Pure C and independent of Lua so tests/unit can exercise it.
 */
#ifndef JETLUA_RT_INBOX_H
#define JETLUA_RT_INBOX_H

#include <stddef.h>
#include <uv.h>

typedef void (*rt_inbox_fn)(void *a, void *b);

typedef struct rt_inbox_ev {
    rt_inbox_fn fn;
    void       *a;
    void       *b;
} rt_inbox_ev;

typedef struct rt_inbox {
    uv_mutex_t   lock;
    uv_async_t   async;
    rt_inbox_ev *items;      /* producers append here */
    size_t       n, cap;
    rt_inbox_ev *spare;      /* swapped in on drain, so neither side reallocates */
    size_t       spare_cap;
    int          closed;
    unsigned long long batches, events;  /* stats: drains and events run */
} rt_inbox;

int  rt_inbox_init(rt_inbox *q, uv_loop_t *loop);
/* Any thread. Returns 0, or -1 if the inbox is closed or out of memory. */
int  rt_inbox_push(rt_inbox *q, rt_inbox_fn fn, void *a, void *b);
/* Loop thread: run everything queued so far. Returns how many ran. */
size_t rt_inbox_drain(rt_inbox *q);
/* Loop thread: drain, refuse further pushes and close the async handle. */
void rt_inbox_close(rt_inbox *q);
/* After every producer thread is gone (nats_CloseAndWait): free memory.
 * Kept apart from close so a late cnats callback finds a closed inbox
 * (push returns -1) rather than freed memory. */
void rt_inbox_free(rt_inbox *q);

#endif
