/*
 * ljs_pull.c - the pull-consumer engine behind js:consume, js:messages and
 * js:fetch, while it runs: the part they share (see ljs_pull.h for the
 * other files; its start and end are in ljs_pull_life.c). cnats 3.4.1 has
 * no non-blocking pull, so this is ours.
 *
 * One engine = one synchronous cnats subscription on "_INBOX.<nuid>.*".
 * Every pull request gets its own reply "<prefix><id>", so a status tells
 * which request it ends (user messages carry the stream subject instead).
 * Like core subscriptions (lsub.c), the subscription is pumped on the loop
 * thread right after each socket read: no cnats delivery thread, no hop.
 * Everything that arrives is moved at once into our own FIFO so statuses
 * and heartbeats are seen even while handlers are slow.
 *
 * What to do is decided by runtime/rt_pull.c (accounting, window, refill,
 * statuses, back-off, heartbeats, limits): this file carries it out with
 * the subscription, the timers and the script's on_error.
 */
#include "ljs_pull.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ending ----
 *
 * stop() stops pulling, naks what is buffered (other consumers get it at
 * once) and unsubscribes; handlers already running finish. Then the engine
 * is finalized: its timers, hook and liveness go, and its userdata may be
 * collected. */

void jl_pull_unsubscribe(jl_pull *p)
{
    if (p->sub) {
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
        p->sub = NULL;
    }
    jl_cwatch_free(p->cw);                  /* cancels a consumer info request that is out */
    p->cw = NULL;
    p->w.probe = 0;
    if (p->registered) {
        p->registered = 0;
        jl_conn_client_remove(p->c, &p->client);
    }
}

void jl_pull_unhook(jl_pull *p)
{
    if (p->hooked) {
        p->hooked = 0;
        rt_hook_remove(&p->hook);
    }
}

void jl_pull_close(jl_pull *p, int nak, const char *code)
{
    if (p->state == JL_PULL_CLOSED || p->state == JL_PULL_STOPPING)
        return;
    p->state = JL_PULL_STOPPING;
    if (p->sub && p->c->state != JL_CONN_CLOSED)
        jl_pull_drain_sub(p);
    jl_pull_unsubscribe(p);
    rt_pull_reset(&p->w);
    if (p->w.mode != RT_PULL_FETCH) {
        int can = nak && p->c->state != JL_CONN_CLOSED;
        natsMsg *m;
        while ((m = jl_pull_q_pop(p)) != NULL) {
            if (can && natsMsg_GetReply(m)) {
                natsConnection_Publish(p->c->nc, natsMsg_GetReply(m), "-NAK", 4);
                if (p->st)
                    p->st->naked++;
            }
            jl_msg_free(m);
        }
        jl_pull_wake_next(p, code ? code : "closed");
    }
    jl_pull_maybe_finalize(p);
}

void jl_pull_maybe_finalize(jl_pull *p)
{
    lua_State *L = RT->L;
    rt_co *dco;
    int mode = p->w.mode;
    if (p->finalized || p->pumping || p->dispatching || p->running > 0 || p->flushing)
        return;
    if (p->state == JL_PULL_DRAINING && !p->sub && p->qlen == 0 && mode == RT_PULL_CONSUME)
        p->state = JL_PULL_STOPPING;
    if (p->state == JL_PULL_DRAINING && !p->sub && p->qlen == 0 && mode == RT_PULL_MESSAGES) {
        /* a drained iterator handed everything out: a waiting next() gets "closed" */
        p->state = JL_PULL_STOPPING;
        jl_pull_wake_next(p, "closed");
    }
    if (p->state != JL_PULL_STOPPING)
        return;
    if (mode == RT_PULL_MESSAGES && p->qlen > 0)
        return;                              /* drained messages still to hand out */
    jl_pull_unsubscribe(p);
    p->state = JL_PULL_CLOSED;
    p->finalized = 1;
    jl_pull_gauges(p);
    rt_timer_free(&p->tick);
    rt_timer_free(&p->wait_timer);
    rt_timer_free(&p->backoff_timer);
    rt_hook_done(&p->hook);
    jl_pull_unhook(p);
    if (p->live) {
        p->live = 0;
        rt_unref();
    }
    dco = p->drain_co;
    p->drain_co = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, p->self_ref);   /* __gc may come now */
    p->self_ref = LUA_NOREF;
    if (dco && rt_co_prepare(dco)) {
        lua_pushboolean(dco->L, 1);
        rt_co_resume(dco, 1);
    }
}

