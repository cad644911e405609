/*
 * rt_pull.c - the pull-consumer engine's state machine (see rt_pull.h).
 * The status texts are nats-server 2.9.10's (server/consumer.go
 * processNextMsgRequest and friends).
 */
#include "rt_pull.h"
#include "rt_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the server says ---- */

rt_pull_status rt_pull_classify(int code, const char *desc)
{
    if (!desc)
        desc = "";
    switch (code) {
    case 100: return RT_PS_HEARTBEAT;
    case 404:
    case 408: return RT_PS_END;
    case 400: return RT_PS_BAD_REQUEST;
    case 409:
        if (strstr(desc, "Consumer Deleted"))
            return RT_PS_DELETED;
        if (strstr(desc, "push based"))
            return RT_PS_PUSH;
        if (strstr(desc, "Leadership Change"))
            return RT_PS_LEADER_CHANGE;
        if (strstr(desc, "Server Shutdown"))
            return RT_PS_SHUTDOWN;
        if (strstr(desc, "MaxRequestBatch"))
            return RT_PS_LIMIT_BATCH;
        if (strstr(desc, "MaxRequestExpires"))
            return RT_PS_LIMIT_EXPIRES;
        if (strstr(desc, "MaxRequestMaxBytes"))
            return RT_PS_LIMIT_BYTES;
        if (strstr(desc, "MaxWaiting"))
            return RT_PS_MAX_WAITING;
        if (strstr(desc, "MaxBytes"))         /* "Message Size Exceeds MaxBytes" */
            return RT_PS_MAX_BYTES;
        return RT_PS_OTHER;
    default: return RT_PS_OTHER;
    }
}

int rt_pull_limit(rt_pull_status st, const char *desc, int64_t *out)
{
    const char *of;
    char *end;
    long long v;
    if (!desc || !(of = strstr(desc, " of ")))
        return -1;
    of += 4;
    if (st == RT_PS_LIMIT_EXPIRES)
        return rt_go_duration_ms(of, out) == 0 && *out > 0 ? 0 : -1;
    if (st != RT_PS_LIMIT_BATCH && st != RT_PS_LIMIT_BYTES)
        return -1;
    v = strtoll(of, &end, 10);
    if (end == of || v <= 0)
        return -1;
    *out = v;
    return 0;
}

int rt_go_duration_ms(const char *s, int64_t *ms)
{
    static const struct { const char *u; double ms; } units[] = {
        {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    double total = 0;
    int parts = 0;
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*s && *s != ' ' && *s != ',' && *s != '"') {
        char *end;
        double v = strtod(s, &end);
        size_t best = 0;
        double mult = 0;
        if (end == s || v < 0)
            return -1;
        /* the longest unit that matches ("ms" before "m") */
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].u);
            if (strncmp(end, units[i].u, n) == 0 && n > best) {
                best = n;
                mult = units[i].ms;
            }
        }
        if (!best)
            return -1;
        total += v * mult;
        s = end + best;
        parts++;
    }
    if (!parts)
        return -1;
    *ms = (int64_t)total;
    return 0;
}

uint64_t rt_pull_redelivery_ms(long n)
{
    static const uint64_t sched[] = {1000, 5000, 15000, 30000};
    if (n < 1)
        n = 1;
    if (n > (long)(sizeof sched / sizeof sched[0]))
        n = (long)(sizeof sched / sizeof sched[0]);
    return sched[n - 1];
}

/* PROTOCOL.md "Facts found by trying the runtime hard": 10014 consumer not
 * found and 10059 stream not found are terminal. */
