/*
 * test_list.c - rt_list.h (intrusive lists) against a reference array, and
 * rt_timer.h (timers that free themselves, also from their own callback).
 */
#include "check.h"
#include "rt_list.h"
#include "rt_timer.h"
#include "rt.h"

#include <stdlib.h>
#include <string.h>

typedef struct el { int v; struct el *next, *prev; } el;

/* the list must read ref[0..n) forwards and backwards, links consistent */
static int same(el *head, el *tail, const int *ref, int n)
{
    int i = 0;
    el *prev = NULL;
    for (el *e = head; e; prev = e, e = e->next, i++)
        if (i >= n || e->v != ref[i] || e->prev != prev)
            return 0;
    if (i != n || prev != tail)
        return 0;
    for (el *e = tail; e; e = e->prev)
        if (ref[--i] != e->v)
            return 0;
    return i == 0;
}

static int fired;
static uv_timer_t *self_freeing;

static void on_fire(uv_timer_t *t)
{
    fired += *(int *)t->data;
    if (t == self_freeing)
        rt_timer_free(&self_freeing);     /* freeing from its own callback */
}

int main(void)
{
    enum { N = 64 };
    el pool[N];
    int ref[N], n = 0;
    el *head = NULL, *tail = NULL;
    unsigned seed = 7;

    for (int i = 0; i < N; i++) {
        pool[i].v = i;
        pool[i].next = pool[i].prev = NULL;
    }
    /* random appends, pushes, inserts and unlinks, checked after each step */
    int linked[N] = {0};
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N), op = (int)((seed >> 20) % 4);
        el *e = &pool[i];
        if (linked[i]) {
            RT_DLIST_UNLINK(head, tail, e);
            int k = 0;
            while (ref[k] != i) k++;
            memmove(ref + k, ref + k + 1, (size_t)(n - k - 1) * sizeof *ref);
            n--;
            linked[i] = 0;
            CHECK(e->next == NULL && e->prev == NULL);
        } else if (op == 0) {
            RT_DLIST_APPEND(head, tail, e);
            ref[n++] = i;
            linked[i] = 1;
        } else if (op == 1) {
            RT_DLIST_PUSH(head, tail, e);
            memmove(ref + 1, ref, (size_t)n * sizeof *ref);
            ref[0] = i;
            n++;
            linked[i] = 1;
        } else {
            int k = n ? (int)((seed >> 4) % (unsigned)(n + 1)) : 0;   /* after ref[k-1]; 0: front */
            el *at = k ? &pool[ref[k - 1]] : NULL;
            RT_DLIST_INSERT_AFTER(head, tail, at, e);
            memmove(ref + k + 1, ref + k, (size_t)(n - k) * sizeof *ref);
            ref[k] = i;
            n++;
            linked[i] = 1;
        }
        if (!same(head, tail, ref, n)) {
            CHECK(!"dlist matches the reference");
            break;
        }
    }

    /* head-only list: push and unlink from the front, the middle, the end */
    el *h = NULL;
    for (int i = 0; i < 4; i++) {
        pool[i].next = pool[i].prev = NULL;
        RT_LIST_PUSH(h, &pool[i]);
    }
    int r1[] = {3, 2, 1, 0};
    CHECK(same(h, &pool[0], r1, 4));
    RT_LIST_UNLINK(h, &pool[2]);
    RT_LIST_UNLINK(h, &pool[3]);
    RT_LIST_UNLINK(h, &pool[0]);
    int r2[] = {1};
    CHECK(same(h, &pool[1], r2, 1));
    RT_LIST_UNLINK(h, &pool[1]);
    CHECK(h == NULL);

    /* timers: one fires once and is freed after; one frees itself; one is
     * freed before it fires and never runs */
    uv_loop_t loop;
    uv_loop_init(&loop);
    RT->loop = &loop;
    int one = 1, ten = 10, hundred = 100;
    uv_timer_t *a = rt_timer_new(on_fire, &one, 1, 0);
    self_freeing = rt_timer_new(on_fire, &ten, 2, 1);
    uv_timer_t *c = rt_timer_new(on_fire, &hundred, 1000, 0);
    rt_timer_free(&c);
    CHECK(c == NULL);
    rt_timer_free(&c);                     /* NULL is fine */
    uv_run(&loop, UV_RUN_DEFAULT);         /* ends: nothing left active */
    CHECK(fired == 11);
    CHECK(self_freeing == NULL);
    rt_timer_free(&a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);      /* every handle closed and freed */
    return DONE();
}