jl_pull *jl_pull_check(lua_State *L, const char *fname)
{
    jl_pull_ud *u = luaL_checkudata(L, 1, JL_PULL_MT);
    if (!u->p)
        luaL_error(L, "%s: the consumer is gone", fname);
    return u->p;
}

static rt_series *m_delivered, *m_redelivered;

static void on_tick(uv_timer_t *t);
static void on_info(void *owner, const rt_pull_info *ci);
static void on_max_delivery(void *owner, int64_t seq, int64_t deliveries);

/* The loop's cached clock (ms, monotonic, updated once per iteration): a
 * clock_gettime per message showed up at 5 % of a consume profile. */
uint64_t jl_pull_now(void) { return uv_now(RT->loop); }

/* ---- metrics ---- */

static void metrics_init(void)
{
    if (m_delivered)
        return;
    m_delivered = rt_metric_simple("jetlua_js_delivered_total", RT_COUNTER,
                                   "JetStream messages received by pull consumers");
    m_redelivered = rt_metric_simple("jetlua_js_redelivered_total", RT_COUNTER,
                                     "JetStream messages received again (num_delivered > 1)");
}

static rt_series *series(const char *name, int type, const char *help, const char *labels)
{
    const char *err = NULL;
    return rt_metric(name, type, help, labels, NULL, 0, &err);
}

/* Per-consumer series, labelled {stream=, consumer=} from the pull subject
 * "...CONSUMER.MSG.NEXT.<stream>.<consumer>". */
static void consumer_metrics(jl_pull *p)
{
    char stream[128], consumer[128], labels[320];
    const char *names[2] = {"consumer", "stream"}, *values[2] = {consumer, stream};   /* sorted by name */
    const char *c = strrchr(p->next_subj, '.'), *s;
    if (!c || c == p->next_subj)
        return;
    for (s = c - 1; s > p->next_subj && *s != '.'; s--)
        ;
    snprintf(consumer, sizeof consumer, "%s", c + 1);
    snprintf(stream, sizeof stream, "%.*s", (int)(c - s - 1), s + 1);
    rt_metric_labels(labels, sizeof labels, names, values, 2);
    p->mc_delivered = series("jetlua_consumer_delivered_total", RT_COUNTER, "messages received by a pull consumer", labels);
    p->mc_redelivered = series("jetlua_consumer_redelivered_total", RT_COUNTER,
                               "messages received again (num_delivered > 1)", labels);
    p->mc_errors = series("jetlua_consumer_handler_errors_total", RT_COUNTER, "handlers that raised", labels);
    p->mc_buffered = series("jetlua_consumer_buffered", RT_GAUGE, "messages received, waiting for a handler", labels);
    p->mc_in_flight = series("jetlua_consumer_in_flight", RT_GAUGE, "handlers running", labels);
    p->st->m_acked = series("jetlua_consumer_acked_total", RT_COUNTER, "acks sent", labels);
    p->st->m_naked = series("jetlua_consumer_naked_total", RT_COUNTER, "naks sent", labels);
    p->st->m_termed = series("jetlua_consumer_termed_total", RT_COUNTER, "terms sent", labels);
    p->mc_seconds = series("jetlua_consumer_handler_seconds", RT_HISTOGRAM, "handler run time", labels);
    p->mc_pending = series("jetlua_consumer_num_pending", RT_GAUGE,
                           "messages in the stream not yet delivered to the consumer", labels);
    p->mc_ack_pending = series("jetlua_consumer_num_ack_pending", RT_GAUGE,
                               "messages delivered and not yet acknowledged (consumer info)", labels);
    p->mc_max_deliveries = series("jetlua_consumer_max_deliveries_total", RT_COUNTER,
                                  "messages that reached max_deliver (server advisories)", labels);
    if (p->num_pending >= 0)
        rt_metric_set(p->mc_pending, (double)p->num_pending);
    if (p->num_ack_pending >= 0)
        rt_metric_set(p->mc_ack_pending, (double)p->num_ack_pending);
}