void rt_pull_info_parse(const char *json, size_t len, rt_pull_info *ci)
{
    int64_t ec = 0, v;
    const char *raw;
    size_t rn;
    memset(ci, 0, sizeof *ci);
    ci->num_pending = ci->num_ack_pending = ci->ack_wait_ms = ci->max_deliver = -1;
    if (rt_json_get(json, len, "error", &raw, &rn) == 0) {
        char desc[160] = "";
        rt_json_int(json, len, "error.err_code", &ec);
        rt_json_str(json, len, "error.description", desc, sizeof desc);
        ci->gone = ec == 10014 || ec == 10059;
        ci->code = ec == 10014 ? "consumer_deleted" : ec == 10059 ? "stream_not_found" : "api_error";
        snprintf(ci->detail, sizeof ci->detail, "%s (err_code %lld)", desc[0] ? desc : "JetStream API error",
                 (long long)ec);
        return;
    }
    if (rt_json_get(json, len, "config", &raw, &rn) != 0) {
        ci->code = "bad_response";
        snprintf(ci->detail, sizeof ci->detail, "consumer info: not a consumer info reply");
        return;
    }
    rt_json_int(json, len, "num_pending", &ci->num_pending);
    rt_json_int(json, len, "num_ack_pending", &ci->num_ack_pending);
    rt_json_int(json, len, "config.max_batch", &ci->max_batch);
    rt_json_int(json, len, "config.max_bytes", &ci->max_bytes);
    rt_json_int(json, len, "config.max_deliver", &ci->max_deliver);
    if (rt_json_int(json, len, "config.max_expires", &v) == 0)
        ci->max_expires_ms = v / 1000000;
    if (rt_json_int(json, len, "config.ack_wait", &v) == 0)
        ci->ack_wait_ms = v / 1000000;
}

/* ---- options, limits, the window ---- */

void rt_pull_init(rt_pull *w, rt_pull_mode mode, uint64_t now)
{
    memset(w, 0, sizeof *w);
    w->mode = mode;
    w->last_in = w->last_info = now;
}

void rt_pull_configure(rt_pull *w, const rt_pull_opts *o)
{
    w->max_msgs = o->max_msgs;
    w->max_bytes = o->max_bytes;
    w->thr_msgs = o->thr_msgs;
    w->thr_bytes = o->thr_bytes;
    w->expires_ms = o->expires_ms;
    w->hb_ms = o->hb_ms;
    w->wpi_ms = o->wpi_ms;
    w->ack_wait_ms = o->ack_wait_ms;
    w->concurrency = o->concurrency < 1 ? 1 : o->concurrency;
    w->no_wait = o->no_wait;
    w->lim_batch = o->lim_batch;
    w->lim_bytes = o->lim_bytes;
    w->lim_expires_ms = o->lim_expires_ms;
    /* slow start: until handlers have been timed, do not buffer more than a
     * slow handler could get through before ack_wait. Set once (a reload
     * keeps the ramp it reached), after the concurrency it depends on. */
    if (w->ramp == 0)
        w->ramp = w->concurrency * 4 > RT_PULL_SLOW_START_MIN ? w->concurrency * 4 : RT_PULL_SLOW_START_MIN;
    rt_pull_apply_limits(w);
}

int rt_pull_apply_limits(rt_pull *w)
{
    uint64_t exp = w->expires_ms, hb = w->hb_ms, tick, old = w->tick_ms;
    if (w->lim_expires_ms && (exp == 0 || exp > w->lim_expires_ms))
        exp = w->lim_expires_ms;
    if (hb && exp && hb > exp / 2)
        hb = exp / 2;
    w->rexp_ms = exp;
    w->rhb_ms = hb;
    /* often enough to see a missed heartbeat, an expired request and an
     * in-progress due in time; 20 ms .. 1 s */
    tick = hb ? hb / 2 : 1000;
    if (exp && exp / 4 < tick)
        tick = exp / 4;
    if (w->wpi_ms && w->wpi_ms / 2 < tick)
        tick = w->wpi_ms / 2;
    if (tick < 20)
        tick = 20;
    if (tick > 1000)
        tick = 1000;
    w->tick_ms = tick;
    return tick != old;
}

int64_t rt_pull_window(const rt_pull *w)
{
    int64_t win = w->max_msgs;
    if (w->mode == RT_PULL_FETCH)
        return win;
    if (w->max_bytes == 0 && w->avg_size > 0) {
        double fit = (double)RT_PULL_WINDOW_BYTES / w->avg_size;
        if (fit < (double)win)
            win = fit < 1 ? 1 : (int64_t)fit;
    }
    if (w->mode != RT_PULL_CONSUME)
        return win;
    if (w->ramp < win)
        win = w->ramp;
    if (w->handler_us > 0 && w->ack_wait_ms) {
        double fit = (double)w->ack_wait_ms * 1000.0 / 2.0 / w->handler_us * w->concurrency;
        if (fit < (double)win)
            win = fit < w->concurrency ? w->concurrency : (int64_t)fit;
    }
    return win;
}

