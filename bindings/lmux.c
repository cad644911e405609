/*
 * lmux.c - the connection's request mux (see lmux.h).
 *
 * One wildcard subscription "_INBOX.<nuid>.*" per connection; a request's
 * reply subject is "<prefix><token>", and a map from token to waiter finds
 * who waits for a reply in one lookup. Replies come from cnats' delivery
 * thread through the inbox (rt_post); each waiter may carry a libuv timer
 * for its timeout.
 *
 * The fast path: requests to a subject under a prefix registered with
 * jl_conn_fast_replies (a KV bucket's direct gets: its stream answers every
 * key) reply to "<prefix>f.<token>", a synchronous subscription read on the
 * loop after each read event: no hop through cnats' delivery thread, no
 * wake of the loop. cnats hides the message of a 503 (no responders) on a
 * synchronous subscription, so it names no waiter there: the prefixes are
 * turned off (what follows takes the slow path, where a 503 names its
 * request) and that many fast waiters fail as no_responders when their
 * timeout comes, as the async publisher does with its PubAcks.
 *
 * Lifetime: the mux is made by jl_conn_mux_start and registered as a
 * passive client (holding a connection ref); cnats completes its
 * subscription after the connection closed, and then the mux removes
 * itself and is freed. Every waiter has been told by then: the close
 * event failed them all.
 */
#include "jl.h"
#include "lconn.h"
#include "lmux.h"
#include "rt_map.h"
#include "rt_mem.h"
#include "rt_prefixes.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jl_mux {
    jl_client k; /* first: the connection hands us &k */
    jl_conn *c;
    natsSubscription *sub;
    char prefix[64]; /* "_INBOX.<nuid>." */
    size_t prefix_len;
    uint64_t next_token;
    rt_map replies;         /* token -> jl_reply */
    natsSubscription *fast; /* sync, "<prefix>f.*", made with the first fast prefix */
    uint64_t anon_503;      /* 503s on it, not yet matched to a waiter */
    rt_prefixes pre;        /* requests under these take the fast path */
} jl_mux;

static void reply_finish(jl_reply *r, natsMsg *m, const char *err)
{
    rt_timer_free(&r->timer);
    r->fn(r, m, err);
}

static void reply_timeout(uv_timer_t *t)
{
    jl_reply *r = t->data;
    jl_mux *x = r->conn->mux;
    rt_map_del(&x->replies, r->token);
    if (r->fast && x->anon_503 > 0) {
        x->anon_503--;
        reply_finish(r, NULL, "no_responders");
        return;
    }
    reply_finish(r, NULL, "timeout");
}

/* The token of a reply subject of this mux ("<prefix><token>" or
 * "<prefix>f.<token>"), or 0 (tokens start at 1). */
static uint64_t token_of(const jl_mux *x, const char *subj)
{
    const char *t;
    if (strncmp(subj, x->prefix, x->prefix_len) != 0)
        return 0;
    t = subj + x->prefix_len;
    if (t[0] == 'f' && t[1] == '.')
        t += 2;
    return strtoull(t, NULL, 10);
}

/* 1: a reply to a request to subj comes on the fast path. */
static int is_fast(const jl_mux *x, const char *subj)
{
    return x->fast && subj && rt_prefixes_match(&x->pre, subj, strlen(subj));
}

/* Finish the waiters hit() picks with err/detail. Collect first:
 * finishing one resumes its coroutine, which may add or remove others. */
static void fail_some(jl_mux *x, int (*hit)(const jl_mux *, const jl_reply *, const void *), const void *arg,
                      const char *err, const char *detail)
{
    size_t it = 0, n = x->replies.n, i = 0;
    uint64_t k;
    void *v;
    jl_reply **list;

    if (n == 0)
        return;
    list = rt_xmalloc(n * sizeof *list);
    while (rt_map_next(&x->replies, &it, &k, &v) && i < n)
        if (!hit || hit(x, v, arg))
            list[i++] = v;
    for (size_t j = 0; j < i; j++) {
        if (rt_map_del(&x->replies, list[j]->token) != list[j])
            continue; /* an earlier one's coroutine cancelled it */
        list[j]->detail = detail;
        reply_finish(list[j], NULL, err);
    }
    free(list);
}

/* ---- the mux as a client of the connection ---- */

static void mux_event(jl_client *k, int ev)
{
    if (ev == JL_EV_CLOSED)
        fail_some((jl_mux *)k, NULL, NULL, "closed", NULL);
}

/* A refused publish: requests to that subject, or the one whose reply
 * subject was refused. */
static int denied_hit(const jl_mux *x, const jl_reply *r, const void *arg)
{
    const rt_perm *p = arg;
    if (p->op == RT_PERM_PUBLISH)
        return rt_perm_matches(p, r->subj);
    return p->op == RT_PERM_REPLY && token_of(x, p->subject) == r->token;
}

static void mux_denied(jl_client *k, const rt_perm *p, const char *text)
{
    fail_some((jl_mux *)k, denied_hit, p, "permission_denied", text);
}

/* ---- from cnats' threads, through the inbox ---- */