void jl_pull_observe(jl_pull *p, const char *info_subj, const char *adv_subj)
{
    metrics_init();
    if (p->w.mode == RT_PULL_FETCH)
        return;
    consumer_metrics(p);
    if (info_subj)
        p->cw = jl_cwatch_new(p->c, info_subj, adv_subj, on_info, on_max_delivery, p);
    p->w.last_info = jl_pull_now();         /* pull.lua just read it */
}

void jl_pull_gauges(jl_pull *p)
{
    rt_metric_set(p->mc_buffered, p->qlen);
    rt_metric_set(p->mc_in_flight, p->running);
}

/* ---- the ring of buffered messages ---- */

/* Size as the server counts it for max_bytes: subject, reply, headers, data. */
static int64_t msg_size(natsMsg *m)
{
    int64_t n = (int64_t)strlen(natsMsg_GetSubject(m)) + natsMsg_GetDataLength(m);
    const char *r = natsMsg_GetReply(m);
    const char **keys = NULL;
    int nkeys = 0;
    if (r)
        n += (int64_t)strlen(r);
    if (natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
        n += 12;                                   /* "NATS/1.0\r\n" ... "\r\n" */
        for (int i = 0; i < nkeys; i++) {
            const char **vals = NULL;
            int nv = 0;
            if (natsMsgHeader_Values(m, keys[i], &vals, &nv) == NATS_OK) {
                for (int j = 0; j < nv; j++)
                    n += (int64_t)(strlen(keys[i]) + strlen(vals[j]) + 4);
                free((void *)vals);
            }
        }
        free((void *)keys);
    }
    return n;
}

/* The ring grows with the window the script chose: checked (-1: no memory). */
static int q_push(jl_pull *p, natsMsg *m)
{
    if (p->qlen == p->qcap) {
        int ncap = p->qcap ? p->qcap * 2 : 64;
        natsMsg **nq = malloc(sizeof *nq * (size_t)ncap);
        if (!nq)
            return -1;
        for (int i = 0; i < p->qlen; i++)
            nq[i] = p->q[(p->qhead + i) % p->qcap];
        free(p->q);
        p->q = nq;
        p->qcap = ncap;
        p->qhead = 0;
    }
    p->q[(p->qhead + p->qlen) % p->qcap] = m;
    p->qlen++;
    return 0;
}