void rt_pull_handled(rt_pull *w, double us)
{
    if (us >= 0)
        w->handler_us = w->handler_us > 0 ? w->handler_us * 0.9 + us * 0.1 : (us > 0.001 ? us : 0.001);
    if (w->ramp < w->max_msgs)
        w->ramp++;
}

/* ---- requests ---- */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* n messages (and bytes, 0: none) in one request, or in several when the
 * consumer caps a request's batch or max_bytes. With max_bytes every
 * request carries some: once the bytes are handed out, no more requests
 * (one without max_bytes would not be bounded). */
static int split(const rt_pull *w, int64_t n, int64_t bytes, rt_pull_ask *asks)
{
    int free_slots = RT_PULL_MAX_REQS - w->nreqs, k = 0;
    int64_t cap_n = w->lim_batch > 0 ? w->lim_batch : n, kb = 1;
    if (bytes > 0 && w->lim_bytes > 0 && bytes > w->lim_bytes) {
        kb = ceil_div(bytes, w->lim_bytes);      /* requests the bytes need */
        if (kb > free_slots)
            kb = free_slots;
        if (kb < 1)
            kb = 1;
    }
    if (bytes > 0 && n / kb < cap_n)
        cap_n = ceil_div(n, kb);                 /* spread the count over the byte-capped requests */
    while (n > 0 && k < free_slots) {
        int64_t b = n < cap_n ? n : cap_n, by = 0;
        if (w->max_bytes > 0) {
            by = w->lim_bytes > 0 && bytes > w->lim_bytes ? w->lim_bytes : bytes;
            if (by <= 0)
                break;
        }
        asks[k].batch = b;
        asks[k].bytes = by;
        k++;
        n -= b;
        bytes -= by;
    }
    return k;
}

int rt_pull_refill(rt_pull *w, int64_t buffered, int64_t running, int64_t buffered_bytes, uint64_t now,
                   rt_pull_ask asks[RT_PULL_MAX_REQS])
{
    int64_t held, win;
    if (w->mode == RT_PULL_FETCH || w->probe)
        return 0;                          /* heartbeats stopped: the consumer info answers first */
    if (w->backoff_until && now < w->backoff_until)
        return 0;
    w->backoff_until = 0;
    held = w->out_msgs + buffered + running;
    win = rt_pull_window(w);
    if (w->max_bytes > 0) {
        int64_t hb = w->out_bytes + buffered_bytes;
        if (hb > w->thr_bytes || held >= win)
            return 0;
        return split(w, win - held, w->max_bytes - hb, asks);
    }
    /* refill at the threshold; during slow start (or a window bounded by
     * ack_wait) at half the window */
    if (held <= (win < w->max_msgs ? win / 2 : w->thr_msgs))
        return split(w, win - held, 0, asks);
    return 0;
}

rt_pull_req *rt_pull_req_prepare(rt_pull *w, int64_t batch, int64_t bytes, uint64_t now)
{
    rt_pull_req *r;
    if (w->nreqs == RT_PULL_MAX_REQS || batch <= 0)
        return NULL;
    r = &w->reqs[w->nreqs];
    r->id = ++w->next_id;
    r->left = batch;
    r->bytes = bytes;
    r->deadline = w->rexp_ms ? now + w->rexp_ms : 0;
    r->ask_msgs = batch;
    r->ask_bytes = bytes;
    r->ask_exp_ms = w->rexp_ms;
    return r;
}

