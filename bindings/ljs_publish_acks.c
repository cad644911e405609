/*
 * ljs_publish_acks.c - what happens to an async publish after
 * js:publish_async returned (see ljs_publisher.h; the design is in
 * ljs_publish.c): it is sent, or held while the connection is down; its
 * PubAck comes back through the ack subscription; the sweep timer fails or
 * retries it when its ack timeout ends; the connection's events
 * (disconnect, reconnect, close, drain, a refused permission) fail, hold
 * or resend it. Every entry ends in entry_ok or entry_fail, which resolve
 * its future or tell the script otherwise; the coroutines waiting for room
 * in the window or for every ack (ljs_publish_wait.c) are let go as acks
 * arrive.
 */
#include "ljs_publisher.h"
#include "rt_jsack.h"
#include "rt_mem.h"
#include "rt_metrics.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 100

/* jetlua's own metrics (--metrics), shared by every publisher */
static rt_series *m_published, *m_acked, *m_retried, *m_pending;

static void metrics_init(void)
{
    const char *err = NULL;
    if (m_published)
        return;
    m_published = rt_metric("jetlua_js_published_total", RT_COUNTER, "JetStream publishes", "mode=\"async\"",
                            NULL, 0, &err);
    m_acked = rt_metric("jetlua_js_publish_acked_total", RT_COUNTER, "JetStream publishes acknowledged",
                        "mode=\"async\"", NULL, 0, &err);
    m_retried =
        rt_metric_simple("jetlua_js_publish_retried_total", RT_COUNTER, "async publish attempts retried");
    m_pending =
        rt_metric_simple("jetlua_js_publish_pending", RT_GAUGE, "async publishes waiting for their ack");
}

static void count_failure(const char *code)
{
    char labels[128];
    const char *names[] = {"error", "mode"}, *values[] = {code, "async"};
    const char *err = NULL;
    rt_metric_labels(labels, sizeof labels, names, values, 2);
    rt_metric_add(rt_metric("jetlua_js_publish_failed_total", RT_COUNTER,
                            "JetStream publishes that failed for good, by error", labels, NULL, 0, &err),
                  1);
}

static void pa_finish(pa *p);
static int entry_is_fast(const pa *p, pa_entry *e);
static void entry_fail(pa *p, pa_entry *e, const char *code, const char *detail, int err_code, int can_retry);

/* ---- small helpers ---- */

const char *jl_pub_intern(pa *p, const char *s, size_t n)
{
    pa_str *x;
    for (x = p->strs; x; x = x->next)
        if (strncmp(x->s, s, n) == 0 && x->s[n] == '\0')
            return x->s;
    x = rt_xmalloc(sizeof *x + n + 1);
    memcpy(x->s, s, n);
    x->s[n] = '\0';
    x->next = p->strs;
    p->strs = x;
    return x->s;
}

static const char *msg_id_of(pa_entry *e)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(e->msg, "Nats-Msg-Id", &id) != NATS_OK)
        id = NULL;
    return id;
}

void jl_pub_report_unobserved(const char *what, const char *code, const char *detail)
{
    rt_warn("publish_async to %s failed: %s (%s), and the script never looked: no f:wait, f:on or "
            "js:on_publish_error saw it",
            what, code, detail);
    if (RT->exit_code == 0)
        RT->exit_code = 1;
}

/* ---- liveness and the sweep timer ---- */

static void sweep(uv_timer_t *t);

/* After rt_pubq_enter: the first pending entry keeps the process alive
 * and starts the sweep. */
static void pending_started(pa *p)
{
    rt_metric_add(m_pending, 1);
    if (p->q.pending == 1) {
        if (!p->live) {
            p->live = 1;
            rt_ref();
        }
        if (p->sweep)
            uv_timer_start(p->sweep, sweep, SWEEP_MS, SWEEP_MS);
    }
}

/* After rt_pubq_remove. */
static void pending_ended(pa *p)
{
    rt_metric_add(m_pending, -1);
    if (p->q.pending == 0) {
        if (p->sweep)
            uv_timer_stop(p->sweep);
        if (p->live) {
            p->live = 0;
            rt_unref();
        }
    }
}