natsMsg *jl_pull_q_pop(jl_pull *p)
{
    natsMsg *m;
    if (p->qlen == 0)
        return NULL;
    m = p->q[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    if (p->w.max_bytes > 0)
        p->qbytes -= msg_size(m);
    return m;
}

/* ---- pulls ---- */

int jl_pull_send(jl_pull *p, int64_t batch, int64_t bytes)
{
    char reply[96], body[256];
    uint64_t now = jl_pull_now();
    rt_pull_req *r = rt_pull_req_prepare(&p->w, batch, bytes, now);
    size_t n;
    if (!r)
        return -1;
    snprintf(reply, sizeof reply, "%s%llu", p->prefix, (unsigned long long)r->id);
    n = rt_pull_req_body(&p->w, r, body, sizeof body);
    if (natsConnection_PublishRequest(p->c->nc, p->next_subj, reply, body, (int)n) != NATS_OK)
        return -1;
    rt_pull_req_sent(&p->w, now);
    return 0;
}

void jl_pull_maybe_pull(jl_pull *p)
{
    rt_pull_ask asks[RT_PULL_MAX_REQS];
    int n;
    if (p->w.mode == RT_PULL_FETCH || p->state != JL_PULL_ACTIVE || p->c->state != JL_CONN_CONNECTED || !p->sub)
        return;
    n = rt_pull_refill(&p->w, p->qlen, p->running, p->qbytes, jl_pull_now(), asks);
    for (int i = 0; i < n; i++)
        if (jl_pull_send(p, asks[i].batch, asks[i].bytes) != 0)
            break;
}

void jl_pull_tick_sync(jl_pull *p, int force)
{
    if (!p->tick || p->finalized || (!force && p->tick_ms == p->w.tick_ms))
        return;
    p->tick_ms = p->w.tick_ms;
    uv_timer_start(p->tick, on_tick, p->tick_ms, p->tick_ms);
}

/* ---- errors reported to the script ---- */

/* An on_error call, run from the inbox right after the current event: the
 * script's function may stop (and let the GC free) this very consumer, so
 * it must not run while engine code is still on the C stack. */
typedef struct err_call {
    int  fn_ref;
    int  terminal;
    char code[32];
    char detail[256];
} err_call;

static void run_on_error(void *a, void *b)
{
    err_call *e = a;
    lua_State *L = RT->L;
    (void)b;
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, e->fn_ref);
    lua_pushstring(L, e->code);
    lua_pushstring(L, e->detail);
    lua_pushboolean(L, e->terminal);
    free(e);
    rt_co_spawn(L, 3, "on_error handler of a consumer", NULL, NULL);
}

/* Tell the script (on_error) or the log; an error is counted in stats()
 * unless it is news rather than a failure (a reconnect). */
void jl_pull_tell(jl_pull *p, const char *code, const char *detail, int terminal, int count)
{
    lua_State *L = RT->L;
    err_call *e;
    if (count)
        p->errors++;
    if (p->err_ref == LUA_NOREF) {
        if (terminal)
            rt_error("%s: %s (%s); the consumer stopped", p->what, code, detail);
        else
            rt_warn("%s: %s (%s)", p->what, code, detail);
        return;
    }
    e = rt_xcalloc(1, sizeof *e);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
    e->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    e->terminal = terminal;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->detail, sizeof e->detail, "%s", detail);
    if (rt_post_try(run_on_error, e, NULL) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, e->fn_ref);     /* shutting down: the log says it */
        free(e);
        rt_warn("%s: %s (%s)", p->what, code, detail);
    }
}

static void report(jl_pull *p, const char *code, const char *detail, int terminal)
{
    jl_pull_tell(p, code, detail, terminal, 1);
}

static void on_backoff_end(uv_timer_t *t)
{
    jl_pull *p = t->data;
    p->w.backoff_until = 0;        /* the timer may fire a hair early by our clock */
    if (p->state == JL_PULL_ACTIVE)
        jl_pull_pump(p);
}

static void back_off(jl_pull *p, const char *code, const char *detail, uint32_t ms)
{
    char d[256];
    if (p->backoff_timer)
        uv_timer_start(p->backoff_timer, on_backoff_end, ms, 0);
    snprintf(d, sizeof d, "%s; next pull in %.0f s", detail, ms / 1000.0);
    report(p, code, d, 0);
}

/* The end: tell the script, stop. nak: buffered messages are nak'd (the
 * consumer still exists) or dropped (it is gone: nothing to ack them to). */
static void terminal(jl_pull *p, const char *code, const char *detail, int nak)
{
    if (p->w.mode == RT_PULL_FETCH) {
        jl_pull_fetch_finish(p, code, detail);
        return;
    }
    if (p->state == JL_PULL_CLOSED || p->state == JL_PULL_STOPPING)
        return;
    p->term_code = code;
    snprintf(p->term_detail, sizeof p->term_detail, "%s", detail);
    report(p, code, detail, 1);
    rt_health_fail(p->health, "failed: %s (%s)", code, detail);
    jl_pull_close(p, nak, code);
}