size_t rt_pull_req_body(const rt_pull *w, const rt_pull_req *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "{\"batch\":%lld", (long long)r->left);
#define ADD(...) \
    if (n >= 0 && (size_t)n < size) n += snprintf(buf + n, size - (size_t)n, __VA_ARGS__)
    if (w->rexp_ms)
        ADD(",\"expires\":%llu", (unsigned long long)w->rexp_ms * 1000000ULL);
    if (r->bytes > 0)
        ADD(",\"max_bytes\":%lld", (long long)r->bytes);
    if (w->rhb_ms)
        ADD(",\"idle_heartbeat\":%llu", (unsigned long long)w->rhb_ms * 1000000ULL);
    if (w->no_wait)
        ADD(",\"no_wait\":true");
    ADD("}");
#undef ADD
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

void rt_pull_req_sent(rt_pull *w, uint64_t now)
{
    rt_pull_req *r = &w->reqs[w->nreqs];
    if (w->nreqs == 0)
        w->last_in = now;          /* the heartbeat clock starts with the first request out */
    w->nreqs++;
    w->out_msgs += r->left;
    w->out_bytes += r->bytes;
    w->pulls++;
}

int rt_pull_req_find(const rt_pull *w, uint64_t id)
{
    for (int i = 0; i < w->nreqs; i++)
        if (w->reqs[i].id == id)
            return i;
    return -1;
}

void rt_pull_req_remove(rt_pull *w, int i)
{
    rt_pull_req *r = &w->reqs[i];
    /* the estimates drift (arrivals are credited to the oldest request):
     * with the last request gone nothing is out */
    w->out_msgs -= r->left > 0 ? r->left : 0;
    if (w->out_msgs < 0 || w->nreqs == 1)
        w->out_msgs = 0;
    if (r->bytes > 0) {
        w->out_bytes -= r->bytes;
        if (w->out_bytes < 0 || w->nreqs == 1)
            w->out_bytes = 0;
    }
    memmove(r, r + 1, sizeof *r * (size_t)(w->nreqs - i - 1));
    w->nreqs--;
}

void rt_pull_reset(rt_pull *w)
{
    w->nreqs = 0;
    w->out_msgs = 0;
    w->out_bytes = 0;
}

void rt_pull_heard(rt_pull *w, uint64_t now)
{
    w->last_in = now;
}

void rt_pull_sized(rt_pull *w, int64_t payload)
{
    double b = payload > 0 ? (double)payload : 1;
    w->avg_size = w->avg_size > 0 ? w->avg_size * 0.9 + b * 0.1 : b;
}

void rt_pull_on_msg(rt_pull *w, int64_t size)
{
    w->missed_streak = 0;
    w->backoff_ms = 0;
    if (w->nreqs > 0) {                    /* arrivals are credited to the oldest request */
        rt_pull_req *r = &w->reqs[0];
        int by_bytes = r->bytes > 0;
        w->out_msgs--;
        r->left--;
        if (by_bytes)
            r->bytes -= size;
        /* its batch is done (the server forgot it; 2.9.10 sends nothing,
         * even when max_bytes is left), or its bytes are */
        if (r->left <= 0 || (by_bytes && r->bytes <= 0))
            rt_pull_req_remove(w, 0);
        if (w->out_msgs < 0)
            w->out_msgs = 0;
    }
    if (w->max_bytes > 0) {
        w->out_bytes -= size;
        if (w->out_bytes < 0)
            w->out_bytes = 0;
    }
}

/* ---- statuses, back-off ---- */

uint32_t rt_pull_backoff(rt_pull *w, uint64_t now)
{
    w->backoff_ms = w->backoff_ms ? (w->backoff_ms * 2 > RT_PULL_BACKOFF_MAX_MS ? RT_PULL_BACKOFF_MAX_MS
                                                                                : w->backoff_ms * 2)
                                  : RT_PULL_BACKOFF_MIN_MS;
    w->backoff_until = now + w->backoff_ms;
    return w->backoff_ms;
}

static void verdict(rt_pull_verdict *v, rt_pull_act act, const char *code, const char *detail)
{
    memset(v, 0, sizeof *v);
    v->act = act;
    v->code = code;
    v->detail = detail;
}

static void backoff(rt_pull *w, uint64_t now, rt_pull_verdict *v, const char *code, const char *detail)
{
    verdict(v, RT_PA_BACKOFF, code, detail);
    v->backoff_ms = rt_pull_backoff(w, now);
}

