/*
 * lrequest.c - nc:request: publish with a reply subject of the
 * connection's request mux (lmux.h) and wait for the reply. The coroutine
 * waits on a jl_future (lfuture.h), as msg:ack_sync's does.
 */
#include "jl.h"
#include "lconn.h"
#include "lfuture.h"
#include "lmsg.h"
#include "lmux.h"
#include "lpublish.h"
#include "rt_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                    jl_argerror(L, fname, "headers",
                                "value of '%s' must be a string or a list of strings, got %s", key,
                                luaL_typename(L, -1));
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
    jl_reply_wait w; /* first: the future's ops get &w.f */
    natsMsg *m;      /* the reply, until pushed */
    char subj[]; /* the request's subject: a permission error names it */
} req_op;

static int req_push(lua_State *L, jl_future *f)
{
    req_op *op = (req_op *)f;
    if (!op->m) {
        lua_pushnil(L);
        return 1;
    }
    jl_msg_push(L, op->m, op->w.r.conn);
    op->m = NULL;
    return 1;
}

static const jl_future_ops req_ops = {"nc:request", "nc:request", req_push, jl_reply_wait_abandoned};

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
        jl_future_ok(&op->w.f);
    } else {
        const char *why = r->detail                           ? r->detail
                          : strcmp(err, "timeout") == 0       ? "no reply in time"
                          : strcmp(err, "no_responders") == 0 ? "nobody is subscribed to it"
                                                              : err;
        size_t n = strlen(op->subj) + strlen(why) + 32;
        char *text = rt_xmalloc(n);
        snprintf(text, n, "nc:request to %s: %s", op->subj, why);
        jl_future_fail(&op->w.f, err, text, 0);
        free(text);
    }
    if (op->m)
        natsMsg_Destroy(op->m); /* nobody took it */
    jl_future_free(&op->w.f);
    free(op);
    jl_conn_release(c);
}

/* nc:request(subject, data, {timeout=, headers=}) -> msg | nil, err */
static int nc_request(lua_State *L)
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
    jl_check_pub_line(L, "nc:request", "subject", slen, jl_conn_reply_len(c), hidx != 0, len);
    co = rt_co_current(L, "nc:request");
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:request");
    jl_conn_check_open(L, c, "nc:request");
    if (hidx)
        check_headers(L, hidx, "nc:request");
    op = rt_xcalloc(1, sizeof *op + slen + 1);
    jl_future_init(&op->w.f, &req_ops);
    memcpy(op->subj, subj, slen);
    op->w.r.subj = op->subj;
    op->w.r.fn = req_done;
    op->w.r.data = op;
    if (jl_conn_reply_add(c, &op->w.r, (uint64_t)(timeout * 1000.0), reply, sizeof reply) != 0) {
        free(op);
        return jl_conn_closed_result(L, "nc:request");
    }
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:request");
    if (s != NATS_OK) {
        jl_conn_reply_cancel(c, &op->w.r);
        free(op);
        return jl_push_status(L, s, "nc:request");
    }
    jl_conn_retain(c);
    return jl_future_wait(L, &op->w.f, co, 0, -1, NULL);
}

/* nc:_fast_replies(prefix) -> true | false: replies to requests under
 * prefix are read on the loop (jl_conn_fast_replies). Internal: for
 * subjects a stream is known to answer (kv.lua's direct gets). */
static int nc_fast_replies(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:_fast_replies");
    size_t len;
    const char *prefix = luaL_checklstring(L, 2, &len);
    lua_pushboolean(L, jl_conn_fast_replies(c, prefix, len) == 0);
    return 1;
}

void jl_inject_request(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", nc_request}, {"_fast_replies", nc_fast_replies}, {NULL, NULL}};
    jl_conn_add_methods(L, methods);
}
