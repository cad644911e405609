/*
 * rt_inbox.c - see rt_inbox.h.
 *
 * Why swap two arrays instead of a linked list: a push is one store into a
 * preallocated array under the lock (no malloc per event), and the drain
 * holds the lock only for a pointer swap. A wakeup is sent only when the
 * queue goes from empty to non-empty: while the loop has not drained, a
 * wakeup is already pending, so further sends would be wasted syscalls.
 */
#include "rt_inbox.h"

#include <stdlib.h>
#include <string.h>

static void on_async(uv_async_t *h)
{
    rt_inbox_drain((rt_inbox *)h->data);
}

int rt_inbox_init(rt_inbox *q, uv_loop_t *loop)
{
    memset(q, 0, sizeof *q);
    if (uv_mutex_init(&q->lock) != 0)
        return -1;
    q->cap = q->spare_cap = 1024;
    q->items = malloc(q->cap * sizeof *q->items);
    q->spare = malloc(q->spare_cap * sizeof *q->spare);
    if (!q->items || !q->spare)
        return -1;
    if (loop) {
        if (uv_async_init(loop, &q->async, on_async) != 0)
            return -1;
        q->async.data = q;
        /* The inbox alone never keeps the process alive. */
        uv_unref((uv_handle_t *)&q->async);
    }
    return 0;
}

int rt_inbox_push(rt_inbox *q, rt_inbox_fn fn, void *a, void *b)
{
    int wake;

    uv_mutex_lock(&q->lock);
    if (q->closed) {
        uv_mutex_unlock(&q->lock);
        return -1;
    }
    if (q->n == q->cap) {
        size_t ncap = q->cap * 2;
        rt_inbox_ev *ni = realloc(q->items, ncap * sizeof *ni);
        if (!ni) {
            uv_mutex_unlock(&q->lock);
            return -1;
        }
        q->items = ni;
        q->cap = ncap;
    }
    q->items[q->n].fn = fn;
    q->items[q->n].a = a;
    q->items[q->n].b = b;
    wake = (q->n++ == 0);
    uv_mutex_unlock(&q->lock);
    if (wake && q->async.data)
        uv_async_send(&q->async);
    return 0;
}

size_t rt_inbox_drain(rt_inbox *q)
{
    size_t total = 0;

    for (;;) {
        rt_inbox_ev *batch;
        size_t n, cap;

        uv_mutex_lock(&q->lock);
        n = q->n;
        if (n == 0) {
            uv_mutex_unlock(&q->lock);
            break;
        }
        batch = q->items;
        cap = q->cap;
        q->items = q->spare;
        q->cap = q->spare_cap;
        q->n = 0;
        uv_mutex_unlock(&q->lock);

        for (size_t i = 0; i < n; i++)
            batch[i].fn(batch[i].a, batch[i].b);
        total += n;
        q->batches++;

        /* Give the array back as the spare. Only the loop thread touches
         * spare, and producers never see it, so no lock is needed. */
        q->spare = batch;
        q->spare_cap = cap;
    }
    q->events += total;
    return total;
}

void rt_inbox_free(rt_inbox *q)
{
    free(q->items);
    free(q->spare);
    q->items = q->spare = NULL;
    uv_mutex_destroy(&q->lock);
}

void rt_inbox_close(rt_inbox *q)
{
    rt_inbox_drain(q);
    uv_mutex_lock(&q->lock);
    q->closed = 1;
    uv_mutex_unlock(&q->lock);
    rt_inbox_drain(q);
    if (q->async.data)
        uv_close((uv_handle_t *)&q->async, NULL);
}