/* A request ended by a status: what it still owed comes off the books. */
static void end_request(rt_pull *w, int i, int64_t pending_msgs)
{
    if (pending_msgs >= 0)
        w->reqs[i].left = pending_msgs;
    rt_pull_req_remove(w, i);
}

/* A 409 Exceeded MaxRequest* for a request that asked more than the limit
 * we already pull within: it was sent before an earlier 409 taught us the
 * limit (several requests are out at once), so it says nothing new. */
static int stale_ask(const rt_pull *w, rt_pull_status st, const rt_pull_req *r)
{
    if (st == RT_PS_LIMIT_BATCH)
        return w->lim_batch > 0 && r->ask_msgs > w->lim_batch;
    if (st == RT_PS_LIMIT_BYTES)
        return w->lim_bytes > 0 && r->ask_bytes > w->lim_bytes;
    if (st == RT_PS_LIMIT_EXPIRES)
        return w->lim_expires_ms > 0 && r->ask_exp_ms > w->lim_expires_ms;
    return 0;
}

/* A 409 Exceeded MaxRequest*: the consumer's limits changed since we read
 * them. Pull within the limit it names; only when that changes nothing
 * (no usable number, or not lower) does the caller back off. */
static int adapt_limit(rt_pull *w, rt_pull_status st, const char *desc)
{
    int64_t v;
    int changed = 0;
    if (rt_pull_limit(st, desc, &v) != 0)
        return 0;
    if (st == RT_PS_LIMIT_BATCH && (w->lim_batch == 0 || v < w->lim_batch))
        w->lim_batch = v, changed = 1;
    else if (st == RT_PS_LIMIT_BYTES && (w->lim_bytes == 0 || v < w->lim_bytes))
        w->lim_bytes = v, changed = 1;
    else if (st == RT_PS_LIMIT_EXPIRES && (w->lim_expires_ms == 0 || (uint64_t)v < w->lim_expires_ms))
        w->lim_expires_ms = (uint64_t)v, changed = 1;
    if (changed)
        rt_pull_apply_limits(w);
    return changed;
}

void rt_pull_on_status(rt_pull *w, int code, const char *desc, uint64_t id, int64_t pending_msgs,
                       int64_t fetched, int idle, uint64_t now, rt_pull_verdict *v)
{
    rt_pull_status st = rt_pull_classify(code, desc);
    int fetch = w->mode == RT_PULL_FETCH, i = id ? rt_pull_req_find(w, id) : -1;
    int exceeded = code == 409 && desc && strstr(desc, "Exceeded");

    verdict(v, RT_PA_NONE, NULL, NULL);
    if (st == RT_PS_HEARTBEAT)
        return;                                            /* liveness only */
    if (st == RT_PS_BAD_REQUEST || st == RT_PS_DELETED || st == RT_PS_PUSH) {
        verdict(v, fetch ? RT_PA_FINISH : RT_PA_TERMINAL,
                st == RT_PS_BAD_REQUEST ? "bad_request" : st == RT_PS_DELETED ? "consumer_deleted" : "push_consumer",
                NULL);
        v->nak = st != RT_PS_DELETED;                      /* a deleted consumer takes no acks */
        return;
    }
    if (st == RT_PS_LEADER_CHANGE) {
        rt_pull_reset(w);
        verdict(v, fetch ? RT_PA_FINISH : RT_PA_RESET, NULL, NULL);
        return;
    }
    if (i < 0)
        return;                                            /* a request we already wrote off */
    if (st == RT_PS_END) {
        end_request(w, i, pending_msgs);
        verdict(v, fetch ? RT_PA_FINISH : RT_PA_END, NULL, NULL);
        return;
    }
    if (st == RT_PS_MAX_BYTES) {
        int64_t most = w->lim_bytes > 0 && w->lim_bytes < w->max_bytes ? w->lim_bytes : w->max_bytes;
        int whole = w->reqs[i].bytes > 0 && w->reqs[i].bytes >= most;   /* it got nothing */
        end_request(w, i, pending_msgs);
        if (fetch)
            verdict(v, RT_PA_FINISH, fetched == 0 ? "message_too_large" : NULL,
                    "the next message is larger than max_bytes");
        else if (whole && idle && !(w->backoff_until > now))
            /* nothing can ever come: say so, and do not ask again in a loop */
            backoff(w, now, v, "message_too_large", "the next message is larger than max_bytes; raise max_bytes");
        else
            verdict(v, RT_PA_END, NULL, NULL);
        return;
    }
    rt_pull_req asked = w->reqs[i];
    end_request(w, i, pending_msgs);
    if (fetch) {
        verdict(v, RT_PA_FINISH, exceeded ? "limit_exceeded" : "status", NULL);
        return;
    }
    if (st == RT_PS_SHUTDOWN) {
        verdict(v, RT_PA_END, NULL, NULL);                 /* re-pulled after the reconnect */
        return;
    }
    if ((st == RT_PS_LIMIT_BATCH || st == RT_PS_LIMIT_EXPIRES || st == RT_PS_LIMIT_BYTES) && adapt_limit(w, st, desc)) {
        verdict(v, RT_PA_ADAPT, NULL, NULL);
        return;
    }
    if (stale_ask(w, st, &asked)) {
        verdict(v, RT_PA_END, NULL, NULL);                 /* already pulling within it */
        return;
    }
    backoff(w, now, v, exceeded ? "limit_exceeded" : "status", NULL);
}