/* After acks, failures or sends: let waiters go, finish a drain. */
void jl_pub_settle(pa *p)
{
    jl_pub_wake(p, W_SLOT);
    if (p->q.pending == 0) {
        jl_pub_wake(p, W_COMPLETE);
        if (p->draining)
            pa_finish(p);
    }
}

/* ---- resolving entries ---- */

/* The upstream message linked to e hears how its output ended. */
static void upstream_done(pa_entry *e, int ok)
{
    if (!e->up)
        return;
    jl_msg_output_done(e->up, ok);
    luaL_unref(RT->L, LUA_REGISTRYINDEX, e->up_ref);
    e->up = NULL;
}

static void entry_free(pa_entry *e)
{
    upstream_done(e, 0);
    jl_msg_free(e->msg); /* cnats copied it out when it was sent */
    free(e);
}

/* e leaves the lists and the window (it was already removed from the map). */
static void entry_done(pa *p, pa_entry *e)
{
    rt_pubq_remove(&p->q, &e->q);
    pending_ended(p);
}

static void entry_ok(pa *p, pa_entry *e, const rt_puback *a)
{
    pa_fut *f = e->fut;
    entry_done(p, e);
    p->acked++;
    rt_metric_add(m_acked, 1);
    upstream_done(e, 1);
    if (f) {
        f->e = NULL;
        f->seq = a->seq;
        f->duplicate = a->duplicate;
        f->stream = jl_pub_intern(p, a->stream, strlen(a->stream));
        f->domain = a->domain[0] ? jl_pub_intern(p, a->domain, strlen(a->domain)) : NULL;
        jl_future_ok(&f->f);
    }
    entry_free(e);
}

/* Tell js:on_publish_error about a failure nobody else heard of. */
static void tell_on_error(pa *p, pa_entry *e, const char *code, const char *detail, int err_code)
{
    lua_State *L = RT->L;
    int len = natsMsg_GetDataLength(e->msg);
    const char *id = msg_id_of(e);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, natsMsg_GetSubject(e->msg));
    lua_setfield(L, -2, "subject");
    lua_pushlstring(L, natsMsg_GetData(e->msg) ? natsMsg_GetData(e->msg) : "", (size_t)len);
    lua_setfield(L, -2, "data");
    if (id) {
        lua_pushstring(L, id);
        lua_setfield(L, -2, "msg_id");
    }
    lua_pushstring(L, code);
    lua_setfield(L, -2, "error");
    lua_pushstring(L, detail);
    lua_setfield(L, -2, "detail");
    if (err_code) {
        lua_pushinteger(L, err_code);
        lua_setfield(L, -2, "err_code");
    }
    rt_co_spawn(L, 1, "js:on_publish_error callback", NULL, NULL);
}

/* A failure of one attempt. Re-armed or retried (rt_pubq_failed) when
 * allowed, else final: the future, on_publish_error or the log hears it. */
