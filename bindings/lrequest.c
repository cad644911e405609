/*
 * lrequest.c - request/reply: the connection's reply mux and nc:request.
 *
 * One wildcard subscription "_INBOX.<nuid>.*" per connection (the mux); a
 * request's reply subject is "<prefix><token>", and a map from token to
 * waiter finds who waits for a reply in one lookup. Replies come from cnats'
 * delivery thread through the inbox (rt_post); each waiter may carry a
 * libuv timer for its timeout. See lrequest.h. nc:request's coroutine
 * waits on a jl_future (lfuture.h), as msg:ack_sync's does.
 */
#include "jl.h"
#include "lconn.h"
#include "lfuture.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reply mux ---- */

static void reply_finish(jl_reply *r, natsMsg *m, const char *err)
{
    rt_timer_free(&r->timer);
    r->fn(r, m, err);
}

static void reply_timeout(uv_timer_t *t)
{
    jl_reply *r = t->data;
    rt_map_del(&r->conn->replies, r->token);
    reply_finish(r, NULL, "timeout");
}

static void mux_deliver(void *a, void *b)
{
    jl_conn *c = a;
    natsMsg *m = b;
    const char *subj = natsMsg_GetSubject(m);
    jl_reply *r = NULL;

    if (strncmp(subj, c->mux_prefix, c->mux_prefix_len) == 0) {
        uint64_t tok = strtoull(subj + c->mux_prefix_len, NULL, 10);
        r = rt_map_del(&c->replies, tok);
    }
    if (r)
        reply_finish(r, m, NULL);
    else
        natsMsg_Destroy(m);   /* a late reply: its waiter timed out */
}

