/*
 * rt_timer.c - heap-allocated libuv timers (see rt_timer.h).
 */
#include "rt_timer.h"
#include "rt.h"
#include "rt_mem.h"

#include <stdlib.h>

uv_timer_t *rt_timer_alloc(void *data)
{
    uv_timer_t *t = rt_xmalloc(sizeof *t);
    uv_timer_init(RT->loop, t);
    t->data = data;
    return t;
}

uv_timer_t *rt_timer_new(uv_timer_cb cb, void *data, uint64_t timeout_ms, uint64_t repeat_ms)
{
    uv_timer_t *t = rt_timer_alloc(data);
    uv_update_time(RT->loop);
    uv_timer_start(t, cb, timeout_ms, repeat_ms);
    return t;
}

static void closed(uv_handle_t *h)
{
    free(h);
}

void rt_timer_free(uv_timer_t **t)
{
    if (!*t)
        return;
    uv_timer_stop(*t);
    (*t)->data = NULL;
    uv_close((uv_handle_t *)*t, closed);
    *t = NULL;
}