static void entry_fail(pa *p, pa_entry *e, const char *code, const char *detail, int err_code, int can_retry)
{
    pa_fut *f = e->fut;
    int told = 0;
    const char *subj = natsMsg_GetSubject(e->msg);
    const char *id = msg_id_of(e);
    /* Read before the future is resolved: its waiter runs inside
     * jl_future_fail and may call jet.exit, which must not turn a failure
     * the script has just seen into one "never acknowledged". */
    int exiting = RT->exiting;
    rt_pubfacts facts;

    facts.can_retry = can_retry;
    facts.open = p->registered;
    facts.closed = p->c->state == JL_CONN_CLOSED;
    facts.in_buffer = can_retry && e->q.where == RT_PUBENT_SENT && e->q.wepoch &&
                      jl_conn_wbuffered(p->c, e->q.wepoch, e->q.wend);
    switch (rt_pubq_failed(&p->q, &e->q, code, &facts, rt_mono_ms(), p->retry_delay_ms)) {
    case RT_PUB_REARM:
        p->held_in_buffer++;
        rt_debug("publish_async to '%s'%s%s: no PubAck yet, still in the write buffer; waiting "
                 "(%d retries left)",
                 subj, id ? " msg_id " : "", id ? id : "", e->q.tries_left);
        return;
    case RT_PUB_RETRY:
        p->retried++;
        rt_metric_add(m_retried, 1);
        rt_debug("publish_async to '%s'%s%s: %s, retrying (%d retries left)", subj, id ? " msg_id " : "",
                 id ? id : "", code, e->q.tries_left);
        return;
    default: break;
    }
    rt_map_del(&p->map, e->q.token);
    entry_done(p, e);
    p->failed++;
    count_failure(code);
    if (e->up) {
        told = 1; /* the upstream message is nak'd: nothing is lost */
        rt_warn("publish_async to '%s'%s%s failed: %s (%s); its input message is nak'd and comes back", subj,
                id ? " msg_id " : "", id ? id : "", code, detail);
        upstream_done(e, 0);
        if (f)
            f->observed = 1;
    }
    if (f) {
        f->e = NULL;
        told = jl_future_fail(&f->f, code, detail, err_code) || told;
    }
    if (!told && p->err_ref != LUA_NOREF) {
        told = 1;
        tell_on_error(p, e, code, detail, err_code);
    }
    if (exiting) {
        p->unacked_at_exit++;
        rt_error("publish_async to '%s' (msg_id %s) was never acknowledged: %s (%s)", subj, id ? id : "none",
                 code, detail);
        if (RT->exit_code == 0)
            RT->exit_code = 1;
    } else if (!told) {
        char what[512];
        snprintf(what, sizeof what, "'%s' (msg_id %s)", subj, id ? id : "none");
        if (f)
            f->what = rt_xstrdup(what); /* the script may still wait on it: judge at collection */
        else
            jl_pub_report_unobserved(what, code, detail);
    }
    entry_free(e);
}

/* ---- sending ---- */

/* Put e on the wire (or hold it while the connection is down). */
static void send_entry(pa *p, pa_entry *e)
{
    natsStatus s;
    uint64_t now = rt_mono_ms();

    if (p->c->state != JL_CONN_CONNECTED && p->c->state != JL_CONN_DRAINING) {
        if (e->q.where != RT_PUBENT_HELD)
            rt_pubq_hold(&p->q, &e->q, now, 0);
        return;
    }
    rt_pubq_sent(&p->q, &e->q, now);
    s = natsConnection_PublishMsg(p->c->nc, e->msg);
    if (s == NATS_INSUFFICIENT_BUFFER) {
        /* cnats is already reconnecting (our disconnected event is on its
         * way) and its reconnect buffer is full: hold it, send on reconnect */
        rt_pubq_hold(&p->q, &e->q, now, 0);
        return;
    }
    if (s != NATS_OK) {
        const char *last = jl_last_error();
        char detail[300];
        snprintf(detail, sizeof detail, "%s%s%s", natsStatus_GetText(s), last && *last ? ": " : "",
                 last ? last : "");
        entry_fail(p, e, jl_status_code(s), detail, 0, 0);
        return;
    }
    e->q.wepoch = p->c->wt.epoch;
    e->q.wend = jl_conn_wpos(p->c);
    jl_conn_write_some(p->c, e->q.size);
}

void jl_pub_enter(pa *p, pa_entry *e)
{
    p->published++;
    rt_metric_add(m_published, 1);
    pending_started(p);
    send_entry(p, e);
}

static void send_held(pa *p, uint64_t now)
{
    rt_pubent *q = p->q.held;
    while (q && (p->c->state == JL_CONN_CONNECTED || p->c->state == JL_CONN_DRAINING)) {
        rt_pubent *next = q->next;
        if (rt_pubq_ready(q, now))
            send_entry(p, (pa_entry *)q);
        q = next;
    }
}

