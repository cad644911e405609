/*
 * lrequest.h - the connection's request/reply mux (lrequest.c): one
 * wildcard reply subscription "_INBOX.<nuid>.*" per connection, a map from
 * reply token to waiter, an optional timeout per waiter. nc:request,
 * msg:ack_sync and the pull engine's consumer-info calls wait on it.
 *
 * Everything here runs on the loop thread. The mux state itself (mux,
 * mux_prefix, next_token, replies, mux_live) lives in jl_conn (lconn.h).
 */
#ifndef JETLUA_LREQUEST_H
#define JETLUA_LREQUEST_H

#include <lua.h>
#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "rt_proto.h"

struct jl_conn;

/* A reply waiter on the connection's mux subscription. */
typedef struct jl_reply jl_reply;
typedef void (*jl_reply_fn)(jl_reply *r, natsMsg *m, const char *err);
struct jl_reply {
    struct jl_conn *conn;
    uint64_t     token;
    jl_reply_fn  fn;      /* m is owned by fn; err: "timeout", "closed", ... */
    void        *data;
    uv_timer_t  *timer;   /* NULL: no timeout */
    const char  *subj;    /* the request's subject (permission errors name it), or NULL */
    const char  *detail;  /* set only while fn runs for an error: a sentence, or NULL */
};

/* Subscribe the mux (at connect): 0, or -1. */
int  jl_conn_mux_start(struct jl_conn *c);

/* Register a reply waiter; fills r->token and writes the reply subject to
 * buf. timeout_ms 0 = none. Returns 0, or -1 (connection closed / no mux). */
int  jl_conn_reply_add(struct jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz);
/* Forget a waiter without calling it (its coroutine was abandoned). */
void jl_conn_reply_cancel(struct jl_conn *c, jl_reply *r);

/* Fail every waiting request whose subject (RT_PERM_PUBLISH) or reply
 * (RT_PERM_REPLY) p names with err/detail. */
void jl_conn_fail_replies(struct jl_conn *c, const rt_perm *p, const char *err, const char *detail);
/* Fail every waiter with err (the connection closed). */
void jl_conn_fail_all_replies(struct jl_conn *c, const char *err);

/* nc:request(subject, data, {timeout=, headers=}) -> msg | nil, code, detail */
int  jl_conn_request(lua_State *L);

#endif
