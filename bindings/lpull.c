/*
 * lpull.c - the pull-consumer engine behind js:consume, js:messages and
 * js:fetch (the Lua side, which checks arguments and the consumer, is in
 * jetlua/js.lua). cnats 3.4.1 has no non-blocking pull, so this is ours.
 *
 * One engine = one synchronous cnats subscription on "_INBOX.<nuid>.*".
 * Every pull request gets its own reply "<prefix><id>", so a status tells
 * which request it ends (user messages carry the stream subject instead).
 * Like core subscriptions (lsub.c), the subscription is pumped on the loop
 * thread right after each socket read: no cnats delivery thread, no hop.
 * Everything that arrives is moved at once into our own FIFO so statuses
 * and heartbeats are seen even while handlers are slow.
 *
 * Accounting (PROTOCOL.md §1-2, DESIGN.md "Measured facts"):
 *   held = outstanding (asked, not arrived) + buffered + running handlers
 * stays <= max_messages (and the bytes likewise with max_bytes), so memory
 * is bounded. When held drops to the refill threshold (half by default) one
 * pull asks for the difference: few, large requests, which is what the
 * server is fastest with. Each request is tracked with its expiry, because
 * nats-server 2.9.10 can drop an expired request without a 408.
 *
 * Statuses: 100 heartbeat (liveness); 404/408 and 409 MaxBytes end a
 * request (its pending headers are subtracted); 409 Leadership Change
 * resets and re-pulls; 400, 409 Consumer Deleted and push-based are
 * terminal; 503 (no responders) and 409 Exceeded* back off 1 s doubling to
 * 30 s, reset by the next message. Two heartbeat intervals of silence while
 * a request is out are reported and reset the accounting; a reconnect does
 * too (pulls do not survive it), and consume goes on.
 *
 * Modes: consume (a handler per message in a pooled coroutine, at most
 * `concurrency` at once, auto ack: return -> +ACK, raise -> -NAK), messages
 * (an iterator: next() hands buffered messages out), fetch (one request,
 * the messages come back as a list).
 *
 * Ending: stop() stops pulling, naks what is buffered (other consumers get it
 * at once) and unsubscribes; handlers already running finish. drain() stops
 * pulling, keeps receiving what the server already sent (UNSUB, then a flush
 * round trip proves nothing more comes) and finishes it all. Terminal errors
 * and shutdown stop; a closed connection just ends.
 *
 * Lifetime: the engine holds a registry ref on its userdata until it is
 * finalized (closed, no handler running, subscription gone); __gc frees it.
 */
#include "jl.h"
#include "lconn.h"
#include "lpull_watch.h"
#include "rt_health.h"
#include "rt_metrics.h"
#include "rt_pullrules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_MT "jetlua.pull"
#define MAX_REQS 16
#define EXPIRY_GRACE_MS 1000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define INFO_PERIOD_MS 10000    /* consumer info: lag gauges, limits, and a deleted consumer noticed */
#define INFO_TIMEOUT_MS 5000

enum { M_CONSUME = 0, M_ITER, M_FETCH };
enum { S_ACTIVE = 0, S_DRAINING, S_STOPPING, S_CLOSED };

typedef struct pc pc;

typedef struct preq {
    uint64_t id;
    int64_t  left;        /* messages still owed (estimate: arrivals are not labelled) */
    int64_t  bytes;       /* max_bytes asked (0: none) */
    uint64_t deadline;    /* mono ms when it expires at the server (0: never) */
} preq;

typedef struct pslot {
    pc       *p;
    lmsg     *u;
    int       idx;        /* index in the slots table */
    int       busy;
    uint64_t  last_wpi;   /* mono ms: start, or the last automatic +WPI */
    uint64_t  started_ns;
} pslot;

struct pc {
    jl_client  client;    /* first: the connection calls us through it */
    jl_conn   *c;
    natsSubscription *sub;
    char       prefix[64];
    size_t     prefix_len;
    char      *next_subj; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> */
    char       what[192]; /* "consumer ORDERS/worker", for logs */
    char       where[200];/* "handler failed on ORDERS/worker": the key of repeated errors */
    int        mode, state;
    /* options */
    int64_t    max_msgs, max_bytes, thr_msgs, thr_bytes;
    uint64_t   ack_wait_ms;  /* the consumer's: bounds the window for slow handlers */
    double     handler_us;   /* moving average of a handler's run time */
    int64_t    ramp;         /* slow start: +1 per handled message (doubles per window) up to max */
    uint64_t   expires_ms, hb_ms, wpi_ms, tick_ms;
    /* the consumer's request limits (0: none) and what a request then carries */
    int64_t    lim_batch, lim_bytes;
    uint64_t   lim_expires_ms, rexp_ms, rhb_ms;
    int        concurrency, auto_ack, no_wait;
    int        handler_ref, err_ref, self_ref;
    /* requests out */
    preq       reqs[MAX_REQS];
    int        nreqs;
    uint64_t   next_id;
    int64_t    out_msgs, out_bytes;
    /* buffered messages: a ring of natsMsg* */
    natsMsg  **q;
    int        qhead, qlen, qcap;
    int64_t    qbytes;
    int        running;
    pslot    **slots;
    int        nslots;
    int        pumping, dispatching;
    /* liveness */
    uint64_t   last_in;
    int        missed_streak;
    uint64_t   backoff_until;
    uint32_t   backoff_ms;
    uv_timer_t *tick;
    uv_timer_t *wait_timer;
    uv_timer_t *backoff_timer; /* pulls again when a back-off ends */
    int        live;      /* holds rt_ref (consume) */
    int        registered;
    int        finalized, collected;
    int        flushing;  /* a drain flush runs on a worker: do not free */
    rt_hook    hook;
    /* waiters */
    rt_co     *next_co;   /* it:next() or fetch */
    rt_co     *drain_co;
    int        fetch_n, fetch_got, fetch_done;
    const char *end_code; /* fetch: the error that ended it */
    char       end_detail[200];
    const char *term_code;/* consume/messages: the terminal error, for it:next() */
    char       term_detail[200];
    /* what the server says about the consumer (lpull_watch.c) */
    jl_cwatch *cw;
    int        probe_hb;  /* info asked after missed heartbeats (2: the first of a streak):
                             no pull until it answers */
    uint64_t   last_info;
    int64_t    num_pending, num_ack_pending;
    jl_ackstats *st;
    /* per-consumer metrics (NULL for fetch) */
    rt_series *mc_delivered, *mc_redelivered, *mc_errors, *mc_buffered, *mc_in_flight;
    rt_series *mc_seconds, *mc_pending, *mc_ack_pending, *mc_max_deliveries;
    rt_health *health;    /* /readyz: consume and messages, until the script ends it */
    /* stats */
    uint64_t   delivered, pulls, hb_missed, errors, handler_errors, redelivered, max_deliveries;
};

typedef struct { pc *p; } pull_ud;

static rt_series *m_delivered, *m_redelivered, *m_handler_errors;

static void pump(pc *p);
static void dispatch(pc *p);
static void maybe_pull(pc *p);
static void close_engine(pc *p, int nak, const char *code);
static void maybe_finalize(pc *p);
static void fetch_finish(pc *p, const char *code, const char *detail);
static void wake_next(pc *p, const char *code);

static void metrics_init(void)
{
    if (m_delivered)
        return;
    m_delivered = rt_metric_simple("jetlua_js_delivered_total", RT_COUNTER,
                                   "JetStream messages received by pull consumers");
    m_redelivered = rt_metric_simple("jetlua_js_redelivered_total", RT_COUNTER,
                                     "JetStream messages received again (num_delivered > 1)");
    m_handler_errors = rt_metric_simple("jetlua_handler_errors_total", RT_COUNTER,
                                        "handlers that raised an error");
}