static void sweep(uv_timer_t *t)
{
    pa *p = t->data;
    uint64_t now = rt_mono_ms();
    rt_pubent *q;
    int before = p->q.pending;

    while ((q = rt_pubq_expired(&p->q, now)) != NULL) {
        int in_buffer = q->wepoch && jl_conn_wbuffered(p->c, q->wepoch, q->wend);
        if (p->anon_503 > 0 && !in_buffer && entry_is_fast(p, (pa_entry *)q)) {
            p->anon_503--;
            entry_fail(p, (pa_entry *)q, "no_responders",
                       "no stream answered (a 503 status came back; the stream is gone or has no leader)", 0,
                       1);
            continue;
        }
        entry_fail(p, (pa_entry *)q, "timeout", rt_pubq_timeout_text(q, in_buffer), 0, 1);
    }
    if (p->q.pending == 0)
        p->anon_503 = 0; /* 503s of entries that ended otherwise */
    for (q = p->q.held; q;) {
        rt_pubent *next = q->next;
        if (rt_pubq_held_expired(q, now))
            entry_fail(p, (pa_entry *)q, "timeout", rt_pubq_timeout_text(q, 0), 0, 1);
        q = next;
    }
    send_held(p, now);
    if (p->q.pending < before || p->q.pending == 0)
        jl_pub_settle(p);
}

/* ---- the ack path ---- */

/* The token of a reply subject of p ("<prefix><token>" or
 * "<prefix>s.<token>"), or 0. */
static uint64_t reply_token(const pa *p, const char *subj)
{
    const char *t;
    if (!subj || strncmp(subj, p->prefix, p->prefix_len) != 0)
        return 0;
    t = subj + p->prefix_len;
    if (t[0] == 's' && t[1] == '.')
        t += 2;
    return strtoull(t, NULL, 10);
}

static int entry_is_fast(const pa *p, pa_entry *e)
{
    return natsMsg_GetReply(e->msg)[p->prefix_len] != 's';
}

/* FNV-1a; never 0 (the map's empty key). */
static uint64_t subject_key(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* A subject is known once a PubAck came back for it. The set is bounded:
 * a publisher of ever new subjects (ids in them) keeps the slow path. */
enum { KNOWN_MAX = 4096 };

int jl_pub_fast(pa *p, const char *subj, size_t len)
{
    return rt_prefixes_match(&p->fastpre, subj, len) ||
           (p->known.n > 0 && rt_map_get(&p->known, subject_key(subj, len)) != NULL);
}

int jl_pub_fast_prefix(pa *p, const char *prefix, size_t len)
{
    return rt_prefixes_add(&p->fastpre, prefix, len);
}

static void learn_subject(pa *p, pa_entry *e)
{
    const char *subj = natsMsg_GetSubject(e->msg);
    size_t len = strlen(subj);
    rt_prefixes_seen(&p->fastpre, subj, len); /* its stream answers again */
    if (p->known.n >= KNOWN_MAX) {
        rt_map_free(&p->known);
        rt_map_init(&p->known, 16);
    }
    rt_map_put(&p->known, subject_key(subj, len), p);
}

static void handle_ack(pa *p, natsMsg *m)
{
    const char *d;
    uint64_t tok = reply_token(p, natsMsg_GetSubject(m));
    pa_entry *e;
    rt_puback a;

    if (!tok)
        return;
    e = rt_map_get(&p->map, tok);
    if (!e)
        return; /* a late ack: the entry timed out or failed */
    if (natsMsg_IsNoResponders(m)) {
        entry_fail(p, e, "no_responders", "no stream is listening on this subject", 0, 1);
        return;
    }
    d = natsMsg_GetData(m);
    switch (rt_puback_parse(d, d ? (size_t)natsMsg_GetDataLength(m) : 0, &a)) {
    case RT_PUBACK_ERROR: {
        char code[64] = "api_error", text[512];
        snprintf(text, sizeof text, "%s (err_code %d)", a.description, a.err_code);
        lua_rawgeti(RT->L, LUA_REGISTRYINDEX, p->codes_ref);
        lua_rawgeti(RT->L, -1, a.err_code);
        if (lua_type(RT->L, -1) == LUA_TSTRING)
            snprintf(code, sizeof code, "%s", lua_tostring(RT->L, -1));
        lua_pop(RT->L, 2);
        /* the future's code must outlive this call: intern it */
        entry_fail(p, e, jl_pub_intern(p, code, strlen(code)), text, a.err_code, 0);
        return;
    }
    case RT_PUBACK_BAD: entry_fail(p, e, "bad_response", d ? d : "", 0, 0); return;
    default:
        rt_map_del(&p->map, tok);
        if (!entry_is_fast(p, e))
            learn_subject(p, e);
        entry_ok(p, e, &a);
    }
}

/* Loop thread: one PubAck (or status) from cnats' delivery thread. */
static void pa_deliver(void *a, void *b)
{
    pa *p = a;
    natsMsg *m = b;
    int before = p->q.pending;
    if (!p->finished)
        handle_ack(p, m);
    jl_msg_free(m);
    if (p->q.pending < before)
        jl_pub_settle(p);
}

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    if (rt_post_try(pa_deliver, closure, m) != 0)
        natsMsg_Destroy(m);
}