static void mux_deliver(void *a, void *b)
{
    jl_mux *x = a;
    natsMsg *m = b;
    uint64_t tok = token_of(x, natsMsg_GetSubject(m));
    jl_reply *r = tok ? rt_map_del(&x->replies, tok) : NULL;

    if (x->replies.n == 0)
        x->anon_503 = 0; /* 503s of waiters that ended otherwise */
    if (!r) {
        natsMsg_Destroy(m); /* a late reply: its waiter timed out */
        return;
    }
    if (!r->fast && r->subj && !natsMsg_IsNoResponders(m))
        rt_prefixes_seen(&x->pre, r->subj, strlen(r->subj)); /* answered again: the fast path */
    reply_finish(r, m, NULL);
}

static void mux_complete(void *a, void *b)
{
    jl_mux *x = a;
    jl_conn *c = x->c;

    fail_some(x, NULL, NULL, "closed", NULL); /* none left, unless cnats completed it first */
    if (x->fast) {
        natsSubscription_Unsubscribe(x->fast);
        natsSubscription_Destroy(x->fast);
        x->fast = NULL;
    }
    natsSubscription_Destroy(x->sub);
    c->mux = NULL;
    jl_conn_client_remove(c, &x->k); /* may free c */
    rt_map_free(&x->replies);
    free(x);
}

/* One reply of the fast path (may resume a coroutine: x lives until
 * mux_complete). */
static int fast_reply(void *arg, natsMsg *m)
{
    jl_mux *x = arg;
    x->c->fast_replies++; /* nc:stats().fast_replies */
    mux_deliver(x, m);
    return 0;
}

/* Loop thread, after each read event: the replies of the fast path. */
static void mux_after_read(jl_client *k)
{
    jl_mux *x = (jl_mux *)k;
    int n503 = jl_fast_sub_drain(&x->fast, fast_reply, x);
    if (n503) {
        x->anon_503 += (uint64_t)n503;
        rt_prefixes_off(&x->pre);
    }
}

static void on_mux_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    if (rt_post_try(mux_deliver, closure, m) != 0)
        natsMsg_Destroy(m);
}

static void on_mux_complete(void *closure)
{
    rt_post(mux_complete, closure, NULL);
}

/* ---- the API ---- */

int jl_conn_mux_start(jl_conn *c)
{
    char subj[80];
    jl_mux *x = rt_xcalloc(1, sizeof *x);

    x->c = c;
    x->k.event = mux_event;
    x->k.denied = mux_denied;
    x->k.after_read = mux_after_read;
    x->k.passive = 1;
    if ((x->prefix_len = jl_inbox_prefix(x->prefix, sizeof x->prefix)) == 0 ||
        rt_map_init(&x->replies, 64) != 0) {
        free(x);
        return -1;
    }
    snprintf(subj, sizeof subj, "%s*", x->prefix);
    if (natsConnection_Subscribe(&x->sub, c->nc, subj, on_mux_msg, x) != NATS_OK) {
        rt_map_free(&x->replies);
        free(x);
        return -1;
    }
    natsSubscription_SetPendingLimits(x->sub, -1, -1);
    natsSubscription_SetOnCompleteCB(x->sub, on_mux_complete, x);
    c->mux = x;
    jl_conn_client_add(c, &x->k); /* removed by mux_complete */
    return 0;
}

size_t jl_conn_reply_len(jl_conn *c)
{
    return (c->mux ? c->mux->prefix_len : 64) + 22; /* "f." and a token */
}

int jl_conn_reply_add(jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz)
{
    jl_mux *x = c->mux;
    if (!x || c->state == JL_CONN_CLOSED)
        return -1;
    r->conn = c;
    r->token = ++x->next_token;
    r->timer = NULL;
    r->fast = is_fast(x, r->subj);
    if (rt_map_put(&x->replies, r->token, r) != 0)
        return -1;
    if (timeout_ms > 0)
        r->timer = rt_timer_new(reply_timeout, r, timeout_ms, 0);
    snprintf(buf, bufsz, r->fast ? "%sf.%llu" : "%s%llu", x->prefix, (unsigned long long)r->token);
    return 0;
}

int jl_conn_fast_replies(jl_conn *c, const char *prefix, size_t len)
{
    jl_mux *x = c->mux;
    if (!x || jl_conn_is_closed(c) || len == 0 || len >= RT_PREFIX_LEN)
        return -1;
    if (!x->fast) {
        char subj[80];
        snprintf(subj, sizeof subj, "%sf.*", x->prefix);
        if (natsConnection_SubscribeSync(&x->fast, c->nc, subj) != NATS_OK)
            return -1;
        natsSubscription_SetPendingLimits(x->fast, -1, -1);
    }
    return rt_prefixes_add(&x->pre, prefix, len);
}

void jl_conn_reply_cancel(jl_conn *c, jl_reply *r)
{
    if (c->mux)
        rt_map_del(&c->mux->replies, r->token);
    rt_timer_free(&r->timer);
}

void jl_reply_wait_abandoned(jl_future *f)
{
    jl_reply_wait *w = (jl_reply_wait *)f;
    jl_conn *c = w->r.conn;
    jl_conn_reply_cancel(c, &w->r);
    jl_conn_release(c);
    jl_future_free(&w->f);
    free(w);
}
