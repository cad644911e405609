/*
 * lrequest.c - request/reply: the connection's reply mux and nc:request.
 *
 * One wildcard subscription "_INBOX.<nuid>.*" per connection (the mux); a
 * request's reply subject is "<prefix><token>", and a map from token to
 * waiter finds who waits for a reply in one lookup. Replies come from cnats'
 * delivery thread through the inbox (rt_post); each waiter may carry a
 * libuv timer for its timeout. See lrequest.h.
 */
#include "jl.h"
#include "lconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reply mux ---- */

static void reply_timer_closed(uv_handle_t *h) { free(h); }

static void reply_finish(jl_reply *r, natsMsg *m, const char *err)
{
    if (r->timer) {
        uv_timer_stop(r->timer);
        uv_close((uv_handle_t *)r->timer, reply_timer_closed);
        r->timer = NULL;
    }
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
    if (timeout_ms > 0) {
        r->timer = malloc(sizeof *r->timer);
        uv_timer_init(RT->loop, r->timer);
        r->timer->data = r;
        uv_timer_start(r->timer, reply_timeout, timeout_ms, 0);
    }
    snprintf(buf, bufsz, "%s%llu", c->mux_prefix, (unsigned long long)r->token);
    return 0;
}

void jl_conn_reply_cancel(jl_conn *c, jl_reply *r)
{
    rt_map_del(&c->replies, r->token);
    if (r->timer) {
        uv_timer_stop(r->timer);
        uv_close((uv_handle_t *)r->timer, reply_timer_closed);
        r->timer = NULL;
    }
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
    list = malloc(n * sizeof *list);
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
    list = malloc(n * sizeof *list);
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

typedef struct req_op {
    jl_reply r;
    rt_co   *co;
    char     subj[];  /* the request's subject: a permission error names it */
} req_op;

static void req_done(jl_reply *r, natsMsg *m, const char *err)
{
    req_op *op = r->data;
    rt_co *co = op->co;
    jl_conn *c = r->conn;
    lua_State *T = rt_co_prepare(co);
    const char *detail = r->detail;
    int n;

    if (m && natsMsg_IsNoResponders(m)) {
        natsMsg_Destroy(m);
        m = NULL;
        err = "no_responders";
    }
    if (!T) {
        if (m)
            natsMsg_Destroy(m);
        free(op);
        jl_conn_release(c);
        return;
    }
    if (m) {
        jl_msg_push(T, m, c);
        n = 1;
    } else {
        lua_pushnil(T);
        lua_pushstring(T, err);
        if (detail)
            lua_pushfstring(T, "nc:request to %s: %s", op->subj, detail);
        else if (strcmp(err, "timeout") == 0)
            lua_pushfstring(T, "nc:request to %s: no reply in time", op->subj);
        else if (strcmp(err, "no_responders") == 0)
            lua_pushfstring(T, "nc:request to %s: nobody is subscribed to it", op->subj);
        else
            lua_pushfstring(T, "nc:request to %s: %s", op->subj, err);
        n = 3;
    }
    free(op);
    jl_conn_release(c);
    rt_co_resume(co, n);
}

static void req_cancel(rt_co *co, void *p)
{
    req_op *op = p;
    jl_conn_reply_cancel(op->r.conn, &op->r);
    jl_conn_release(op->r.conn);
    free(op);
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
    op = calloc(1, sizeof *op + slen + 1);
    memcpy(op->subj, subj, slen);
    op->r.subj = op->subj;
    op->co = co;
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
    return rt_co_wait(co, req_cancel, op);
}