/* Carry out what rt_pull decided; detail: "<status> <description>". */
static void act(jl_pull *p, const rt_pull_verdict *v, const char *detail)
{
    const char *d = v->detail ? v->detail : detail;
    switch (v->act) {
    case RT_PA_NONE:
    case RT_PA_END:
    case RT_PA_RESET:
        break;                                 /* the pump pulls again */
    case RT_PA_ADAPT:
        jl_pull_tick_sync(p, 0);             /* the request's expires may have shrunk */
        break;
    case RT_PA_BACKOFF:
        back_off(p, v->code, d, v->backoff_ms);
        break;
    case RT_PA_TERMINAL:
        terminal(p, v->code, d, v->nak);
        break;
    case RT_PA_FINISH:
        jl_pull_fetch_finish(p, v->code, d);
        break;
    }
}

/* Ask the server whether the consumer is still there (ljs_consumer_watch.c);
 * the answer comes to on_info. */
static int ask_info(jl_pull *p)
{
    return p->cw && p->state == JL_PULL_ACTIVE && jl_cwatch_ask(p->cw, JL_PULL_INFO_TIMEOUT_MS);
}

/* The consumer info answered (or failed): a consumer or stream that is gone
 * ends the engine; otherwise the limits and lag are refreshed, and after
 * missed heartbeats pulling starts afresh. */
static void on_info(void *owner, const rt_pull_info *ci)
{
    jl_pull *p = owner;
    if (p->state == JL_PULL_CLOSED || p->state == JL_PULL_STOPPING) {
        p->w.probe = 0;
        return;
    }
    if (rt_pull_info_apply(&p->w, ci, jl_pull_now()))
        jl_pull_tick_sync(p, 0);
    if (ci->gone) {
        terminal(p, ci->code, ci->detail, 0);
        return;
    }
    if (!ci->code) {
        if (ci->num_pending >= 0)
            rt_metric_set(p->mc_pending, (double)(p->num_pending = ci->num_pending));
        if (ci->num_ack_pending >= 0)
            rt_metric_set(p->mc_ack_pending, (double)(p->num_ack_pending = ci->num_ack_pending));
    }
    if (p->state == JL_PULL_ACTIVE)
        jl_pull_pump(p);
}

static void on_max_delivery(void *owner, int64_t seq, int64_t deliveries)
{
    jl_pull *p = owner;
    p->max_deliveries++;
    rt_metric_add(p->mc_max_deliveries, 1);
    rt_warn("%s: stream seq %lld reached max_deliver (%lld deliveries); the server will not deliver it again",
            p->what, (long long)seq, (long long)deliveries);
}

/* ---- inbound ---- */

static void on_user_msg(jl_pull *p, natsMsg *m)
{
    jl_ack_meta am;
    int64_t sz = p->w.max_bytes > 0 ? msg_size(m) : 0;
    p->delivered++;
    rt_metric_add(m_delivered, 1);
    rt_metric_add(p->mc_delivered, 1);
    if (jl_ack_parse(natsMsg_GetReply(m), &am) == 0) {
        if (strtol(am.f[JL_ACK_DELIVERED], NULL, 10) > 1) {
            p->redelivered++;
            rt_metric_add(m_redelivered, 1);
            rt_metric_add(p->mc_redelivered, 1);
        }
        p->num_pending = strtoll(am.f[JL_ACK_PENDING], NULL, 10);   /* after this message */
        rt_metric_set(p->mc_pending, (double)p->num_pending);
    }
    rt_pull_on_msg(&p->w, sz);
    rt_pull_sized(&p->w, natsMsg_GetDataLength(m));
    if (q_push(p, m) != 0) {
        /* no memory for the buffer: give the message back at once */
        if (natsMsg_GetReply(m) && p->c->state != JL_CONN_CLOSED)
            natsConnection_Publish(p->c->nc, natsMsg_GetReply(m), "-NAK", 4);
        jl_msg_free(m);
        report(p, "no_memory", "out of memory for the buffer of received messages; the message was nak'd", 0);
        return;
    }
    p->qbytes += sz;
    if (p->w.mode == RT_PULL_FETCH && ++p->fetch_got >= p->fetch_n)
        jl_pull_fetch_finish(p, NULL, NULL);
}

