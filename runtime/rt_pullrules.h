/*
 * rt_pullrules.h - the pull engine's pure rules (no Lua, no I/O): what a
 * status message means, the limits a 409 names, Go durations, the default
 * redelivery schedule of a failed message. See PROTOCOL.md §1.
 */
#ifndef JETLUA_RT_PULLRULES_H
#define JETLUA_RT_PULLRULES_H

#include <stdint.h>

typedef enum {
    RT_PS_HEARTBEAT = 0,   /* 100: liveness only */
    RT_PS_END,             /* 404, 408: the request is over */
    RT_PS_MAX_BYTES,       /* 409 Message Size Exceeds MaxBytes */
    RT_PS_LEADER_CHANGE,   /* 409 Leadership Change: every request is gone */
    RT_PS_SHUTDOWN,        /* 409 Server Shutdown: re-pulled after the reconnect */
    RT_PS_LIMIT_BATCH,     /* 409 Exceeded MaxRequestBatch of N */
    RT_PS_LIMIT_EXPIRES,   /* 409 Exceeded MaxRequestExpires of D */
    RT_PS_LIMIT_BYTES,     /* 409 Exceeded MaxRequestMaxBytes of N */
    RT_PS_MAX_WAITING,     /* 409 Exceeded MaxWaiting */
    RT_PS_BAD_REQUEST,     /* 400: terminal */
    RT_PS_DELETED,         /* 409 Consumer Deleted: terminal */
    RT_PS_PUSH,            /* 409 Consumer is push based: terminal */
    RT_PS_OTHER
} rt_pull_status;

rt_pull_status rt_pull_classify(int code, const char *desc);

/* The limit a 409 Exceeded* names: "... of 10" -> 10, "... of 1m30s" ->
 * 90000 (ms, for MaxRequestExpires). 0, or -1 when there is none. */
int rt_pull_limit(rt_pull_status st, const char *desc, int64_t *out);

/* A Go duration ("1.5s", "1m0s", "250ms", "2h", "100µs") in ms, rounded
 * down: 0, or -1 when it does not parse. */
int rt_go_duration_ms(const char *s, int64_t *ms);

/* The delay before redelivering a message whose handler failed on its
 * n-th delivery (n >= 1): 1 s, 5 s, 15 s, then 30 s. */
uint64_t rt_pull_redelivery_ms(long n);

#endif
