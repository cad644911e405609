/*
 * ljs_pull_life.c - the pull engine's start (see ljs_pull.h): it
 * subscribes, joins the connection and the shutdown and starts its timers;
 * it follows the connection's events and drains.
 *
 * drain() stops pulling, keeps receiving what the server already sent
 * (UNSUB, then a flush round trip proves nothing more comes) and finishes it
 * all; then the engine is finalized (ljs_pull.c). Terminal errors and
 * shutdown stop (jl_pull_close); a closed connection just ends. A reconnect
 * resets the requests (pulls do not survive it) and pulls again.
 */
#include "ljs_pull.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- drain ---- */

static void drain_flushed(uv_work_t *w, int status)
{
    jl_pull *p = w->data;
    (void)status;
    free(w);
    if (!p->finalized && p->state == JL_PULL_DRAINING) {
        jl_pull_drain_sub(p);
        jl_pull_unsubscribe(p);
        jl_pull_dispatch(p);
        jl_pull_wake_next(p, NULL);
    }
    p->flushing = 0;
    jl_pull_maybe_finalize(p);
}

static void drain_flush_work(uv_work_t *w)
{
    jl_pull *p = w->data;
    natsConnection_FlushTimeout(p->c->nc, 5000);
}

void jl_pull_start_drain(jl_pull *p)
{
    uv_work_t *w;
    if (p->state != JL_PULL_ACTIVE)
        return;
    p->state = JL_PULL_DRAINING;
    rt_pull_reset(&p->w);
    if (!p->sub || p->c->state != JL_CONN_CONNECTED || natsSubscription_Drain(p->sub) != NATS_OK) {
        jl_pull_drain_sub(p);
        jl_pull_unsubscribe(p);
        jl_pull_dispatch(p);
        jl_pull_maybe_finalize(p);
        return;
    }
    w = rt_xcalloc(1, sizeof *w);
    w->data = p;
    p->flushing = 1;
    uv_queue_work(RT->loop, w, drain_flush_work, drain_flushed);
}

/* ---- the connection's calls ---- */

/* After every read of the connection: pump only an engine whose pull
 * subscription got something (or closed). With 1,000 idle consumers every
 * heartbeat or info reply pumped all of them (5 % of a core). The tick
 * pumps every engine at least once a second anyway, which also reads the
 * rare max-deliveries advisories. */
static void pull_after_read(jl_client *k)
{
    jl_pull *p = (jl_pull *)k;
    if (jl_sub_pending(p->sub) > 0)
        jl_pull_pump(p);
}

static void pull_event(jl_client *k, int ev)
{
    jl_pull *p = (jl_pull *)k;
    if (ev == JL_EV_DISCONNECTED) {
        rt_pull_reset(&p->w);               /* pulls do not survive a reconnect */
        if (p->w.mode == RT_PULL_FETCH)
            jl_pull_fetch_finish(p, "disconnected", "the connection was lost during the fetch");
    } else if (ev == JL_EV_RECONNECTED) {
        rt_pull_reconnected(&p->w, jl_pull_now());   /* pull now; a late info answer is still heard */
        if (p->w.mode != RT_PULL_FETCH && p->err_ref != LUA_NOREF)
            jl_pull_tell(p, "reconnected", "the connection came back; pulling afresh", 0, 0);
        jl_pull_pump(p);
    } else if (ev == JL_EV_CLOSED) {
        if (p->w.mode == RT_PULL_FETCH)
            jl_pull_fetch_finish(p, "closed", "the connection is closed");
        else
            jl_pull_close(p, 0, "closed");
    }
}

static void pull_drain(jl_client *k)
{
    jl_pull *p = (jl_pull *)k;
    if (p->w.mode == RT_PULL_FETCH)
        jl_pull_fetch_finish(p, NULL, NULL);
    else
        jl_pull_start_drain(p);
}

/* Shutdown, first phase: stop pulling, nak what is buffered, let running
 * handlers finish (the hook is done when the engine is finalized). */
static void hook_begin(rt_hook *h)
{
    jl_pull *p = h->data;
    if (p->w.mode == RT_PULL_FETCH)
        jl_pull_fetch_finish(p, "closed", "shutting down");
    else
        jl_pull_close(p, 1, "closed");
}

