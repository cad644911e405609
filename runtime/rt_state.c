/*
 * rt_state.c - the runtime's shared state (see rt_state.h): the RT
 * instance, the inbox behind rt_post, liveness refs and clocks.
 */
#include "rt.h"
#include "rt_inbox.h"
#include "rt_state.h"

#include <time.h>

static rt_t       rt_instance;
rt_t             *RT = &rt_instance;
static rt_inbox   inbox;

/* ---- the inbox ---- */

int rt_state_open_inbox(uv_loop_t *loop)
{
    return rt_inbox_init(&inbox, loop);
}

void rt_state_close_inbox(void)
{
    rt_inbox_close(&inbox);
}

void rt_state_free_inbox(void)
{
    rt_inbox_free(&inbox);
}

void rt_post(rt_event_fn fn, void *a, void *b)
{
    if (rt_inbox_push(&inbox, fn, a, b) != 0) {
        /* Only after shutdown closed the inbox: the event is dropped, and
         * the caller's data is leaked rather than touched off-thread. */
        rt_debug("inbox closed: late event dropped");
    }
}

int rt_post_try(rt_event_fn fn, void *a, void *b)
{
    return rt_inbox_push(&inbox, fn, a, b);
}

unsigned long long rt_inbox_events(void)
{
    return inbox.events;
}

/* ---- liveness ---- */

void rt_ref(void)   { RT->live++; }
void rt_unref(void) { RT->live--; }

/* ---- clocks, defaults ---- */

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t rt_mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

const char *rt_default_server(void)
{
    return RT->cfg.nservers > 0 ? RT->cfg.servers[0] : NULL;
}