/* Per-consumer series, labelled {stream=, consumer=} from the pull subject
 * "...CONSUMER.MSG.NEXT.<stream>.<consumer>". */
static rt_series *series(const char *name, int type, const char *help, const char *labels)
{
    const char *err = NULL;
    return rt_metric(name, type, help, labels, NULL, 0, &err);
}

static void consumer_metrics(pc *p)
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

static void gauges(pc *p)
{
    rt_metric_set(p->mc_buffered, p->qlen);
    rt_metric_set(p->mc_in_flight, p->running);
}

/* ---- the ring of buffered messages ---- */

static void q_push(pc *p, natsMsg *m)
{
    if (p->qlen == p->qcap) {
        int ncap = p->qcap ? p->qcap * 2 : 64;
        natsMsg **nq = malloc(sizeof *nq * (size_t)ncap);
        for (int i = 0; i < p->qlen; i++)
            nq[i] = p->q[(p->qhead + i) % p->qcap];
        free(p->q);
        p->q = nq;
        p->qcap = ncap;
        p->qhead = 0;
    }
    p->q[(p->qhead + p->qlen) % p->qcap] = m;
    p->qlen++;
}

static int64_t msg_size(natsMsg *m);

static natsMsg *q_pop(pc *p)
{
    natsMsg *m;
    if (p->qlen == 0)
        return NULL;
    m = p->q[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    if (p->max_bytes > 0)
        p->qbytes -= msg_size(m);
    return m;
}

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

/* ---- requests ---- */

/* The loop's cached clock (ms, monotonic, updated once per iteration): a
 * clock_gettime per message showed up at 5 % of a consume profile. */
static uint64_t now_ms(void) { return uv_now(RT->loop); }

static void req_remove(pc *p, int i)
{
    int64_t left = p->reqs[i].left > 0 ? p->reqs[i].left : 0;
    p->out_msgs -= left;
    if (p->out_msgs < 0 || p->nreqs == 1)
        p->out_msgs = p->nreqs == 1 ? 0 : (p->out_msgs < 0 ? 0 : p->out_msgs);
    if (p->reqs[i].bytes > 0) {
        p->out_bytes -= p->reqs[i].bytes;
        if (p->out_bytes < 0 || p->nreqs == 1)
            p->out_bytes = 0;
    }
    memmove(&p->reqs[i], &p->reqs[i + 1], sizeof p->reqs[0] * (size_t)(p->nreqs - i - 1));
    p->nreqs--;
}

static void reqs_reset(pc *p)
{
    p->nreqs = 0;
    p->out_msgs = 0;
    p->out_bytes = 0;
}

static int req_find(pc *p, uint64_t id)
{
    for (int i = 0; i < p->nreqs; i++)
        if (p->reqs[i].id == id)
            return i;
    return -1;
}

static int send_pull(pc *p, int64_t batch, int64_t bytes)
{
    char reply[96], body[256];
    int n;
    preq *r;
    if (p->nreqs == MAX_REQS || batch <= 0)
        return -1;
    r = &p->reqs[p->nreqs];
    r->id = ++p->next_id;
    r->left = batch;
    r->bytes = bytes;
    r->deadline = p->rexp_ms ? now_ms() + p->rexp_ms : 0;
    snprintf(reply, sizeof reply, "%s%llu", p->prefix, (unsigned long long)r->id);
    n = snprintf(body, sizeof body, "{\"batch\":%lld", (long long)batch);
    if (p->rexp_ms)
        n += snprintf(body + n, sizeof body - (size_t)n, ",\"expires\":%llu",
                      (unsigned long long)p->rexp_ms * 1000000ULL);
    if (bytes > 0)
        n += snprintf(body + n, sizeof body - (size_t)n, ",\"max_bytes\":%lld", (long long)bytes);
    if (p->rhb_ms)
        n += snprintf(body + n, sizeof body - (size_t)n, ",\"idle_heartbeat\":%llu",
                      (unsigned long long)p->rhb_ms * 1000000ULL);
    if (p->no_wait)
        n += snprintf(body + n, sizeof body - (size_t)n, ",\"no_wait\":true");
    n += snprintf(body + n, sizeof body - (size_t)n, "}");
    if (natsConnection_PublishRequest(p->c->nc, p->next_subj, reply, body, n) != NATS_OK)
        return -1;
    if (p->nreqs == 0)
        p->last_in = now_ms();      /* the heartbeat clock starts with the first request out */
    p->nreqs++;
    p->out_msgs += batch;
    p->out_bytes += bytes;
    p->pulls++;
    return 0;
}

/* The window for consume: max_messages, but no more than running handlers
 * get through in half the consumer's ack_wait at their measured pace, so
 * buffered messages never sit until they are redelivered (nats.go #1929). */
static int64_t window(pc *p)
{
    int64_t w = p->max_msgs;
    if (p->mode != M_CONSUME)
        return w;
    if (p->ramp < w)
        w = p->ramp;
    if (p->handler_us > 0 && p->ack_wait_ms) {
        double fit = (double)p->ack_wait_ms * 1000.0 / 2.0 / p->handler_us * p->concurrency;
        if (fit < (double)w)
            w = fit < p->concurrency ? p->concurrency : (int64_t)fit;
    }
    return w;
}

/* Ask for n messages (and bytes, 0: none) in one request, or in several
 * when the consumer caps a request's batch or max_bytes. */
static void pull_within_limits(pc *p, int64_t n, int64_t bytes)
{
    int64_t cap_n = p->lim_batch > 0 ? p->lim_batch : n;
    int64_t k = 1;
    if (bytes > 0 && p->lim_bytes > 0 && bytes > p->lim_bytes) {
        k = (bytes + p->lim_bytes - 1) / p->lim_bytes;   /* requests the bytes need */
        if (k > MAX_REQS - p->nreqs)
            k = MAX_REQS - p->nreqs;
        if (k < 1)
            k = 1;
    }
    if (bytes > 0 && n / k < cap_n)
        cap_n = (n + k - 1) / k;             /* spread the count over the byte-capped requests */
    while (n > 0 && p->nreqs < MAX_REQS) {
        int64_t b = n < cap_n ? n : cap_n, by = 0;
        if (bytes > 0) {
            by = p->lim_bytes > 0 && bytes > p->lim_bytes ? p->lim_bytes : bytes;
            if (by <= 0)
                break;
        }
        if (send_pull(p, b, by) != 0)
            break;
        n -= b;
        bytes -= by;
    }
}

/* Ask for more when what is held dropped to the threshold. */
static void maybe_pull(pc *p)
{
    int64_t held, w;
    if (p->mode == M_FETCH || p->state != S_ACTIVE || p->c->state != JL_CONN_CONNECTED || !p->sub)
        return;
    if (p->probe_hb)
        return;                              /* heartbeats stopped: the consumer info answers first */
    if (p->backoff_until && now_ms() < p->backoff_until)
        return;
    p->backoff_until = 0;
    held = p->out_msgs + p->qlen + p->running;
    w = window(p);
    if (p->max_bytes > 0) {
        int64_t hb = p->out_bytes + p->qbytes;
        if (hb > p->thr_bytes || held >= w)
            return;
        pull_within_limits(p, w - held, p->max_bytes - hb);
    } else if (held <= (w < p->max_msgs ? w / 2 : p->thr_msgs)) {
        pull_within_limits(p, w - held, 0);
    }
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
static void tell(pc *p, const char *code, const char *detail, int terminal, int count)
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
    e = calloc(1, sizeof *e);
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

static void report(pc *p, const char *code, const char *detail, int terminal)
{
    tell(p, code, detail, terminal, 1);
}

static void on_backoff_end(uv_timer_t *t)
{
    pc *p = t->data;
    p->backoff_until = 0;          /* the timer may fire a hair early by our clock */
    if (p->state == S_ACTIVE)
        pump(p);
}

static void back_off(pc *p, const char *code, const char *detail)
{
    char d[256];
    p->backoff_ms = p->backoff_ms ? (p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2)
                                  : BACKOFF_MIN_MS;
    p->backoff_until = now_ms() + p->backoff_ms;
    if (p->backoff_timer)
        uv_timer_start(p->backoff_timer, on_backoff_end, p->backoff_ms, 0);
    snprintf(d, sizeof d, "%s; next pull in %.0f s", detail, p->backoff_ms / 1000.0);
    report(p, code, d, 0);
}

/* The end: tell the script, stop. nak: buffered messages are nak'd (the
 * consumer still exists) or dropped (it is gone: nothing to ack them to). */
static void terminal(pc *p, const char *code, const char *detail, int nak)
{
    if (p->mode == M_FETCH) {
        fetch_finish(p, code, detail);
        return;
    }
    if (p->state == S_CLOSED || p->state == S_STOPPING)
        return;
    p->term_code = code;
    snprintf(p->term_detail, sizeof p->term_detail, "%s", detail);
    report(p, code, detail, 1);
    rt_health_fail(p->health, "failed: %s (%s)", code, detail);
    close_engine(p, nak, code);
}

/* Ask the server whether the consumer is still there (lpull_watch.c);
 * the answer comes to on_info. */
static int ask_info(pc *p)
{
    return p->cw && p->state == S_ACTIVE && jl_cwatch_ask(p->cw, INFO_TIMEOUT_MS);
}

static void apply_limits(pc *p);

/* The consumer info answered (or failed): a consumer or stream that is gone
 * ends the engine; otherwise the limits and lag are refreshed, and after
 * missed heartbeats pulling starts afresh. */
static void on_info(void *owner, const jl_cinfo *ci)
{
    pc *p = owner;
    int hb = p->probe_hb;
    p->probe_hb = 0;
    p->last_info = now_ms();
    if (p->state == S_CLOSED || p->state == S_STOPPING)
        return;
    if (ci->gone) {
        terminal(p, ci->code, ci->detail, 0);
        return;
    }
    if (!ci->code) {
        p->lim_batch = ci->max_batch > 0 ? ci->max_batch : 0;
        p->lim_bytes = ci->max_bytes > 0 ? ci->max_bytes : 0;
        p->lim_expires_ms = ci->max_expires_ms > 0 ? (uint64_t)ci->max_expires_ms : 0;
        apply_limits(p);
        if (p->ack_wait_ms && ci->ack_wait_ms > 0)
            p->ack_wait_ms = (uint64_t)ci->ack_wait_ms;
        if (ci->num_pending >= 0)
            rt_metric_set(p->mc_pending, (double)(p->num_pending = ci->num_pending));
        if (ci->num_ack_pending >= 0)
            rt_metric_set(p->mc_ack_pending, (double)(p->num_ack_pending = ci->num_ack_pending));
    }
    /* the server answered but sent no heartbeat: our requests are lost */
    if (hb && (!ci->code || hb == 2))
        reqs_reset(p);
    if (p->state == S_ACTIVE)
        pump(p);
}

static void on_max_delivery(void *owner, int64_t seq, int64_t deliveries)
{
    pc *p = owner;
    p->max_deliveries++;
    rt_metric_add(p->mc_max_deliveries, 1);
    rt_warn("%s: stream seq %lld reached max_deliver (%lld deliveries); the server will not deliver it again",
            p->what, (long long)seq, (long long)deliveries);
}

/* ---- inbound ---- */

static void on_user_msg(pc *p, natsMsg *m)
{
    jl_ack_meta am;
    int64_t sz = 0;
    p->missed_streak = 0;
    p->backoff_ms = 0;
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
    if (p->max_bytes > 0)
        sz = msg_size(m);
    if (p->nreqs > 0) {                       /* arrivals are credited to the oldest request */
        preq *r = &p->reqs[0];
        int by_bytes = r->bytes > 0;
        p->out_msgs--;
        r->left--;
        if (by_bytes)
            r->bytes -= sz;
        /* its batch is done (the server forgot it; 2.9.10 sends nothing,
         * even when max_bytes is left), or its bytes are */
        if (r->left <= 0 || (by_bytes && r->bytes <= 0))
            req_remove(p, 0);
        if (p->out_msgs < 0)
            p->out_msgs = 0;
    }
    if (p->max_bytes > 0) {
        p->qbytes += sz;
        p->out_bytes -= sz;
        if (p->out_bytes < 0)
            p->out_bytes = 0;
    }
    q_push(p, m);
    if (p->mode == M_FETCH && ++p->fetch_got >= p->fetch_n)
        fetch_finish(p, NULL, NULL);
}

static int64_t header_num(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) == NATS_OK && v)
        return strtoll(v, NULL, 10);
    return -1;
}

