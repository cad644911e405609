/*
 * ljs_publish_wait.c - the coroutines of an async publisher that wait for
 * room in its window (js:publish_async when max_pending is reached) or for
 * every ack (js:publish_async_complete). ljs_publish.c adds them,
 * ljs_publish_acks.c lets them go as acks and failures free room. See
 * ljs_publisher.h.
 */
#include "ljs_publisher.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdlib.h>

/* ---- waits for room in the window, or for every ack ---- */

static void wait_end(pa_wait *w)
{
    pa *p = w->p;
    rt_timer_free(&w->timer);
    RT_DLIST_UNLINK(p->waits, p->waits_tail, w);
    free(w);
}

static void wait_cancel(rt_co *co, void *op)
{
    wait_end(op);
}

static void wait_timeout(uv_timer_t *t)
{
    pa_wait *w = t->data;
    rt_co *co = w->co;
    int left = w->p->q.pending;
    lua_State *T;

    wait_end(w);
    if ((T = rt_co_prepare(co)) == NULL)
        return;
    lua_pushinteger(T, left);
    rt_co_resume(co, 1);
}

int jl_pub_wait(pa *p, rt_co *co, int kind, double timeout)
{
    pa_wait *w = rt_xcalloc(1, sizeof *w);
    w->p = p;
    w->co = co;
    w->kind = kind;
    RT_DLIST_APPEND(p->waits, p->waits_tail, w); /* FIFO */
    if (timeout >= 0)
        w->timer = rt_timer_new(wait_timeout, w, (uint64_t)(timeout * 1000.0), 0);
    return rt_co_wait(co, wait_cancel, w);
}

/* Wake the waiters of a kind while their condition holds, FIFO: slot
 * waiters while the window has room, complete waiters when nothing is
 * pending (all of them once the publisher ended). A woken publisher that
 * fills the window again waits again, so this always ends. */
void jl_pub_wake(pa *p, int kind)
{
    /* a blocked publisher resumes with a quarter of the window free (in
     * messages and bytes), not one slot: it then publishes a batch instead
     * of one message per ack */
    for (;;) {
        pa_wait *w;
        rt_co *co;
        lua_State *T;
        int ok = kind == W_SLOT ? rt_pubwin_resume(&p->q.win) : p->q.pending == 0;
        if (!ok && p->registered)
            return;
        for (w = p->waits; w && w->kind != kind; w = w->next)
            ;
        if (!w)
            return;
        co = w->co;
        wait_end(w);
        if ((T = rt_co_prepare(co)) != NULL) {
            if (kind == W_COMPLETE)
                lua_pushinteger(T, p->q.pending);
            rt_co_resume(co, kind == W_COMPLETE ? 1 : 0);
        }
    }
}