void rt_pull_on_no_responders(rt_pull *w, uint64_t now, rt_pull_verdict *v)
{
    w->last_in = now;
    rt_pull_reset(w);
    if (w->mode == RT_PULL_FETCH)
        verdict(v, RT_PA_FINISH, "no_responders",
                "nobody answered the pull (the consumer does not exist, or JetStream is unavailable)");
    else
        backoff(w, now, v, "no_responders",
                "nobody answered the pull (the consumer is gone, or JetStream is unavailable)");
}

/* ---- liveness ---- */

int rt_pull_tick(rt_pull *w, uint64_t now, int connected)
{
    for (int i = 0; i < w->nreqs;) {       /* requests the server forgot (2.9.10) */
        if (w->reqs[i].deadline && now > w->reqs[i].deadline + RT_PULL_EXPIRY_GRACE_MS)
            rt_pull_req_remove(w, i);
        else
            i++;
    }
    if (w->rhb_ms && w->nreqs > 0 && now - w->last_in > 2 * w->rhb_ms && connected) {
        w->hb_missed++;
        w->last_in = now;
        return 1;
    }
    return 0;
}

void rt_pull_probe(rt_pull *w, int asked)
{
    int first = w->missed_streak++ == 0;
    if (asked)
        w->probe = first ? 2 : 1;
    else if (first)
        rt_pull_reset(w);          /* once: pull afresh; then just wait (no pile of requests) */
}

int rt_pull_info_apply(rt_pull *w, const rt_pull_info *ci, uint64_t now)
{
    int hb = w->probe, changed = 0;
    w->probe = 0;
    w->last_info = now;
    if (ci->gone)
        return 0;                  /* terminal: the owner stops */
    if (!ci->code) {
        w->lim_batch = ci->max_batch > 0 ? ci->max_batch : 0;
        w->lim_bytes = ci->max_bytes > 0 ? ci->max_bytes : 0;
        w->lim_expires_ms = ci->max_expires_ms > 0 ? (uint64_t)ci->max_expires_ms : 0;
        changed = rt_pull_apply_limits(w);
        if (w->ack_wait_ms && ci->ack_wait_ms > 0)
            w->ack_wait_ms = (uint64_t)ci->ack_wait_ms;
    }
    /* the server answered but sent no heartbeat: our requests are lost (the
     * first miss of a streak resets even when the answer did not come) */
    if (hb && (!ci->code || hb == 2))
        rt_pull_reset(w);
    return changed;
}

int rt_pull_info_due(rt_pull *w, uint64_t now)
{
    if (now - w->last_info < RT_PULL_INFO_PERIOD_MS)
        return 0;
    w->last_info = now;
    return 1;
}

void rt_pull_reconnected(rt_pull *w, uint64_t now)
{
    rt_pull_reset(w);
    w->missed_streak = 0;
    w->probe = 0;
    w->last_in = now;
}