/* A request ended by a status: take what it still owed off the books. */
static void end_request(pc *p, int i, natsMsg *m)
{
    int64_t pm = header_num(m, "Nats-Pending-Messages");
    if (pm >= 0)
        p->reqs[i].left = pm;
    req_remove(p, i);
}

/* A 409 Exceeded MaxRequest*: the consumer's limits changed since we read
 * them. Pull within the limit it names (1 if it names none we can use);
 * only when that does not change anything, back off. */
static int adapt_limit(pc *p, rt_pull_status st, const char *desc)
{
    int64_t v;
    int changed = 0;
    if (rt_pull_limit(st, desc, &v) != 0)
        return 0;
    if (st == RT_PS_LIMIT_BATCH && (p->lim_batch == 0 || v < p->lim_batch))
        p->lim_batch = v, changed = 1;
    else if (st == RT_PS_LIMIT_BYTES && (p->lim_bytes == 0 || v < p->lim_bytes))
        p->lim_bytes = v, changed = 1;
    else if (st == RT_PS_LIMIT_EXPIRES && (p->lim_expires_ms == 0 || (uint64_t)v < p->lim_expires_ms))
        p->lim_expires_ms = (uint64_t)v, changed = 1;
    if (changed) {
        apply_limits(p);
        rt_info("%s: %s; pulling within it", p->what, desc);
    }
    return changed;
}

