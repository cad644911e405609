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
