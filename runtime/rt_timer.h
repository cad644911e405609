/*
 * rt_timer.h - heap-allocated libuv timers, the way every binding used
 * them: allocate, init, set data, start; later stop, close and free once
 * libuv has let go of the handle. Loop thread only.
 *
 *     w->timer = rt_timer_new(on_timeout, w, 5000, 0);   // started
 *     ...
 *     rt_timer_free(&w->timer);    // stops it; freed after uv_close; NULLs w->timer
 *
 * libuv counts a timeout from the loop's cached time, taken when the
 * current loop iteration began; a job that ran long (or the main chunk at
 * start-up, before the loop ever ran) would see its timer fire early by
 * that much. Timers started for scripts therefore update the cached time
 * first (one clock read); the engines' own timers do not need it.
 *
 * A timer that fires calls cb(timer) with timer->data == data. Freeing
 * from inside its own callback is fine. Timers embedded in a struct (not
 * from rt_timer_new) keep using uv_timer_init/uv_close directly, because
 * their struct must outlive the close callback.
 */
#ifndef JETLUA_RT_TIMER_H
#define JETLUA_RT_TIMER_H

#include <stdint.h>
#include <uv.h>

/* A started timer: fires after timeout_ms, then every repeat_ms (0: once). */
uv_timer_t *rt_timer_new(uv_timer_cb cb, void *data, uint64_t timeout_ms, uint64_t repeat_ms);
/* A timer that is not started yet (uv_timer_start it later). */
uv_timer_t *rt_timer_alloc(void *data);
/* Stop, close and free *t (after libuv's close callback); *t = NULL. NULL ok. */
void rt_timer_free(uv_timer_t **t);

#endif