static void on_status(pc *p, natsMsg *m, const char *status)
{
    const char *desc = "";
    const char *subj = natsMsg_GetSubject(m);
    uint64_t id = 0;
    int code = atoi(status), i = -1;
    char detail[256];
    rt_pull_status st;

    natsMsgHeader_Get(m, "Description", &desc);
    if (!desc)
        desc = "";
    if (strncmp(subj, p->prefix, p->prefix_len) == 0) {
        id = strtoull(subj + p->prefix_len, NULL, 10);
        i = req_find(p, id);
    }
    snprintf(detail, sizeof detail, "%d %s", code, desc);
    st = rt_pull_classify(code, desc);
    if (st == RT_PS_HEARTBEAT)
        return;                                            /* liveness only */
    if (st == RT_PS_BAD_REQUEST || st == RT_PS_DELETED || st == RT_PS_PUSH) {
        terminal(p, st == RT_PS_BAD_REQUEST ? "bad_request" : st == RT_PS_DELETED ? "consumer_deleted" : "push_consumer",
                 detail, st != RT_PS_DELETED);
        return;
    }
    if (st == RT_PS_LEADER_CHANGE) {
        reqs_reset(p);
        if (p->mode == M_FETCH)
            fetch_finish(p, NULL, NULL);
        return;
    }
    if (i < 0)
        return;                                            /* a request we already wrote off */
    if (st == RT_PS_END) {
        end_request(p, i, m);
        if (p->mode == M_FETCH)
            fetch_finish(p, NULL, NULL);
        return;
    }
    if (st == RT_PS_MAX_BYTES) {
        int64_t most = p->lim_bytes > 0 && p->lim_bytes < p->max_bytes ? p->lim_bytes : p->max_bytes;
        int whole = p->reqs[i].bytes > 0 && p->reqs[i].bytes >= most;   /* it got nothing */
        end_request(p, i, m);
        if (p->mode == M_FETCH)
            fetch_finish(p, p->fetch_got == 0 ? "message_too_large" : NULL,
                         "the next message is larger than max_bytes");
        else if (whole && p->qlen == 0 && p->running == 0 && !(p->backoff_until > now_ms()))
            back_off(p, "message_too_large", "the next message is larger than max_bytes; raise max_bytes");
        return;
    }
    end_request(p, i, m);
    if (p->mode == M_FETCH) {
        fetch_finish(p, code == 409 && strstr(desc, "Exceeded") ? "limit_exceeded" : "status", detail);
        return;
    }
    if (st == RT_PS_SHUTDOWN)
        return;                                            /* re-pulled after the reconnect */
    if ((st == RT_PS_LIMIT_BATCH || st == RT_PS_LIMIT_EXPIRES || st == RT_PS_LIMIT_BYTES) && adapt_limit(p, st, desc))
        return;                                            /* pump pulls again, within the limit */
    back_off(p, code == 409 && strstr(desc, "Exceeded") ? "limit_exceeded" : "status", detail);
}

static void on_inbound(pc *p, natsMsg *m)
{
    const char *status = NULL;
    p->last_in = now_ms();
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status) {
        on_status(p, m, status);
        natsMsg_Destroy(m);
        return;
    }
    on_user_msg(p, m);
}

static void on_no_responders(pc *p)
{
    p->last_in = now_ms();
    reqs_reset(p);
    if (p->mode == M_FETCH) {
        fetch_finish(p, "no_responders", "nobody answered the pull (the consumer does not exist, "
                     "or JetStream is unavailable)");
        return;
    }
    back_off(p, "no_responders", "nobody answered the pull (the consumer is gone, or JetStream "
             "is unavailable)");
    ask_info(p);                             /* gone for good? then it ends */
}

/* Move everything cnats queued into our ring. */
static void drain_sub(pc *p)
{
    while (p->sub) {
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
        if (p->state == S_CLOSED)
            break;
    }
}

static void pump(pc *p)
{
    if (p->pumping || p->finalized)
        return;
    p->pumping = 1;
    drain_sub(p);
    jl_cwatch_pump(p->cw);
    dispatch(p);
    wake_next(p, NULL);
    maybe_pull(p);
    gauges(p);
    p->pumping = 0;
    maybe_finalize(p);
}

static void pull_after_read(jl_client *k) { pump((pc *)k); }

/* ---- consume: handlers ----
 *
 * Up to `concurrency` runners, each a pooled coroutine running the Lua loop
 * below: take a buffered message, run the handler under xpcall, report,
 * repeat; a runner ends when nothing is buffered. One coroutine resume per
 * burst instead of one per message. A handler that yields (I/O, sleep)
 * suspends its runner only; the others go on. The handler is fetched per
 * message, so a hot reload's new handler takes the next message. */

static int runner_ref = LUA_NOREF;

/* A handler wrapped by a retry policy (jetlua/retry.lua) catches its own
 * errors, carries out the policy and returns (FAILED, traceback, what it
 * did): `done` counts and logs those like the errors it catches itself. */
static char failed_key;

static const char RUNNER[] =
    "local engine, idx = ...\n"
    "local take, done, traceback = engine._take, engine._done, require('jetlua')._onerror\n"
    "while true do\n"
    "  local msg, handler = take(engine, idx)\n"
    "  if not msg then return end\n"
    "  local ok, err, tb, note = xpcall(handler, traceback, msg)\n"
    "  done(engine, idx, msg, ok, err, tb, note)\n"
    "end\n";

/* engine:_take/_done are the runner's (internal): refuse anything else */
static pslot *slot_arg(lua_State *L, pc *p, const char *fname)
{
    int idx = (int)luaL_checkinteger(L, 2);
    if (p->mode != M_CONSUME)
        luaL_error(L, "%s: not a js:consume handle (internal)", fname);
    if (idx < 1 || idx > p->nslots)
        luaL_error(L, "%s: bad runner slot %d (internal)", fname, idx);
    return p->slots[idx - 1];
}

/* engine:_take(idx) -> msg, handler | nil (the runner ends) */
static int pull_take(lua_State *L)
{
    pc *p = ((pull_ud *)luaL_checkudata(L, 1, PULL_MT))->p;
    pslot *s;
    natsMsg *m;
    if (!p)
        return 0;
    s = slot_arg(L, p, "consumer:_take");
    if (!s->busy || p->qlen == 0 || s->idx > p->concurrency || (p->state != S_ACTIVE && p->state != S_DRAINING))
        return 0;
    m = q_pop(p);
    s->last_wpi = now_ms();
    s->started_ns = uv_hrtime();            /* every run: the handler_seconds histogram */
    s->u = jl_msg_push_ud(L, m, p->c);
    jl_msg_set_stats(s->u, p->st);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->handler_ref);
    if (p->qlen == 0)
        maybe_pull(p);                       /* ask again as soon as there is room */
    return 2;
}

/* A handler failed (raised, or its retry policy handled the error: then
 * note says what the policy did). Count it; without a policy, nak with the
 * default back-off (1 s, 5 s, 15 s, 30 s by delivery) so a poison message
 * does not spin; log it once per window (rt_error_repeat). */
static void handler_failed(lua_State *L, pc *p, pslot *s, const char *err, const char *note)
{
    natsMsg *m = lua_touserdata(L, 3) ? jl_msg_check(L, 3, "consumer:_done") : NULL;
    jl_ack_meta am;
    long seq = 0, nd = 0;
    char line[400], act[96] = "";

    p->handler_errors++;
    rt_metric_add(m_handler_errors, 1);
    rt_metric_add(p->mc_errors, 1);
    if (m && jl_ack_parse(natsMsg_GetReply(m), &am) == 0) {
        seq = strtol(am.f[JL_ACK_STREAM_SEQ], NULL, 10);
        nd = strtol(am.f[JL_ACK_DELIVERED], NULL, 10);
    }
    if (note) {
        snprintf(act, sizeof act, " -> %s", note);
    } else if (s->u && p->auto_ack && !jl_msg_acked(s->u) && p->c->state != JL_CONN_CLOSED) {
        uint64_t ms = rt_pull_redelivery_ms(nd);
        char nak[64];
        snprintf(nak, sizeof nak, "-NAK {\"delay\":%llu}", (unsigned long long)ms * 1000000ULL);
        if (jl_msg_send_ack(s->u, nak) == 0)
            snprintf(act, sizeof act, " -> nak, redelivery in %llu s", (unsigned long long)ms / 1000);
    }
    snprintf(line, sizeof line, "%s seq %ld (delivery %ld)%s", p->where, seq, nd, act);
    rt_error_repeat(p->where, line, err ? err : "(an error that is not a string)");
}