/* 503s on the fast path: cnats hid which publishes they answer. Forget
 * every subject (what follows takes the slow path, where a 503 names its
 * message); the sweep fails that many fast entries as no_responders. */
static void fast_503(pa *p, int n)
{
    p->anon_503 += (uint64_t)n;
    rt_map_free(&p->known);
    rt_map_init(&p->known, 16);
    rt_prefixes_off(&p->fastpre);
}

/* One PubAck of the fast path; stop once the publisher finished. */
static int fast_ack(void *arg, natsMsg *m)
{
    pa *p = arg;
    p->fast_acks++;
    handle_ack(p, m);
    jl_msg_free(m);
    return p->finished;
}

/* Loop thread, after each read event: the PubAcks of the fast path. */
static void pa_after_read(jl_client *k)
{
    pa *p = (pa *)k;
    int before = p->q.pending, n503;

    p->refs++; /* a resumed coroutine may drop the others */
    n503 = p->finished ? 0 : jl_fast_sub_drain(&p->fast, fast_ack, p);
    if (n503)
        fast_503(p, n503);
    if (p->q.pending < before)
        jl_pub_settle(p);
    jl_pub_release(p);
}

/* ---- the connection's client ---- */

static void leave(pa *p)
{
    jl_conn_client_remove(p->c, &p->client);
    jl_pub_release(p);
}

/* Loop thread: cnats will deliver nothing more on the ack subscription. */
static void pa_sub_complete(void *a, void *b)
{
    pa *p = a;
    natsSubscription_Destroy(p->sub);
    p->sub = NULL;
    p->sub_done = 1;
    if (p->finished)
        leave(p);
}

static void on_sub_complete(void *closure)
{
    rt_post(pa_sub_complete, closure, NULL);
}

/* Fail every entry of a list (collected first: a failure may re-queue an
 * entry in the held list). */
static void fail_all(pa *p, rt_pubent *head, const char *code, const char *detail, int can_retry)
{
    rt_pubent *q, **v;
    int n = 0, i = 0;
    for (q = head; q; q = q->next)
        n++;
    if (n == 0)
        return;
    v = rt_xmalloc((size_t)n * sizeof *v);
    for (q = head; q; q = q->next)
        v[i++] = q;
    for (i = 0; i < n; i++)
        entry_fail(p, (pa_entry *)v[i], code, detail, 0, can_retry);
    free(v);
}

static void pa_event(jl_client *k, int ev)
{
    pa *p = (pa *)k;
    if (ev == JL_EV_DISCONNECTED) {
        /* acks of what is in flight are lost with the connection (as nats.go) */
        fail_all(p, p->q.sent, "disconnected", "the connection was lost before the PubAck", 1);
        p->anon_503 = 0;
    } else if (ev == JL_EV_RECONNECTED) {
        send_held(p, rt_mono_ms());
    } else if (ev == JL_EV_CLOSED) {
        fail_all(p, p->q.sent, "closed", "the connection closed before the PubAck", 0);
        fail_all(p, p->q.held, "closed", "the connection closed before the message was sent", 0);
        pa_finish(p);
        return;
    } else {
        return;
    }
    jl_pub_settle(p);
}

/* The server refused a publish (lperm.c): fail what it names at once,
 * instead of at its ack timeout, and never retry it. */