/* ---- life ---- */

jl_pull *jl_pull_new(jl_conn *c, rt_pull_mode mode, const jl_pull_ops *ops, const char *next_subj,
                     const char *what)
{
    jl_pull *p = rt_xcalloc(1, sizeof *p);
    p->ops = ops;
    p->c = c;
    jl_conn_retain(c);                       /* for the engine's whole life */
    rt_pull_init(&p->w, mode, jl_pull_now());
    p->next_subj = rt_xstrdup(next_subj);
    snprintf(p->what, sizeof p->what, "%s", what);
    snprintf(p->where, sizeof p->where, "handler failed on %s", strncmp(what, "consumer ", 9) == 0 ? what + 9 : what);
    p->handler_ref = p->err_ref = p->self_ref = LUA_NOREF;
    p->num_pending = p->num_ack_pending = -1;
    p->st = rt_xcalloc(1, sizeof *p->st);
    p->st->refs = 1;
    return p;
}

static uv_timer_t *idle_timer(jl_pull *p)
{
    uv_timer_t *t = rt_timer_alloc(p);
    uv_unref((uv_handle_t *)t);              /* the engine's liveness is rt_ref, not its timers */
    return t;
}

int jl_pull_start(jl_pull *p, const char *info_subj, const char *adv_subj, const char **code, const char **detail)
{
    jl_conn *c = p->c;
    char wild[96];
    *code = "closed";
    if ((p->prefix_len = jl_inbox_prefix(p->prefix, sizeof p->prefix)) == 0) {
        *code = "no_memory";
        *detail = "js:consume: out of memory";
        goto fail;
    }
    snprintf(wild, sizeof wild, "%s*", p->prefix);
    if (natsConnection_SubscribeSync(&p->sub, c->nc, wild) != NATS_OK) {
        *detail = "js:consume: cannot subscribe (is the connection closed?)";
        goto fail;
    }
    natsSubscription_SetPendingLimits(p->sub, -1, -1);
    jl_pull_observe(p, info_subj, adv_subj);
    if (p->w.mode != RT_PULL_FETCH)
        p->health = rt_health_add(RT_HEALTH_CONSUMER, p->what);
    p->client.after_read = pull_after_read;
    p->client.event = pull_event;
    p->client.drain = pull_drain;
    jl_conn_client_add(c, &p->client);
    p->registered = 1;
    p->hook.begin = hook_begin;
    p->hook.phase = RT_PHASE_STOP;
    p->hook.data = p;
    rt_hook_add(&p->hook);
    p->hooked = 1;
    p->tick = idle_timer(p);
    jl_pull_tick_sync(p, 1);
    p->wait_timer = idle_timer(p);
    p->backoff_timer = idle_timer(p);
    if (p->w.mode == RT_PULL_CONSUME) {
        p->live = 1;                         /* a consumer keeps the process alive */
        rt_ref();
    }
    if (p->w.mode != RT_PULL_FETCH) {
        jl_pull_maybe_pull(p);
        return 0;
    }
    if (jl_pull_send(p, p->fetch_n, p->w.max_bytes) == 0)
        return 0;
    p->fetch_done = 1;
    *detail = "js:fetch: the connection is not usable";
    jl_pull_close(p, 0, NULL);
    return -1;

fail:
    p->sub = NULL;
    p->state = JL_PULL_STOPPING;
    jl_pull_maybe_finalize(p);
    return -1;
}

void jl_pull_free(jl_pull *p)
{
    /* normally reached only once finalized (the engine holds its userdata
     * until then); at teardown after a forced shutdown it may still be live */
    if (!p->finalized) {
        jl_pull_unsubscribe(p);
        rt_timer_free(&p->tick);
        rt_timer_free(&p->wait_timer);
        rt_timer_free(&p->backoff_timer);
        jl_pull_unhook(p);
    }
    for (natsMsg *m; (m = jl_pull_q_pop(p)) != NULL;)
        jl_msg_free(m);
    rt_health_release(p->health);           /* a failure stays visible */
    jl_ackstats_release(p->st);
    jl_conn_release(p->c);
    free(p->q);
    for (int i = 0; i < p->nslots; i++)
        free(p->slots[i]);
    free(p->slots);
    free(p->next_subj);
    free(p);
}