static void mux_complete(void *a, void *b)
{
    jl_conn *c = a;
    natsSubscription_Destroy(c->mux);
    c->mux = NULL;
    c->mux_live = 0;
    jl_conn_maybe_done(c);
    jl_conn_release(c);
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

int jl_conn_mux_start(jl_conn *c)
{
    char subj[80];
    natsStatus s;

    if ((c->mux_prefix_len = jl_inbox_prefix(c->mux_prefix, sizeof c->mux_prefix)) == 0)
        return -1;
    snprintf(subj, sizeof subj, "%s*", c->mux_prefix);
    s = natsConnection_Subscribe(&c->mux, c->nc, subj, on_mux_msg, c);
    if (s != NATS_OK)
        return -1;
    natsSubscription_SetPendingLimits(c->mux, -1, -1);
    jl_conn_retain(c);   /* released by mux_complete */
    c->mux_live = 1;
    natsSubscription_SetOnCompleteCB(c->mux, on_mux_complete, c);
    return 0;
}

int jl_conn_reply_add(jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz)
{
    if (!c->mux || c->state == JL_CONN_CLOSED)
        return -1;
    r->conn = c;
    r->token = ++c->next_token;
    r->timer = NULL;
    if (rt_map_put(&c->replies, r->token, r) != 0)
        return -1;
    if (timeout_ms > 0)
        r->timer = rt_timer_new(reply_timeout, r, timeout_ms, 0);
    snprintf(buf, bufsz, "%s%llu", c->mux_prefix, (unsigned long long)r->token);
    return 0;
}

void jl_conn_reply_cancel(jl_conn *c, jl_reply *r)
{
    rt_map_del(&c->replies, r->token);
    rt_timer_free(&r->timer);
}

/* Fail the waiters p names: requests to the refused subject, or the one
 * whose reply subject was refused. */
void jl_conn_fail_replies(jl_conn *c, const rt_perm *p, const char *err, const char *detail)
{
    size_t it = 0, n = c->replies.n, i = 0;
    uint64_t k;
    void *v;
    jl_reply **list;

    if (n == 0)
        return;
    list = rt_xmalloc(n * sizeof *list);
    while (rt_map_next(&c->replies, &it, &k, &v) && i < n) {
        jl_reply *r = v;
        int hit = 0;
        if (p->op == RT_PERM_PUBLISH)
            hit = rt_perm_matches(p, r->subj);
        else if (p->op == RT_PERM_REPLY && strncmp(p->subject, c->mux_prefix, c->mux_prefix_len) == 0)
            hit = strtoull(p->subject + c->mux_prefix_len, NULL, 10) == r->token;
        if (hit)
            list[i++] = r;
    }
    for (size_t j = 0; j < i; j++) {
        rt_map_del(&c->replies, list[j]->token);
        list[j]->detail = detail;
        reply_finish(list[j], NULL, err);
    }
    free(list);
}

void jl_conn_fail_all_replies(jl_conn *c, const char *err)
{
    size_t it = 0;
    uint64_t k;
    void *v;
    /* Collect first: finishing a reply may add or remove entries. */
    size_t n = c->replies.n, i = 0;
    jl_reply **list;
    if (n == 0)
        return;
    list = rt_xmalloc(n * sizeof *list);
    while (rt_map_next(&c->replies, &it, &k, &v) && i < n)
        list[i++] = v;
    for (size_t j = 0; j < i; j++) {
        rt_map_del(&c->replies, list[j]->token);
        reply_finish(list[j], NULL, err);
    }
    free(list);
}

/* ---- nc:request ---- */

/* Raise on a headers table jl_conn_publish would refuse, before anything
 * is registered that a raise would leak (nc:request's reply waiter). */
static void check_headers(lua_State *L, int hidx, const char *fname)
{
    if (lua_type(L, hidx) != LUA_TTABLE)
        jl_argerror(L, fname, "headers", "table expected, got %s", jl_typename(L, hidx));
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        const char *key;
        if (lua_type(L, -2) != LUA_TSTRING)
            jl_argerror(L, fname, "headers", "header names must be strings");
        key = lua_tostring(L, -2);
        if (!*key || strpbrk(key, " \t\r\n:"))
            jl_argerror(L, fname, "headers", "invalid header name '%s'", key);
        if (lua_type(L, -1) == LUA_TTABLE) {
            int n = (int)lua_objlen(L, -1);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) != LUA_TSTRING)
                    jl_argerror(L, fname, "headers", "value of '%s' must be a string or a list of strings, got %s",
                                key, luaL_typename(L, -1));
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -1) != LUA_TSTRING) {
            jl_argerror(L, fname, "headers", "value of '%s' must be a string or a list of strings, got %s",
                        key, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
}

/* A request: the mux's waiter and the future its coroutine waits on. */
typedef struct req_op {
    jl_future f;
    jl_reply  r;
    natsMsg  *m;      /* the reply, until pushed */
    char      subj[]; /* the request's subject: a permission error names it */
} req_op;

static int req_push(lua_State *L, jl_future *f)
{
    req_op *op = (req_op *)f;
    if (!op->m) {
        lua_pushnil(L);
        return 1;
    }
    jl_msg_push(L, op->m, op->r.conn);
    op->m = NULL;
    return 1;
}

/* The coroutine was abandoned: forget the waiter. */
static void req_abandoned(jl_future *f)
{
    req_op *op = (req_op *)f;
    jl_conn_reply_cancel(op->r.conn, &op->r);
    jl_conn_release(op->r.conn);
    jl_future_free(&op->f);
    free(op);
}

static const jl_future_ops req_ops = {"nc:request", "nc:request", req_push, req_abandoned};

static void req_done(jl_reply *r, natsMsg *m, const char *err)
{
    req_op *op = r->data;
    jl_conn *c = r->conn;

    if (m && natsMsg_IsNoResponders(m)) {
        natsMsg_Destroy(m);
        m = NULL;
        err = "no_responders";
    }
    if (m) {
        op->m = m;
        jl_future_ok(&op->f);
    } else {
        const char *why = r->detail ? r->detail
                        : strcmp(err, "timeout") == 0 ? "no reply in time"
                        : strcmp(err, "no_responders") == 0 ? "nobody is subscribed to it" : err;
        size_t n = strlen(op->subj) + strlen(why) + 32;
        char *text = rt_xmalloc(n);
        snprintf(text, n, "nc:request to %s: %s", op->subj, why);
        jl_future_fail(&op->f, err, text, 0);
        free(text);
    }
    if (op->m)
        natsMsg_Destroy(op->m);      /* nobody took it */
    jl_future_free(&op->f);
    free(op);
    jl_conn_release(c);
}

/* nc:request(subject, data, {timeout=, headers=}) -> msg | nil, err */
int jl_conn_request(lua_State *L)
{
    static const char *const keys[] = {"timeout", "headers", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:request");
    size_t slen = 0;
    const char *subj = jl_check_subject(L, 2, "nc:request", 0, &slen);
    const char *data = "";
    size_t len = 0;
    double timeout = 5.0;
    int hidx = 0;
    char reply[128];
    rt_co *co;
    req_op *op;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, "nc:request", "data", &len);
    if (jl_opt_table(L, 4, "nc:request", "opts")) {
        jl_check_keys(L, 4, "nc:request", keys);
        timeout = jl_field_number(L, 4, "timeout", "nc:request", 5.0);
        if (!(timeout > 0))
            jl_argerror(L, "nc:request", "timeout", "must be > 0 seconds");
        lua_getfield(L, 4, "headers");
        if (!lua_isnil(L, -1))
            hidx = lua_gettop(L);
    }
    jl_check_pub_line(L, "nc:request", "subject", slen, c->mux_prefix_len + 20, hidx != 0, len);
    co = rt_co_current(L, "nc:request");
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:request");
    jl_conn_check_open(L, c, "nc:request");
    if (hidx)
        check_headers(L, hidx, "nc:request");
    op = rt_xcalloc(1, sizeof *op + slen + 1);
    jl_future_init(&op->f, &req_ops);
    memcpy(op->subj, subj, slen);
    op->r.subj = op->subj;
    op->r.fn = req_done;
    op->r.data = op;
    if (jl_conn_reply_add(c, &op->r, (uint64_t)(timeout * 1000.0), reply, sizeof reply) != 0) {
        free(op);
        return jl_conn_closed_result(L, "nc:request");
    }
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:request");
    if (s != NATS_OK) {
        jl_conn_reply_cancel(c, &op->r);
        free(op);
        return jl_push_status(L, s, "nc:request");
    }
    jl_conn_retain(c);
    return jl_future_wait(L, &op->f, co, 0, -1, NULL);
}