static void pa_denied(jl_client *k, const rt_perm *perm, const char *text)
{
    pa *p = (pa *)k;
    int before = p->q.pending;
    if (perm->op == RT_PERM_REPLY) {
        pa_entry *e;
        uint64_t tok = reply_token(p, perm->subject);
        if (!tok)
            return;
        e = rt_map_get(&p->map, tok);
        if (e && e->q.where != RT_PUBENT_HELD)
            entry_fail(p, e, "permission_denied", text, 0, 0);
    } else {
        rt_pubent *q, **v;
        int n = 0, i = 0;
        for (q = p->q.sent; q; q = q->next)
            n += rt_perm_matches(perm, natsMsg_GetSubject(((pa_entry *)q)->msg));
        if (n == 0)
            return;
        v = rt_xmalloc((size_t)n * sizeof *v);
        for (q = p->q.sent; q && i < n; q = q->next)
            if (rt_perm_matches(perm, natsMsg_GetSubject(((pa_entry *)q)->msg)))
                v[i++] = q;
        for (i = 0; i < n; i++)
            entry_fail(p, (pa_entry *)v[i], "permission_denied", text, 0, 0);
        free(v);
    }
    if (p->q.pending < before)
        jl_pub_settle(p);
}

/* The connection drains: wait for every pending ack, then let it close. */
static void pa_drain(jl_client *k)
{
    pa *p = (pa *)k;
    if (p->draining)
        return;
    p->draining = 1;
    if (p->q.pending == 0)
        pa_finish(p);
    else
        rt_info("waiting for %d pending async publish ack(s)", p->q.pending);
}

/* The fast subscription is synchronous: nothing arrives once it is
 * unsubscribed, so it ends at once. */
static void end_fast(pa *p)
{
    if (!p->fast)
        return;
    natsSubscription_Unsubscribe(p->fast);
    natsSubscription_Destroy(p->fast);
    p->fast = NULL;
}

/* Stop: fail what is left, end the ack subscription; the connection is
 * left once cnats completed it (no late delivery can then find us gone). */
static void pa_finish(pa *p)
{
    if (!p->registered)
        return;
    p->registered = 0;
    if (p->q.pending > 0) { /* not reached through CLOSED: fail what is left */
        fail_all(p, p->q.sent, "closed", "the publisher stopped before the PubAck", 0);
        fail_all(p, p->q.held, "closed", "the publisher stopped before the message was sent", 0);
    }
    if (p->unacked_at_exit)
        rt_error("%llu async publish(es) were never acknowledged", (unsigned long long)p->unacked_at_exit);
    jl_pub_wake(p, W_SLOT);
    jl_pub_wake(p, W_COMPLETE);
    rt_timer_free(&p->sweep);
    p->finished = 1;
    end_fast(p);
    if (p->sub_done)
        leave(p);
    else if (natsSubscription_Unsubscribe(p->sub) != NATS_OK)
        rt_debug("publish_async: the ack subscription was already closed");
}

int jl_pub_start(pa *p)
{
    char subj[96];
    metrics_init();
    snprintf(subj, sizeof subj, "%s*", p->prefix);
    if (natsConnection_SubscribeSync(&p->fast, p->c->nc, subj) != NATS_OK)
        return -1;
    natsSubscription_SetPendingLimits(p->fast, -1, -1);
    snprintf(subj, sizeof subj, "%ss.*", p->prefix);
    if (natsConnection_Subscribe(&p->sub, p->c->nc, subj, on_ack, p) != NATS_OK) {
        end_fast(p);
        return -1;
    }
    natsSubscription_SetPendingLimits(p->sub, -1, -1);
    natsSubscription_SetOnCompleteCB(p->sub, on_sub_complete, p);
    p->sweep = rt_timer_alloc(p);
    uv_unref((uv_handle_t *)p->sweep);
    p->client.after_read = pa_after_read;
    p->client.event = pa_event;
    p->client.drain = pa_drain;
    p->client.denied = pa_denied;
    jl_conn_retain(p->c);
    jl_conn_client_add(p->c, &p->client);
    p->registered = 1;
    return 0;
}

void jl_pub_release(pa *p)
{
    lua_State *L = RT->L;
    if (--p->refs > 0)
        return;
    if (L) {
        luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, p->codes_ref);
    }
    while (p->strs) {
        pa_str *x = p->strs;
        p->strs = x->next;
        free(x);
    }
    rt_timer_free(&p->sweep);
    end_fast(p);
    rt_map_free(&p->map);
    rt_map_free(&p->known);
    jl_conn_release(p->c);
    free(p);
}
