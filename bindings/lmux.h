/*
 * lmux.h - the connection's request mux (lmux.c): one wildcard reply
 * subscription "_INBOX.<nuid>.*" per connection, a map from reply token to
 * waiter, an optional timeout per waiter. nc:request (lrequest.c),
 * msg:ack_sync (lmsg.c) and the pull engine's consumer-info calls
 * (ljs_consumer_watch.c) wait on it.
 *
 * The mux is a passive client of the connection (jl_client, jl_conn.h):
 * the connection does not know it by name. It hears the close (every
 * waiter fails with "closed") and the server's refusals (the waiters
 * whose subject or reply subject was refused fail with
 * "permission_denied") through the client interface, and does not hold
 * a drain back: requests made while the other clients drain still get
 * their replies until cnats drains the mux with the connection.
 *
 * Loop thread only.
 */
#ifndef JETLUA_LMUX_H
#define JETLUA_LMUX_H

#include "lfuture.h"

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct jl_conn;

/* A reply waiter. The caller owns it and keeps it alive until fn ran or it
 * was cancelled. */
typedef struct jl_reply jl_reply;
typedef void (*jl_reply_fn)(jl_reply *r, natsMsg *m, const char *err);
struct jl_reply {
    struct jl_conn *conn;
    uint64_t token;
    jl_reply_fn fn; /* m is owned by fn; err: "timeout", "closed", ... */
    void *data;
    uv_timer_t *timer;  /* NULL: no timeout */
    const char *subj;   /* the request's subject (permission errors name it), or NULL */
    int fast;           /* its reply comes on the fast path (set by jl_conn_reply_add) */
    const char *detail; /* set only while fn runs for an error: a sentence, or NULL */
};

/* A coroutine waiting on one reply through a future (nc:request,
 * msg:ack_sync): the first member of their ops. The op is one allocation
 * that holds a connection ref while the waiter is registered. */
typedef struct jl_reply_wait {
    jl_future f;
    jl_reply r;
} jl_reply_wait;

/* jl_future_ops.abandoned for such ops (the coroutine was abandoned):
 * forget the waiter, drop the connection ref, free the op. */
void jl_reply_wait_abandoned(jl_future *f);

/* Subscribe the mux (at connect, once): 0, or -1. */
int jl_conn_mux_start(struct jl_conn *c);

/* The length of a reply subject jl_conn_reply_add writes, at most (for
 * the protocol line checks): the prefix and a token. */
size_t jl_conn_reply_len(struct jl_conn *c);

/* Register a reply waiter; fills r->token and writes the reply subject to
 * buf. timeout_ms 0 = none. Returns 0, or -1 (connection closed / no mux). */
int jl_conn_reply_add(struct jl_conn *c, jl_reply *r, uint64_t timeout_ms, char *buf, size_t bufsz);
/* Requests to subjects under prefix (set r->subj before jl_conn_reply_add)
 * get their replies on the fast path: read on the loop, no thread hop.
 * For subjects something is known to answer (a KV bucket's direct gets).
 * 0, or -1 (closed, prefix empty or too long: the slow path stays).
 * See rt_prefixes.h (bounded: a new prefix may replace the oldest). */
int jl_conn_fast_replies(struct jl_conn *c, const char *prefix, size_t len);
/* Forget a waiter without calling it (its coroutine was abandoned). */
void jl_conn_reply_cancel(struct jl_conn *c, jl_reply *r);

#endif
