/*
 * lmsg.h - message userdata (lmsg.c): what handlers, nc:request and the
 * JetStream engines hand to the script, and the JetStream acks sent for it.
 */
#ifndef JETLUA_LMSG_H
#define JETLUA_LMSG_H

#include <nats/nats.h>
#include <stdint.h>

#include "jl_conn.h"

/* Push a message userdata; it takes ownership of m. c (may be NULL) is the
 * connection it came from: msg:respond and the acks publish on it. */
typedef struct lmsg lmsg;
void jl_msg_push(lua_State *L, natsMsg *m, jl_conn *c);
lmsg *jl_msg_push_ud(lua_State *L, natsMsg *m, jl_conn *c);
natsMsg *jl_msg_check(lua_State *L, int idx, const char *fname);

/* Free a message received on the loop thread, here and now. cnats'
 * natsMsg_Destroy hands every message to its garbage-collector thread (a
 * mutex, a condition signal and a context switch per message; the other
 * thread's free() then contends for malloc's arena): 10-15 % of a consume
 * profile. Only for messages jetlua owns (from NextMsg or a reply). */
void jl_msg_free(natsMsg *m);
lmsg *jl_msg_check_ud(lua_State *L, int idx, const char *fname);

/* JetStream: was an ack/nak/term sent? Send one (payload "+ACK", "-NAK",
 * "+WPI", "+TERM"): 0 sent, -1 not possible, -2 already acked. */
int jl_msg_acked(lmsg *u);
int jl_msg_send_ack(lmsg *u, const char *payload);

/* A consumer's ack counters, shared with its messages (reference counted:
 * a message may outlive its consumer). */
typedef struct jl_ackstats {
    int refs;
    uint64_t acked, naked, termed, in_progress;
    struct rt_series *m_acked, *m_naked, *m_termed;   /* per-consumer metrics, or NULL */
} jl_ackstats;
void jl_msg_set_stats(lmsg *u, jl_ackstats *st);
void jl_ackstats_release(jl_ackstats *st);

/* An output published for u (js:publish_async{ack = u}) was added / ended:
 * u is acked when the last one succeeds, nak'd when one fails. */
void jl_msg_output_add(lmsg *u);
void jl_msg_output_done(lmsg *u, int ok);

/* The fields of a JetStream "$JS.ACK..." reply subject (v1: 9 tokens, v2:
 * 11 or more, with a domain): f[i] points into the subject, len[i] long. */
enum { JL_ACK_STREAM = 0, JL_ACK_CONSUMER, JL_ACK_DELIVERED, JL_ACK_STREAM_SEQ, JL_ACK_CONSUMER_SEQ,
       JL_ACK_TIMESTAMP, JL_ACK_PENDING };
typedef struct jl_ack_meta {
    const char *f[7];
    size_t      len[7];
    const char *domain;        /* NULL: none (v1, or "_") */
    size_t      domain_len;
} jl_ack_meta;
/* 0, or -1 when reply is not an ack subject */
int jl_ack_parse(const char *reply, jl_ack_meta *m);

#endif
