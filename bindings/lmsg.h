/*
 * lmsg.h - message userdata (lmsg.c): what handlers, nc:request and the
 * JetStream engines hand to the script, and the JetStream acks sent for it.
 */
#ifndef JETLUA_LMSG_H
#define JETLUA_LMSG_H

#include <nats/nats.h>
#include <stdint.h>

#include "jl_conn.h"
#include "rt_jsack.h"

/* Push a message userdata; it takes ownership of m. c (may be NULL) is the
 * connection it came from: msg:respond and the acks publish on it. */
typedef struct lmsg lmsg;
void jl_msg_push(lua_State *L, natsMsg *m, jl_conn *c);
lmsg *jl_msg_push_ud(lua_State *L, natsMsg *m, jl_conn *c);
natsMsg *jl_msg_check(lua_State *L, int idx, const char *fname);

lmsg *jl_msg_check_ud(lua_State *L, int idx, const char *fname);

/* Free a message this thread owns, here and now. natsMsg_Destroy hands
 * every message to cnats' garbage-collector thread instead: a global lock,
 * often a wake-up, and a free() on another thread (the malloc arena's lock
 * then bounces between the two threads) per message. natsMsg_free is what
 * that thread calls; cnats 3.4.1 exports it without declaring it. Only for
 * messages that cnats keeps no pointer to: ones it handed over
 * (NextMsg, a callback) or that we created and it has copied out. */
void natsMsg_free(void *object);
static inline void jl_msg_free(natsMsg *m)
{
    if (m)
        natsMsg_free(m);
}

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
/* Outputs linked to u are still waiting for their PubAck: they own its ack. */
int jl_msg_handed_off(lmsg *u);

/* The message userdata at idx, or NULL when it is not one. */
lmsg *jl_msg_test_ud(lua_State *L, int idx);

/* The fields of a JetStream "$JS.ACK..." reply subject: rt_jsack.h. These
 * names stay for ljs_pull.c and ljs_consume.c until they call
 * rt_ack_subject themselves. */
typedef rt_ack_meta jl_ack_meta;
enum {
    JL_ACK_STREAM = RT_ACK_STREAM,
    JL_ACK_CONSUMER = RT_ACK_CONSUMER,
    JL_ACK_DELIVERED = RT_ACK_DELIVERED,
    JL_ACK_STREAM_SEQ = RT_ACK_STREAM_SEQ,
    JL_ACK_CONSUMER_SEQ = RT_ACK_CONSUMER_SEQ,
    JL_ACK_TIMESTAMP = RT_ACK_TIMESTAMP,
    JL_ACK_PENDING = RT_ACK_PENDING
};
#define jl_ack_parse rt_ack_subject

#endif
