/*
 * test_inbox.c - the cross-thread inbox: several producer threads push while
 * the loop drains; every event runs exactly once, on the loop thread, and in
 * order per producer.
 */
#include "check.h"
#include "rt_inbox.h"

#include <stdint.h>
#include <stdlib.h>

#define PRODUCERS 4
#define PER_PRODUCER 200000

static rt_inbox q;
static uv_thread_t loop_thread;
static long long seen[PRODUCERS];
static int out_of_order, wrong_thread;
static long long total;
static uv_loop_t loop;

static void on_event(void *a, void *b)
{
    int p = (int)(intptr_t)a;
    long long n = (long long)(intptr_t)b;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &loop_thread))
        wrong_thread++;
    if (n != seen[p])
        out_of_order++;
    seen[p] = n + 1;
    if (++total == (long long)PRODUCERS * PER_PRODUCER)
        uv_stop(&loop);
}

static void producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (long long i = 0; i < PER_PRODUCER; i++)
        while (rt_inbox_push(&q, on_event, (void *)(intptr_t)p, (void *)(intptr_t)i) != 0)
            ;
}

static void guard_fired(uv_timer_t *t)
{
    fprintf(stderr, "test_inbox: timed out\n");
    uv_stop(t->loop);
}

static void closed_event(void *a, void *b) { (*(int *)a)++; }

int main(void)
{
    uv_thread_t th[PRODUCERS];
    uv_timer_t guard;

    uv_loop_init(&loop);
    loop_thread = uv_thread_self();
    CHECK(rt_inbox_init(&q, &loop) == 0);
    uv_ref((uv_handle_t *)&q.async);      /* keep the loop running for the test */
    uv_timer_init(&loop, &guard);         /* bound: the test can never hang */
    uv_timer_start(&guard, guard_fired, 60000, 0);
    uv_unref((uv_handle_t *)&guard);

    for (int i = 0; i < PRODUCERS; i++)
        uv_thread_create(&th[i], producer, (void *)(intptr_t)i);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < PRODUCERS; i++)
        uv_thread_join(&th[i]);
    rt_inbox_drain(&q);

    CHECK(total == (long long)PRODUCERS * PER_PRODUCER);
    CHECK(out_of_order == 0);
    CHECK(wrong_thread == 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK(seen[i] == PER_PRODUCER);
    /* batching: far fewer drains than events */
    CHECK(q.batches < q.events);
    printf("inbox: %llu events in %llu batches\n", q.events, q.batches);

    /* a closed inbox refuses pushes instead of touching freed memory */
    int ran = 0;
    CHECK(rt_inbox_push(&q, closed_event, &ran, NULL) == 0);
    rt_inbox_close(&q);
    CHECK(ran == 1);                      /* close drains what was queued */
    CHECK(rt_inbox_push(&q, closed_event, &ran, NULL) == -1);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    rt_inbox_free(&q);
    return DONE();
}
