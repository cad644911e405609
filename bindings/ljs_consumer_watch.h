/*
 * ljs_consumer_watch.h - what the pull engine (ljs_pull.c) learns about its
 * consumer from the server, besides the messages: consumer info (asked when
 * the heartbeats stop, on no-responders, and periodically) and the
 * MAX_DELIVERIES advisories of the consumer.
 *
 * Consumer info goes through the connection's request mux (jl_conn_reply_add),
 * so it never blocks the loop. Advisories come on a synchronous
 * subscription that the engine pumps after each read, like its messages.
 *
 * Lifetime: owned by one engine; jl_cwatch_free cancels a request that is
 * out, so no callback reaches a freed engine. The info callback may free
 * the watch (a terminal answer closes the engine): the watch touches
 * nothing after calling it.
 */
#ifndef JETLUA_LJS_CONSUMER_WATCH_H
#define JETLUA_LJS_CONSUMER_WATCH_H

#include "lconn.h"
#include "lmux.h"
#include "rt_pull.h"

typedef struct jl_cwatch jl_cwatch;
/* ci: the answer, parsed (rt_pull_info_parse), or why there is none */
typedef void (*jl_cwatch_info_fn)(void *owner, const rt_pull_info *ci);
typedef void (*jl_cwatch_maxdel_fn)(void *owner, int64_t stream_seq, int64_t deliveries);

/* info_subj: "<api prefix>CONSUMER.INFO.<stream>.<consumer>"; adv_subj: the
 * MAX_DELIVERIES advisory subject, or NULL for none. */
jl_cwatch *jl_cwatch_new(jl_conn *c, const char *info_subj, const char *adv_subj, jl_cwatch_info_fn info,
                         jl_cwatch_maxdel_fn maxdel, void *owner);

/* Ask for consumer info (timeout in ms) unless a request is already out:
 * 1 = asked or already out, 0 = cannot (connection closed). */
int jl_cwatch_ask(jl_cwatch *w, uint64_t timeout_ms);
int jl_cwatch_asking(const jl_cwatch *w);

/* 1 when the advisory subscription has messages waiting (or is closed). */
int jl_cwatch_pending(jl_cwatch *w);
/* Hand queued advisories to the owner (loop thread). */
void jl_cwatch_pump(jl_cwatch *w);

/* Cancel what is out, unsubscribe, free. NULL is fine. */
void jl_cwatch_free(jl_cwatch *w);

#endif
