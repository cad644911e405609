/*
 * rt_pubwin.h - pure accounting for publishing (no Lua, no cnats, no libuv):
 *
 *  - rt_pubwin: the async publish window, bounded in messages AND bytes. A
 *    publish enters when both have room (a message larger than the whole
 *    byte bound still enters an empty window, else it could never go); a
 *    publisher that found the window full is woken with hysteresis, once a
 *    quarter of it is free (or its message fits), so it publishes a batch
 *    instead of one message per ack.
 *
 *  - rt_pubq: the entries of an async publisher - which are on the wire
 *    (ordered by ack deadline), which are held for a later send (FIFO: the
 *    connection is down, or a retry waits for its delay) - and what a
 *    failed attempt leads to: re-armed (its first copy still waits in the
 *    write buffer, a resend would only add a second copy), retried (held
 *    again: timeout, no_responders and disconnected are retryable while
 *    tries are left and the publisher and connection live), or failed.
 *
 *  - rt_wtrack: where the connection's write buffer stands in the byte
 *    stream. `written` counts bytes that left the buffer (for the socket);
 *    a message's end position is `written + buffered` right after it was
 *    appended; it is still waiting in the buffer while `written` has not
 *    reached that position. The epoch changes when the buffer is dropped
 *    (a disconnect): positions of older epochs say nothing any more.
 *    Concurrent appends by other threads (a PING) can only make `written`
 *    lag, never run ahead: "still buffered" may be said of a message that
 *    just left, never "gone" of one that is still there; and an empty
 *    buffer always reads as "gone".
 */
#ifndef JETLUA_RT_PUBWIN_H
#define JETLUA_RT_PUBWIN_H

#include <stdint.h>

typedef struct rt_pubwin {
    int      max_msgs;    /* >= 1 */
    uint64_t max_bytes;   /* >= 1 */
    int      msgs;
    uint64_t bytes;
    uint64_t want;        /* size of the publish that last found it full */
} rt_pubwin;

void rt_pubwin_init(rt_pubwin *w, int max_msgs, uint64_t max_bytes);
/* 1 if a publish of `size` bytes may enter now; 0 records it as wanted. */
int  rt_pubwin_admit(rt_pubwin *w, uint64_t size);
void rt_pubwin_add(rt_pubwin *w, uint64_t size);
void rt_pubwin_del(rt_pubwin *w, uint64_t size);
/* 1 when the window has room enough to wake a blocked publisher. */
int  rt_pubwin_resume(const rt_pubwin *w);
/* 1 when a publish could not enter right now (for a wait_slot call). */
int  rt_pubwin_full(const rt_pubwin *w);

/* ---- rt_pubq ---- */

enum { RT_PUBENT_NEW = 0, RT_PUBENT_SENT, RT_PUBENT_HELD };

/* One publish waiting for its PubAck (embedded in the binding's entry). */
typedef struct rt_pubent rt_pubent;
struct rt_pubent {
    uint64_t token;      /* its reply subject's token */
    uint64_t size;       /* its bytes in the window */
    uint64_t deadline;   /* monotonic ms: the ack timeout of this attempt ends */
    uint64_t not_before; /* held: the earliest (re)send */
    uint64_t wend;       /* where it ends in the connection's write stream */
    uint32_t wepoch;     /* ... in this epoch of the write buffer (0: never sent) */
    uint32_t timeout_ms;
    int tries_left; /* retries still allowed */
    int where;      /* RT_PUBENT_* */
    rt_pubent *next, *prev;
};

typedef struct rt_pubq {
    rt_pubwin win;               /* messages and bytes of every entry */
    rt_pubent *sent, *sent_tail; /* on the wire, ordered by deadline */
    rt_pubent *held, *held_tail; /* waiting for a (re)send, FIFO */
    int pending;                 /* entries entered and not removed */
} rt_pubq;

void rt_pubq_init(rt_pubq *q, int max_msgs, uint64_t max_bytes);
/* A new entry enters the window (rt_pubwin_admit(&q->win, size) said yes);
 * it is in no list until rt_pubq_sent or rt_pubq_hold. */
void rt_pubq_enter(rt_pubq *q, rt_pubent *e, uint64_t size, uint32_t timeout_ms, int tries);
/* On the wire (again): into the sent list; its ack clock starts at now. */
void rt_pubq_sent(rt_pubq *q, rt_pubent *e, uint64_t now);
/* Held for a send at now + delay_ms; its ack clock ends timeout_ms later. */
void rt_pubq_hold(rt_pubq *q, rt_pubent *e, uint64_t now, uint32_t delay_ms);
/* Leaves for good (acked or failed): out of its list and the window. */
void rt_pubq_remove(rt_pubq *q, rt_pubent *e);

/* The first sent entry whose ack timeout ended, or NULL. */
rt_pubent *rt_pubq_expired(const rt_pubq *q, uint64_t now);
/* A held entry: 1 when it may be sent now / when its ack timeout ended. */
int rt_pubq_ready(const rt_pubent *e, uint64_t now);
int rt_pubq_held_expired(const rt_pubent *e, uint64_t now);

/* 1 for the failures a retry may cure: timeout, no_responders, disconnected. */
int rt_pub_retryable(const char *code);

enum { RT_PUB_FAIL = 0, RT_PUB_REARM, RT_PUB_RETRY };
typedef struct rt_pubfacts {
    int can_retry; /* this failure allows a retry at all (not an API error, not a stop) */
    int open;      /* the publisher still publishes (not finished) */
    int closed;    /* the connection is closed for good */
    int in_buffer; /* the entry's last copy still waits in the write buffer */
} rt_pubfacts;
/* An attempt of e failed with code: RT_PUB_REARM (a timeout while its copy
 * still waits in the write buffer: its clock restarts, counts as a try),
 * RT_PUB_RETRY (held again; no_responders waits retry_delay_ms first), or
 * RT_PUB_FAIL (for good: the caller removes it). */
int rt_pubq_failed(rt_pubq *q, rt_pubent *e, const char *code, const rt_pubfacts *f, uint64_t now,
                   uint32_t retry_delay_ms);
/* The detail of a timeout: whether it was sent, and whether it may still
 * be stored (in_buffer: its copy still waits in the write buffer). */
const char *rt_pubq_timeout_text(const rt_pubent *e, int in_buffer);

/* ---- rt_wtrack ---- */

typedef struct rt_wtrack {
    uint64_t written;     /* bytes that left the write buffer, ever */
    uint32_t epoch;       /* bumped when the buffer is dropped */
} rt_wtrack;

/* Around one write attempt: buffered bytes before and after (< 0: unknown). */
void     rt_wtrack_wrote(rt_wtrack *t, int before, int after);
/* The buffer was dropped: forget every position. */
void     rt_wtrack_drop(rt_wtrack *t);
/* End position of what is buffered now (the message just appended). */
uint64_t rt_wtrack_end(const rt_wtrack *t, int buffered);
/* 1 while a message of (epoch, end) still waits in the buffer. */
int      rt_wtrack_buffered(const rt_wtrack *t, uint32_t epoch, uint64_t end, int buffered);

#endif