/* engine:_done(idx, msg, ok, err, tb, note): auto ack or nak, counts, refill */
static int pull_done(lua_State *L)
{
    pc *p = ((pull_ud *)luaL_checkudata(L, 1, PULL_MT))->p;
    int ok = lua_toboolean(L, 4);
    pslot *s;
    if (!p)
        return 0;
    s = slot_arg(L, p, "consumer:_done");
    if (!s->busy)
        return 0;
    if (!ok)
        handler_failed(L, p, s, lua_tostring(L, 5), NULL);
    else if (lua_touserdata(L, 5) == &failed_key)
        handler_failed(L, p, s, lua_tostring(L, 6), lua_tostring(L, 7) ? lua_tostring(L, 7) : "handled");
    if (s->started_ns) {
        double us = (double)(uv_hrtime() - s->started_ns) / 1000.0;
        p->handler_us = p->handler_us > 0 ? p->handler_us * 0.9 + us * 0.1 : (us > 0.001 ? us : 0.001);
        rt_metric_observe(p->mc_seconds, us / 1e6);
    }
    if (p->ramp < p->max_msgs)
        p->ramp++;
    /* auto-ack, unless the handler handed the ack to publishes (publish_async{ack = msg}) */
    if (ok && s->u && p->auto_ack && !jl_msg_acked(s->u) && !jl_msg_handed_off(s->u) &&
        p->c->state != JL_CONN_CLOSED)
        jl_msg_send_ack(s->u, "+ACK");
    s->u = NULL;
    if (p->qlen <= 1) {
        maybe_pull(p);
        gauges(p);
    }
    return 0;
}

static void runner_done(rt_co *co, int ok, void *data)
{
    pslot *s = data;
    pc *p = s->p;
    (void)co;
    (void)ok;                                /* handler errors were caught and reported by _done */
    s->busy = 0;
    s->u = NULL;
    p->running--;
    if (!p->dispatching) {
        dispatch(p);
        maybe_pull(p);
        gauges(p);
        maybe_finalize(p);
    }
}