static int64_t header_num(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) == NATS_OK && v)
        return strtoll(v, NULL, 10);
    return -1;
}

static void on_status(jl_pull *p, natsMsg *m, const char *status)
{
    const char *desc = "";
    const char *subj = natsMsg_GetSubject(m);
    uint64_t id = 0;
    int code = atoi(status);
    char detail[256];
    rt_pull_verdict v;

    natsMsgHeader_Get(m, "Description", &desc);
    if (!desc)
        desc = "";
    if (code == 100)
        return;                                            /* liveness only */
    if (strncmp(subj, p->prefix, p->prefix_len) == 0)
        id = strtoull(subj + p->prefix_len, NULL, 10);
    snprintf(detail, sizeof detail, "%d %s", code, desc);
    rt_pull_on_status(&p->w, code, desc, id, header_num(m, "Nats-Pending-Messages"), p->fetch_got,
                      p->qlen == 0 && p->running == 0, jl_pull_now(), &v);
    if (v.act == RT_PA_ADAPT)
        rt_info("%s: %s; pulling within it", p->what, desc);
    act(p, &v, detail);
}

static void on_inbound(jl_pull *p, natsMsg *m)
{
    const char *status = NULL;
    rt_pull_heard(&p->w, jl_pull_now());
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status) {
        on_status(p, m, status);
        jl_msg_free(m);
        return;
    }
    on_user_msg(p, m);
}

static void on_no_responders(jl_pull *p)
{
    rt_pull_verdict v;
    rt_pull_on_no_responders(&p->w, jl_pull_now(), &v);
    act(p, &v, NULL);
    if (v.act == RT_PA_BACKOFF)
        ask_info(p);                         /* gone for good? then it ends */
}

void jl_pull_drain_sub(jl_pull *p)
{
    while (p->sub && jl_sub_pending(p->sub) > 0) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, p->sub, 0);
        if (s == NATS_OK)
            on_inbound(p, m);
        else if (s == NATS_NO_RESPONDERS)
            on_no_responders(p);
        else if (s == NATS_SLOW_CONSUMER)
            continue;
        else
            break;                  /* NATS_TIMEOUT: empty; anything else: closed */
        if (p->state == JL_PULL_CLOSED)
            break;
    }
}

void jl_pull_pump(jl_pull *p)
{
    if (p->pumping || p->finalized)
        return;
    p->pumping = 1;
    jl_pull_drain_sub(p);
    jl_cwatch_pump(p->cw);
    jl_pull_dispatch(p);
    jl_pull_wake_next(p, NULL);
    jl_pull_maybe_pull(p);
    jl_pull_gauges(p);
    p->pumping = 0;
    jl_pull_maybe_finalize(p);
}

/* ---- periodic checks: expiry, heartbeats, consumer info, in-progress ---- */

static void on_tick(uv_timer_t *t)
{
    jl_pull *p = t->data;
    uint64_t now = jl_pull_now();
    int connected = p->c->state == JL_CONN_CONNECTED;
    if (p->state == JL_PULL_CLOSED)
        return;
    if (rt_pull_tick(&p->w, now, connected)) {
        char d[128];
        snprintf(d, sizeof d, "no heartbeat from the server for %.1f s", 2 * p->w.rhb_ms / 1000.0);
        if (p->w.mode == RT_PULL_FETCH) {
            jl_pull_fetch_finish(p, "no_heartbeat", d);
            return;
        }
        report(p, "no_heartbeat", d, 0);
        /* is the consumer still there? no pull until the server says (on_info) */
        rt_pull_probe(&p->w, ask_info(p));
    }
    if (p->cw && connected && !jl_cwatch_asking(p->cw) && rt_pull_info_due(&p->w, now))
        ask_info(p);            /* lag gauges, limits, and a consumer deleted while idle */
    jl_pull_keepalive(p, now);
    if (p->state == JL_PULL_ACTIVE)
        jl_pull_pump(p);
}