static void dispatch(pc *p)
{
    lua_State *L = RT->L;
    if (p->mode != M_CONSUME || p->dispatching)
        return;
    if (runner_ref == LUA_NOREF) {
        if (luaL_loadbuffer(L, RUNNER, sizeof RUNNER - 1, "=jetlua.consume") != 0) {
            rt_error("consumer runner: %s", lua_tostring(L, -1));
            lua_pop(L, 1);
            return;
        }
        runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    p->dispatching = 1;
    while (p->qlen > 0 && p->running < p->concurrency && (p->state == S_ACTIVE || p->state == S_DRAINING)) {
        pslot *s = NULL;
        for (int i = 0; i < p->concurrency; i++)
            if (!p->slots[i]->busy) {
                s = p->slots[i];
                break;
            }
        s->busy = 1;
        p->running++;
        lua_rawgeti(L, LUA_REGISTRYINDEX, runner_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref);
        lua_pushinteger(L, s->idx);
        rt_co_spawn(L, 2, p->what, runner_done, s);
    }
    p->dispatching = 0;
}

/* ---- the waiter (it:next, fetch) ---- */

static void wait_timer_stop(pc *p)
{
    if (p->wait_timer)
        uv_timer_stop(p->wait_timer);
}

/* Hand one buffered message to the waiting it:next(), or end it. */
static void wake_next(pc *p, const char *code)
{
    rt_co *co = p->next_co;
    lua_State *T;
    if (!co || p->mode != M_ITER)
        return;
    if (p->qlen == 0 && !code)
        return;
    p->next_co = NULL;
    wait_timer_stop(p);
    T = rt_co_prepare(co);
    if (!T)
        return;
    if (p->qlen > 0) {
        lmsg *u = jl_msg_push_ud(T, q_pop(p), p->c);
        jl_msg_set_stats(u, p->st);
        rt_co_resume(co, 1);
        maybe_pull(p);
        return;
    }
    lua_pushnil(T);
    lua_pushstring(T, code);
    if (p->term_code && strcmp(code, p->term_code) == 0) {
        lua_pushstring(T, p->term_detail);
        rt_co_resume(co, 3);
    } else {
        rt_co_resume(co, 2);
    }
}

static void fetch_finish(pc *p, const char *code, const char *detail)
{
    rt_co *co;
    lua_State *T;
    if (p->fetch_done)
        return;
    p->fetch_done = 1;
    p->end_code = code;
    if (detail)
        snprintf(p->end_detail, sizeof p->end_detail, "%s", detail);
    co = p->next_co;
    p->next_co = NULL;
    wait_timer_stop(p);
    close_engine(p, 0, NULL);               /* unsubscribe; the ring is handed over below */
    if (!co || !(T = rt_co_prepare(co)))
        return;
    lua_createtable(T, p->qlen, 0);
    for (int i = 1; p->qlen > 0; i++) {
        lmsg *u = jl_msg_push_ud(T, q_pop(p), p->c);
        jl_msg_set_stats(u, p->st);
        lua_rawseti(T, -2, i);
    }
    if (code) {
        lua_pushstring(T, code);
        lua_pushstring(T, p->end_detail);
        rt_co_resume(co, 3);
    } else {
        rt_co_resume(co, 1);
    }
}

static void on_wait_timer(uv_timer_t *t)
{
    pc *p = t->data;
    if (p->mode == M_FETCH)
        fetch_finish(p, NULL, NULL);        /* expired: what arrived is the answer */
    else
        wake_next(p, "timeout");
}

static void wait_cancel(rt_co *co, void *op)
{
    pc *p = op;
    (void)co;
    if (p->next_co == co) {
        p->next_co = NULL;
        wait_timer_stop(p);
    }
}

/* ---- periodic checks: expiry, heartbeats, back-off, in-progress ---- */

static void on_tick(uv_timer_t *t)
{
    pc *p = t->data;
    uint64_t now = now_ms();
    if (p->state == S_CLOSED)
        return;
    for (int i = 0; i < p->nreqs;) {       /* requests the server forgot (2.9.10) */
        if (p->reqs[i].deadline && now > p->reqs[i].deadline + EXPIRY_GRACE_MS)
            req_remove(p, i);
        else
            i++;
    }
    if (p->rhb_ms && p->nreqs > 0 && now - p->last_in > 2 * p->rhb_ms && p->c->state == JL_CONN_CONNECTED) {
        char d[128];
        int first;
        p->hb_missed++;
        p->last_in = now;
        snprintf(d, sizeof d, "no heartbeat from the server for %.1f s", 2 * p->rhb_ms / 1000.0);
        if (p->mode == M_FETCH) {
            fetch_finish(p, "no_heartbeat", d);
            return;
        }
        report(p, "no_heartbeat", d, 0);
        first = p->missed_streak++ == 0;
        /* is the consumer still there? no pull until the server says (on_info) */
        if (ask_info(p))
            p->probe_hb = first ? 2 : 1;
        else if (first)
            reqs_reset(p);      /* once: pull afresh; then just wait (no pile of requests) */
    }
    if (p->cw && now - p->last_info >= INFO_PERIOD_MS && p->c->state == JL_CONN_CONNECTED &&
        !jl_cwatch_asking(p->cw)) {
        p->last_info = now;
        ask_info(p);            /* lag gauges, limits, and a consumer deleted while idle */
    }
    if (p->wpi_ms && p->mode == M_CONSUME) {
        for (int i = 0; i < p->nslots; i++) {
            pslot *s = p->slots[i];
            if (s->busy && s->u && now - s->last_wpi >= p->wpi_ms && !jl_msg_acked(s->u)) {
                s->last_wpi = now;
                jl_msg_send_ack(s->u, "+WPI");
            }
        }
    }
    if (p->state == S_ACTIVE)
        pump(p);
}

/* ---- ending ---- */

static void close_handle(uv_timer_t **t)
{
    if (*t) {
        uv_close((uv_handle_t *)*t, (uv_close_cb)free);
        *t = NULL;
    }
}

static void unsubscribe(pc *p)
{
    if (p->sub) {
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
        p->sub = NULL;
    }
    jl_cwatch_free(p->cw);                  /* cancels a consumer info request that is out */
    p->cw = NULL;
    p->probe_hb = 0;
    if (p->registered) {
        p->registered = 0;
        jl_conn_client_remove(p->c, &p->client);
    }
}

/* Stop now: no more pulls; buffered messages are nak'd (nak=1) or dropped;
 * running handlers finish. code: what a waiting it:next() gets. */
static void close_engine(pc *p, int nak, const char *code)
{
    if (p->state == S_CLOSED || p->state == S_STOPPING)
        return;
    p->state = S_STOPPING;
    if (p->sub && p->c->state != JL_CONN_CLOSED)
        drain_sub(p);
    unsubscribe(p);
    reqs_reset(p);
    if (p->mode != M_FETCH) {
        int can = nak && p->c->state != JL_CONN_CLOSED;
        natsMsg *m;
        while ((m = q_pop(p)) != NULL) {
            if (can && natsMsg_GetReply(m)) {
                natsConnection_Publish(p->c->nc, natsMsg_GetReply(m), "-NAK", 4);
                if (p->st)
                    p->st->naked++;
            }
            natsMsg_Destroy(m);
        }
        wake_next(p, code ? code : "closed");
    }
    maybe_finalize(p);
}

static void maybe_finalize(pc *p)
{
    lua_State *L = RT->L;
    rt_co *dco;
    if (p->finalized || p->pumping || p->dispatching || p->running > 0 || p->flushing)
        return;
    if (p->state == S_DRAINING && !p->sub && p->qlen == 0 && p->mode == M_CONSUME)
        p->state = S_STOPPING;
    if (p->state == S_DRAINING && !p->sub && p->qlen == 0 && p->mode == M_ITER) {
        /* a drained iterator handed everything out: a waiting next() gets "closed" */
        p->state = S_STOPPING;
        wake_next(p, "closed");
    }
    if (p->state != S_STOPPING)
        return;
    if (p->mode == M_ITER && p->qlen > 0)
        return;                              /* drained messages still to hand out */
    unsubscribe(p);
    p->state = S_CLOSED;
    p->finalized = 1;
    gauges(p);
    close_handle(&p->tick);
    close_handle(&p->wait_timer);
    close_handle(&p->backoff_timer);
    rt_hook_done(&p->hook);
    rt_hook_remove(&p->hook);
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

static void drain_flushed(uv_work_t *w, int status)
{
    pc *p = w->data;
    (void)status;
    free(w);
    if (!p->finalized && p->state == S_DRAINING) {
        drain_sub(p);
        unsubscribe(p);
        dispatch(p);
        wake_next(p, NULL);
    }
    p->flushing = 0;
    maybe_finalize(p);
}

static void drain_flush_work(uv_work_t *w)
{
    pc *p = w->data;
    natsConnection_FlushTimeout(p->c->nc, 5000);
}

/* Stop pulling; finish what arrived and what the server already sent. */
static void start_drain(pc *p)
{
    uv_work_t *w;
    if (p->state != S_ACTIVE)
        return;
    p->state = S_DRAINING;
    reqs_reset(p);
    if (!p->sub || p->c->state != JL_CONN_CONNECTED || natsSubscription_Drain(p->sub) != NATS_OK) {
        drain_sub(p);
        unsubscribe(p);
        dispatch(p);
        maybe_finalize(p);
        return;
    }
    w = calloc(1, sizeof *w);
    w->data = p;
    p->flushing = 1;
    uv_queue_work(RT->loop, w, drain_flush_work, drain_flushed);
}

/* ---- the connection's calls ---- */

static void pull_event(jl_client *k, int ev)
{
    pc *p = (pc *)k;
    if (ev == JL_EV_DISCONNECTED) {
        reqs_reset(p);                      /* pulls do not survive a reconnect */
        if (p->mode == M_FETCH)
            fetch_finish(p, "disconnected", "the connection was lost during the fetch");
    } else if (ev == JL_EV_RECONNECTED) {
        reqs_reset(p);
        p->missed_streak = 0;
        p->probe_hb = 0;                    /* pull now; a late info answer is still heard */
        p->last_in = now_ms();
        if (p->mode != M_FETCH && p->err_ref != LUA_NOREF)
            tell(p, "reconnected", "the connection came back; pulling afresh", 0, 0);
        pump(p);
    } else if (ev == JL_EV_CLOSED) {
        if (p->mode == M_FETCH)
            fetch_finish(p, "closed", "the connection is closed");
        else
            close_engine(p, 0, "closed");
    }
}

static void pull_drain(jl_client *k)
{
    pc *p = (pc *)k;
    if (p->mode == M_FETCH)
        fetch_finish(p, NULL, NULL);
    else
        start_drain(p);
}

/* Shutdown, first phase: stop pulling, nak what is buffered, let running
 * handlers finish (the hook is done when the engine is finalized). */
static void hook_begin(rt_hook *h)
{
    pc *p = h->data;
    if (p->mode == M_FETCH)
        fetch_finish(p, "closed", "shutting down");
    else
        close_engine(p, 1, "closed");
}

/* ---- Lua API ---- */

static pc *check_pc(lua_State *L, const char *fname)
{
    pull_ud *u = luaL_checkudata(L, 1, PULL_MT);
    if (!u->p)
        luaL_error(L, "%s: the consumer is gone", fname);
    return u->p;
}

static double opt_num(lua_State *L, int t, const char *k, double def)
{
    double v;
    lua_getfield(L, t, k);
    v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

/* Options from the table at t (checked by js.lua); also on a reload. */
static void read_options(lua_State *L, pc *p, int t)
{
    p->max_msgs = (int64_t)opt_num(L, t, "max_messages", 4000);
    p->max_bytes = (int64_t)opt_num(L, t, "max_bytes", 0);
    p->thr_msgs = (int64_t)opt_num(L, t, "threshold_messages", (double)(p->max_msgs / 2));
    p->thr_bytes = (int64_t)opt_num(L, t, "threshold_bytes", (double)(p->max_bytes / 2));
    p->expires_ms = (uint64_t)(opt_num(L, t, "expires", 30) * 1000.0);
    p->hb_ms = (uint64_t)(opt_num(L, t, "heartbeat", 0) * 1000.0);
    p->wpi_ms = (uint64_t)(opt_num(L, t, "in_progress", 0) * 1000.0);
    p->ack_wait_ms = (uint64_t)(opt_num(L, t, "ack_wait", 0) * 1000.0);
    /* slow start: until handlers have been timed, do not buffer more than
     * a slow handler could get through before ack_wait */
    if (p->ramp == 0)
        p->ramp = p->concurrency * 4 > 16 ? p->concurrency * 4 : 16;
    p->concurrency = (int)opt_num(L, t, "concurrency", 1);
    p->fetch_n = (int)opt_num(L, t, "batch", 1);
    /* the consumer's request limits, as pull.lua read them (a 409 or a
     * later consumer info updates them) */
    p->lim_batch = (int64_t)opt_num(L, t, "max_request_batch", (double)p->lim_batch);
    p->lim_bytes = (int64_t)opt_num(L, t, "max_request_max_bytes", (double)p->lim_bytes);
    p->lim_expires_ms = (uint64_t)(opt_num(L, t, "max_request_expires", p->lim_expires_ms / 1000.0) * 1000.0);
    lua_getfield(L, t, "auto_ack");
    p->auto_ack = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_getfield(L, t, "no_wait");
    p->no_wait = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (p->concurrency < 1)
        p->concurrency = 1;
    apply_limits(p);
}

/* What a request carries, within the consumer's limits: expires at most
 * max_request_expires, the heartbeat at most half of that (the server
 * refuses more); and how often on_tick checks. */
static void apply_limits(pc *p)
{
    uint64_t exp = p->expires_ms, hb = p->hb_ms, tick;
    if (p->lim_expires_ms && (exp == 0 || exp > p->lim_expires_ms))
        exp = p->lim_expires_ms;
    if (hb && exp && hb > exp / 2)
        hb = exp / 2;
    p->rexp_ms = exp;
    p->rhb_ms = hb;
    tick = hb ? hb / 2 : 1000;
    if (exp && exp / 4 < tick)
        tick = exp / 4;
    if (p->wpi_ms && p->wpi_ms / 2 < tick)
        tick = p->wpi_ms / 2;
    if (tick < 20)
        tick = 20;
    if (tick > 1000)
        tick = 1000;
    if (tick != p->tick_ms && p->tick && !p->finalized)
        uv_timer_start(p->tick, on_tick, tick, tick);
    p->tick_ms = tick;
}

/* Slots are allocated one by one (a running handler holds a pointer to
 * its slot), so a reload can raise the concurrency while handlers run. */
static void grow_slots(pc *p)
{
    if (p->nslots >= p->concurrency)
        return;
    p->slots = realloc(p->slots, sizeof *p->slots * (size_t)p->concurrency);
    for (int i = p->nslots; i < p->concurrency; i++) {
        p->slots[i] = calloc(1, sizeof **p->slots);
        p->slots[i]->p = p;
        p->slots[i]->idx = i + 1;
    }
    p->nslots = p->concurrency;
}

/* jet._js_pull(nc, next_subject, mode, opts, handler|nil, on_error|nil, what)
 * opts (checked by js.lua): max_messages, max_bytes, threshold_messages,
 * threshold_bytes, expires, heartbeat, concurrency, auto_ack, in_progress,
 * no_wait, batch (fetch) */
static int pull_new(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "js:consume");
    const char *subj = luaL_checkstring(L, 2);
    const char *mode = luaL_checkstring(L, 3);
    const char *what = luaL_optstring(L, 7, "consumer");
    char wild[96];
    pull_ud *u;
    pc *p;

    luaL_checktype(L, 4, LUA_TTABLE);
    jl_conn_check_open(L, c, "js:consume");
    metrics_init();
    p = calloc(1, sizeof *p);
    p->c = c;
    jl_conn_retain(c);                       /* for the engine's whole life */
    p->mode = strcmp(mode, "consume") == 0 ? M_CONSUME : strcmp(mode, "messages") == 0 ? M_ITER : M_FETCH;
    p->next_subj = strdup(subj);
    snprintf(p->what, sizeof p->what, "%s", what);
    snprintf(p->where, sizeof p->where, "handler failed on %s", strncmp(what, "consumer ", 9) == 0 ? what + 9 : what);
    p->num_pending = (int64_t)opt_num(L, 4, "num_pending", -1);
    p->num_ack_pending = (int64_t)opt_num(L, 4, "num_ack_pending", -1);
    read_options(L, p, 4);
    p->handler_ref = p->err_ref = p->self_ref = LUA_NOREF;
    if (p->mode == M_CONSUME) {
        lua_pushvalue(L, 5);
        p->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        grow_slots(p);
    }
    if (lua_isfunction(L, 6)) {
        lua_pushvalue(L, 6);
        p->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    p->st = calloc(1, sizeof *p->st);
    p->st->refs = 1;
    if (p->mode != M_FETCH)
        consumer_metrics(p);

    u = lua_newuserdata(L, sizeof *u);
    u->p = p;
    luaL_getmetatable(L, PULL_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    p->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if ((p->prefix_len = jl_inbox_prefix(p->prefix, sizeof p->prefix)) == 0)
        return luaL_error(L, "js:consume: out of memory");
    snprintf(wild, sizeof wild, "%s*", p->prefix);
    if (natsConnection_SubscribeSync(&p->sub, c->nc, wild) != NATS_OK) {
        p->sub = NULL;
        p->state = S_STOPPING;
        maybe_finalize(p);
        return jl_fail(L, "closed", "js:consume: cannot subscribe (is the connection closed?)");
    }
    natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (p->mode != M_FETCH) {
        const char *info, *adv;
        lua_getfield(L, 4, "info_subject");
        lua_getfield(L, 4, "advisory_subject");
        info = lua_tostring(L, -2);
        adv = lua_tostring(L, -1);
        if (info)
            p->cw = jl_cwatch_new(c, info, adv, on_info, on_max_delivery, p);
        lua_pop(L, 2);
        p->last_info = now_ms();            /* pull.lua just read it */
    }
    p->client.after_read = pull_after_read;
    p->client.event = pull_event;
    p->client.drain = pull_drain;
    jl_conn_client_add(c, &p->client);
    p->registered = 1;
    if (p->mode != M_FETCH)
        p->health = rt_health_add(RT_HEALTH_CONSUMER, p->what);
    p->hook.begin = hook_begin;
    p->hook.phase = RT_PHASE_STOP;
    p->hook.data = p;
    rt_hook_add(&p->hook);
    p->tick = malloc(sizeof *p->tick);
    uv_timer_init(RT->loop, p->tick);
    p->tick->data = p;
    uv_unref((uv_handle_t *)p->tick);
    uv_timer_start(p->tick, on_tick, p->tick_ms, p->tick_ms);
    p->wait_timer = malloc(sizeof *p->wait_timer);
    uv_timer_init(RT->loop, p->wait_timer);
    p->wait_timer->data = p;
    uv_unref((uv_handle_t *)p->wait_timer);
    p->backoff_timer = malloc(sizeof *p->backoff_timer);
    uv_timer_init(RT->loop, p->backoff_timer);
    p->backoff_timer->data = p;
    uv_unref((uv_handle_t *)p->backoff_timer);
    if (p->mode == M_CONSUME) {
        p->live = 1;                         /* a consumer keeps the process alive */
        rt_ref();
    }
    if (p->mode == M_FETCH) {
        if (send_pull(p, p->fetch_n, p->max_bytes) != 0) {
            p->fetch_done = 1;
            close_engine(p, 0, NULL);
            return jl_fail(L, "closed", "js:fetch: the connection is not usable");
        }
    } else {
        maybe_pull(p);
    }
    return 1;
}

/* f:fetch() -> list, nil | list, code, detail (fetch mode) */
static int pull_fetch(lua_State *L)
{
    pc *p = check_pc(L, "js:fetch");
    rt_co *co;
    if (p->mode != M_FETCH)
        return luaL_error(L, "consumer:fetch: not a js:fetch request (use js:fetch)");
    co = rt_co_current(L, "js:fetch");
    if (p->fetch_done || !p->wait_timer) {
        lua_newtable(L);
        return 1;
    }
    if (p->next_co)
        return luaL_error(L, "js:fetch: already waiting");
    p->next_co = co;
    uv_timer_start(p->wait_timer, on_wait_timer, p->expires_ms + EXPIRY_GRACE_MS, 0);
    return rt_co_wait(co, wait_cancel, p);
}

/* it:next([timeout]) -> msg | nil, "timeout" | nil, "closed" */
static int pull_next(lua_State *L)
{
    pc *p = check_pc(L, "it:next");
    double timeout = -1;
    rt_co *co;
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) == LUA_TNUMBER) {
        timeout = lua_tonumber(L, 2);
        if (timeout < 0)
            jl_argerror(L, "it:next", "timeout", "must be >= 0 seconds");
    }
    if (p->mode != M_ITER)
        return luaL_error(L, "it:next: not a messages() iterator");
    if (p->qlen > 0) {
        lmsg *u = jl_msg_push_ud(L, q_pop(p), p->c);
        jl_msg_set_stats(u, p->st);
        maybe_pull(p);
        maybe_finalize(p);
        return 1;
    }
    if (p->state == S_CLOSED || p->state == S_STOPPING ||
        (p->state == S_DRAINING && !p->sub && !p->flushing)) {
        if (p->state == S_DRAINING) {
            p->state = S_STOPPING;
            maybe_finalize(p);
        }
        if (p->term_code)
            return jl_fail(L, p->term_code, p->term_detail);
        return jl_fail(L, "closed", "the iterator is closed");
    }
    if (timeout == 0)
        return jl_fail(L, "timeout", "no message buffered");
    co = rt_co_current(L, "it:next");
    if (p->next_co)
        return luaL_error(L, "it:next: another coroutine is already waiting on this iterator");
    p->next_co = co;
    if (timeout > 0 && p->wait_timer)
        uv_timer_start(p->wait_timer, on_wait_timer, (uint64_t)(timeout * 1000.0), 0);
    return rt_co_wait(co, wait_cancel, p);
}

static int pull_call(lua_State *L)
{
    lua_settop(L, 1);                       /* for msg in it do: it(nil, nil) */
    return pull_next(L);
}

static int pull_stop(lua_State *L)
{
    pc *p = check_pc(L, "consumer:stop");
    rt_health_remove(p->health);            /* ended on purpose: no longer counted */
    p->health = NULL;
    close_engine(p, 1, "closed");
    lua_pushboolean(L, 1);
    return 1;
}

static void drain_cancel(rt_co *co, void *op)
{
    pc *p = op;
    if (p->drain_co == co)
        p->drain_co = NULL;
}

/* h:drain(): stop pulling, finish what arrived; yields until done when
 * called from a coroutine */
static int pull_drain_l(lua_State *L)
{
    pc *p = check_pc(L, "consumer:drain");
    rt_co *co = rt_co_lookup(L);
    rt_health_remove(p->health);
    p->health = NULL;
    start_drain(p);
    /* an iterator's buffered messages are handed out by it:next() (likely
     * called by this very coroutine): do not wait for them */
    if (p->finalized || !co || p->drain_co || p->mode == M_ITER) {
        lua_pushboolean(L, 1);
        return 1;
    }
    p->drain_co = co;
    return rt_co_wait(co, drain_cancel, p);
}

/* h:_reconfigure(opts, handler, on_error|nil): a hot reload keeps the
 * consumer and swaps its code and options; running handlers finish on the
 * code that received their message. */
static int pull_reconfigure(lua_State *L)
{
    pc *p = check_pc(L, "consumer:_reconfigure");
    luaL_checktype(L, 2, LUA_TTABLE);
    if (p->mode != M_CONSUME)
        return luaL_error(L, "consumer:_reconfigure: not a consume handle");
    jl_check_function(L, 3, "consumer:_reconfigure", "handler");
    read_options(L, p, 2);
    grow_slots(p);
    luaL_unref(L, LUA_REGISTRYINDEX, p->handler_ref);
    lua_pushvalue(L, 3);
    p->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    p->err_ref = LUA_NOREF;
    if (lua_isfunction(L, 4)) {
        lua_pushvalue(L, 4);
        p->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (p->tick)
        uv_timer_start(p->tick, on_tick, p->tick_ms, p->tick_ms);
    pump(p);
    return 0;
}

/* Ended: finalized, or an iterator stopped with nothing left to hand out
 * (its waiter may be resumed from inside the engine, before finalizing) */
static int ended(pc *p)
{
    return p->finalized || (p->mode == M_ITER && p->state == S_STOPPING && p->qlen == 0);
}

static int pull_closed(lua_State *L)
{
    pc *p = check_pc(L, "consumer:closed");
    lua_pushboolean(L, ended(p));
    return 1;
}

#define SETN(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))

static int pull_stats(lua_State *L)
{
    pc *p = check_pc(L, "consumer:stats");
    uint64_t now = now_ms();
    lua_createtable(L, 0, 16);
    SETN("delivered", p->delivered);
    SETN("acked", p->st->acked);
    SETN("naked", p->st->naked);
    SETN("termed", p->st->termed);
    SETN("in_progress", p->st->in_progress);
    SETN("redelivered", p->redelivered);
    SETN("buffered", p->qlen);
    SETN("in_flight", p->running);
    SETN("outstanding", p->out_msgs);
    SETN("window", window(p));
    SETN("handler_ms", p->handler_us / 1000.0);
    SETN("requests", p->nreqs);
    SETN("pulls", p->pulls);
    SETN("heartbeats_missed", p->hb_missed);
    SETN("errors", p->errors);
    SETN("handler_errors", p->handler_errors);
    SETN("backoff", p->backoff_until > now ? (p->backoff_until - now) / 1000.0 : 0.0);
    SETN("max_deliveries", p->max_deliveries);
    if (p->num_pending >= 0)
        SETN("num_pending", p->num_pending);
    if (p->num_ack_pending >= 0)
        SETN("num_ack_pending", p->num_ack_pending);
    if (p->lim_batch > 0)
        SETN("max_request_batch", p->lim_batch);
    if (p->lim_expires_ms > 0)
        SETN("max_request_expires", p->lim_expires_ms / 1000.0);
    if (p->lim_bytes > 0)
        SETN("max_request_max_bytes", p->lim_bytes);
    if (p->term_code) {
        lua_pushstring(L, p->term_code);
        lua_setfield(L, -2, "error");
    }
    lua_pushboolean(L, ended(p));
    lua_setfield(L, -2, "closed");
    return 1;
}

static int pull_gc(lua_State *L)
{
    pull_ud *u = lua_touserdata(L, 1);
    pc *p = u->p;
    if (!p)
        return 0;
    u->p = NULL;
    /* normally reachable only once finalized (the engine holds its userdata
     * until then); at teardown after a forced shutdown it may still be live */
    if (!p->finalized) {
        unsubscribe(p);
        close_handle(&p->tick);
        close_handle(&p->wait_timer);
        close_handle(&p->backoff_timer);
        rt_hook_remove(&p->hook);
    }
    for (natsMsg *m; (m = q_pop(p)) != NULL;)
        natsMsg_Destroy(m);
    rt_health_release(p->health);           /* a failure stays visible */
    luaL_unref(L, LUA_REGISTRYINDEX, p->handler_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    jl_ackstats_release(p->st);
    jl_conn_release(p->c);
    free(p->q);
    for (int i = 0; i < p->nslots; i++)
        free(p->slots[i]);
    free(p->slots);
    free(p->next_subj);
    free(p);
    return 0;
}

/* jet._redelivery_delay(n) -> seconds: the default back-off after a failed
 * n-th delivery (retry.lua's "nak" without a delay uses it too) */
static int pull_redelivery_delay(lua_State *L)
{
    lua_pushnumber(L, rt_pull_redelivery_ms((long)luaL_checknumber(L, 1)) / 1000.0);
    return 1;
}

void jl_inject_pull(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"next", pull_next},   {"fetch", pull_fetch},   {"stop", pull_stop}, {"drain", pull_drain_l},
        {"closed", pull_closed}, {"stats", pull_stats}, {"_reconfigure", pull_reconfigure},
        {"_take", pull_take}, {"_done", pull_done}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", pull_gc}, {"__call", pull_call}, {NULL, NULL}};
    jl_newclass(L, PULL_MT, methods, meta);
    lua_pushcfunction(L, pull_new);
    lua_setfield(L, -2, "_js_pull");
    lua_pushlightuserdata(L, &failed_key);
    lua_setfield(L, -2, "_handler_failed");
    lua_pushcfunction(L, pull_redelivery_delay);
    lua_setfield(L, -2, "_redelivery_delay");
}
