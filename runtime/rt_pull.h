/*
 * rt_pull.h - the pull-consumer engine's state machine, without Lua or
 * cnats: the table of pull requests out, the window (how much to hold),
 * the refill rule, what a status message means for the requests, the
 * back-off, the heartbeat watchdog, the consumer's request limits, the
 * redelivery schedule of failed handlers, and parsing what the server says
 * (status texts, Go durations, consumer info). The bindings
 * (bindings/ljs_pull.c) own the subscription, the timers, the buffered
 * messages and the Lua side, and ask this module what to do.
 * See PROTOCOL.md §1-2 and DESIGN.md "Measured facts".
 *
 * Accounting:
 *   held = outstanding (asked, not arrived) + buffered + running handlers
 * stays <= the window (and the bytes likewise with max_bytes). When held
 * drops to the refill threshold, pulls ask for the difference: few, large
 * requests, which is what the server is fastest with. Each request is kept
 * with its expiry, because nats-server 2.9.10 can drop an expired request
 * without a 408; arrivals are credited to the oldest request (messages do
 * not say which request they answer, statuses do).
 *
 * Times are milliseconds of a monotonic clock the caller passes in (`now`).
 */
#ifndef JETLUA_RT_PULL_H
#define JETLUA_RT_PULL_H

#include <stddef.h>
#include <stdint.h>

#define RT_PULL_MAX_REQS 16           /* requests out at once */
#define RT_PULL_EXPIRY_GRACE_MS 1000  /* a request past its expiry by this much is written off */
#define RT_PULL_BACKOFF_MIN_MS 1000   /* back-off: 1 s, doubling ... */
#define RT_PULL_BACKOFF_MAX_MS 30000  /* ... up to 30 s */
#define RT_PULL_INFO_PERIOD_MS 10000  /* consumer info: lag gauges, limits, a deleted consumer noticed */
#define RT_PULL_SLOW_START_MIN 16     /* slow start: max(4 x concurrency, this) */
/* Without max_bytes, consume and messages hold at most about this many
 * bytes (by the average message size seen): nats-server disconnects a
 * client it has more than max_pending (64 MiB by default) queued for as a
 * slow consumer, and 4000 large messages would not fit in memory anyway. */
#define RT_PULL_WINDOW_BYTES (32LL * 1024 * 1024)

typedef enum { RT_PULL_CONSUME = 0, RT_PULL_MESSAGES, RT_PULL_FETCH } rt_pull_mode;

/* ---- what the server says ---- */

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

/* One consumer info answer (or why there is none). */
typedef struct rt_pull_info {
    const char *code;          /* NULL: the consumer exists. Gone (terminal):
                                  "consumer_deleted", "stream_not_found".
                                  Unknown: "timeout", "closed", "no_responders",
                                  "api_error", "bad_response" */
    int         gone;          /* code says the consumer or its stream is gone */
    char        detail[200];
    /* when code == NULL (-1: not in the answer) */
    int64_t     num_pending, num_ack_pending;
    int64_t     max_batch, max_bytes, max_expires_ms;   /* 0: no limit */
    int64_t     ack_wait_ms, max_deliver;
} rt_pull_info;

/* Parse a $JS.API.CONSUMER.INFO reply (JSON) into ci. */
void rt_pull_info_parse(const char *json, size_t len, rt_pull_info *ci);

/* ---- the engine ---- */

typedef struct rt_pull_req {
    uint64_t id;          /* the reply subject is "<prefix><id>" */
    int64_t  left;        /* messages still owed (estimate: arrivals are not labelled) */
    int64_t  bytes;       /* max_bytes asked, less what arrived (0: none) */
    uint64_t deadline;    /* when it expires at the server (0: never) */
    int64_t  ask_msgs;    /* what it asked for, kept to tell a 409 Exceeded */
    int64_t  ask_bytes;   /*   MaxRequest* for a request sent before we */
    uint64_t ask_exp_ms;  /*   learned the limit from an earlier 409 */
} rt_pull_req;

/* Options, as the script gave them (jetlua/pull.lua fills the defaults). */
typedef struct rt_pull_opts {
    int64_t  max_msgs, max_bytes;       /* max_bytes 0: count messages only */
    int64_t  thr_msgs, thr_bytes;       /* refill thresholds */
    uint64_t expires_ms, hb_ms;         /* per request; hb 0: no heartbeats */
    uint64_t wpi_ms;                    /* +WPI period for running handlers (0: off) */
    uint64_t ack_wait_ms;               /* the consumer's (0: acks off): bounds the window */
    int      concurrency;               /* handlers at once (consume) */
    int      no_wait;                   /* fetch */
    int64_t  lim_batch, lim_bytes;      /* the consumer's request limits (0: none) */
    uint64_t lim_expires_ms;
} rt_pull_opts;

typedef struct rt_pull {
    rt_pull_mode mode;
    /* options (rt_pull_configure) */
    int64_t  max_msgs, max_bytes, thr_msgs, thr_bytes;
    uint64_t expires_ms, hb_ms, wpi_ms, ack_wait_ms;
    int      concurrency, no_wait;
    /* the consumer's request limits (0: none) and what a request then carries */
    int64_t  lim_batch, lim_bytes;
    uint64_t lim_expires_ms;
    uint64_t rexp_ms, rhb_ms;  /* expires and idle_heartbeat of the next request */
    uint64_t tick_ms;          /* how often the owner should call rt_pull_tick */
    /* the window (consume) */
    double   handler_us;       /* moving average of a handler's run time (0: none yet) */
    int64_t  ramp;             /* slow start: +1 per handled message (doubles per window) up to max */
    double avg_size;           /* moving average of a message's payload bytes (0: none yet) */
    /* requests out */
    rt_pull_req reqs[RT_PULL_MAX_REQS];
    int      nreqs;
    uint64_t next_id;
    int64_t  out_msgs, out_bytes;
    /* back-off */
    uint64_t backoff_until;    /* no pull before (0: none) */
    uint32_t backoff_ms;       /* the last one (0: reset by a message) */
    /* liveness */
    uint64_t last_in;          /* anything arrived, or the first request went out */
    uint64_t last_info;        /* consumer info asked or answered */
    int      missed_streak;    /* heartbeat checks failed in a row */
    int      probe;            /* consumer info asked after missed heartbeats, no pull until it
                                  answers (2: the first of a streak) */
    /* counters */
    uint64_t pulls, hb_missed;
} rt_pull;

/* A fresh engine (zeroed) in mode, its clocks at now. */
void rt_pull_init(rt_pull *w, rt_pull_mode mode, uint64_t now);

/* Take options (at start and on a reload); the slow start begins at
 * max(4 x concurrency, 16) the first time. Limits are applied. */
void rt_pull_configure(rt_pull *w, const rt_pull_opts *o);

/* What a request carries within the consumer's limits (expires at most
 * max_request_expires, the heartbeat at most half of that: the server
 * refuses more) and how often to tick; call after changing lim_*.
 * Returns 1 when tick_ms changed. */
int rt_pull_apply_limits(rt_pull *w);

/* The window for consume: max_messages, but during slow start no more
 * than the ramp, and no more than running handlers get through in half
 * the consumer's ack_wait at their measured pace (at least concurrency),
 * so buffered messages never sit until they are redelivered
 * (nats.go #1929). Consume and messages without max_bytes: also no more
 * than RT_PULL_WINDOW_BYTES at the average message size (at least 1).
 * Fetch: max_messages. */
int64_t rt_pull_window(const rt_pull *w);

/* A handler finished after us microseconds (< 0: not timed): the moving
 * average moves, the slow start grows by one. */
void rt_pull_handled(rt_pull *w, double us);

/* One pull request to send. */
typedef struct rt_pull_ask { int64_t batch, bytes; } rt_pull_ask;

/* Ask for more? held = buffered + running (and their bytes); returns how
 * many requests to send (0: none), written to asks. Nothing while backing
 * off or while a heartbeat probe is out. The window is asked for in one
 * request, or several when the consumer caps a request's batch or bytes. */
int rt_pull_refill(rt_pull *w, int64_t buffered, int64_t running, int64_t buffered_bytes, uint64_t now,
                   rt_pull_ask asks[RT_PULL_MAX_REQS]);

/* Prepare the next request (its id is new; it is not counted yet): NULL
 * when the table is full or batch <= 0. Then write its body, send it, and
 * when it went out call rt_pull_req_sent. */
rt_pull_req *rt_pull_req_prepare(rt_pull *w, int64_t batch, int64_t bytes, uint64_t now);
/* The JSON body of request r: its length (the text is cut to size). */
size_t rt_pull_req_body(const rt_pull *w, const rt_pull_req *r, char *buf, size_t size);
void rt_pull_req_sent(rt_pull *w, uint64_t now);

int  rt_pull_req_find(const rt_pull *w, uint64_t id);
/* Forget request i (what it still owed comes off the books). */
void rt_pull_req_remove(rt_pull *w, int i);
/* Forget every request (a reconnect, a reset, stop). */
void rt_pull_reset(rt_pull *w);

/* Something arrived (a message, a status, a no-responders). */
void rt_pull_heard(rt_pull *w, uint64_t now);
/* A user message of size bytes (counted only with max_bytes) arrived. */
void rt_pull_on_msg(rt_pull *w, int64_t size);
/* Its payload had this many bytes: the average the window is sized by. */
void rt_pull_sized(rt_pull *w, int64_t payload);

/* What the owner does after a status or a no-responders. */
typedef enum {
    RT_PA_NONE = 0,   /* nothing: a heartbeat, or a request already written off */
    RT_PA_END,        /* the request is over, off the books; pull again when there is room */
    RT_PA_RESET,      /* every request is gone (leadership change); pull again */
    RT_PA_ADAPT,      /* a 409 named a lower limit, now applied: say so, pull within it */
    RT_PA_BACKOFF,    /* report code (and detail), no pull for backoff_ms */
    RT_PA_TERMINAL,   /* report code, stop; nak: buffered messages are nak'd (else dropped) */
    RT_PA_FINISH      /* fetch: it is over; hand over what arrived, with code (NULL: no error) */
} rt_pull_act;

typedef struct rt_pull_verdict {
    rt_pull_act act;
    const char *code;       /* the code the script sees, or NULL */
    const char *detail;     /* a sentence for it, or NULL: "<status> <description>" */
    int         nak;        /* TERMINAL */
    uint32_t    backoff_ms; /* BACKOFF */
} rt_pull_verdict;

/* A status message arrived: code and desc (its Status and Description),
 * id the request its subject names (0: none of ours), pending_msgs its
 * Nats-Pending-Messages header (-1: none), fetched the messages a fetch
 * got so far, idle: nothing buffered and no handler running. Updates the
 * requests and the back-off and says what to do. */
void rt_pull_on_status(rt_pull *w, int code, const char *desc, uint64_t id, int64_t pending_msgs,
                       int64_t fetched, int idle, uint64_t now, rt_pull_verdict *v);

/* The pull had no responders (503): every request is gone. */
void rt_pull_on_no_responders(rt_pull *w, uint64_t now, rt_pull_verdict *v);

/* Back off: 1 s, doubling to 30 s until a message resets it. Returns the delay. */
uint32_t rt_pull_backoff(rt_pull *w, uint64_t now);

/* The periodic check: requests the server forgot (past their expiry plus
 * a grace) are written off; returns 1 when two heartbeat intervals passed
 * in silence while a request was out (connected: the connection is up),
 * counted in hb_missed; the owner reports it, asks for consumer info, and
 * calls rt_pull_probe. */
int rt_pull_tick(rt_pull *w, uint64_t now, int connected);

/* After missed heartbeats: asked says whether consumer info was asked for.
 * Asked: no pull until it answers. Not asked: the first miss of a streak
 * resets the requests (pull afresh once; then just wait). */
void rt_pull_probe(rt_pull *w, int asked);

/* Consumer info answered (or failed): its limits and ack_wait are taken,
 * and after missed heartbeats the requests are written off (the server
 * answered but sent no heartbeat: they are lost). Returns 1 when tick_ms
 * changed. */
int rt_pull_info_apply(rt_pull *w, const rt_pull_info *ci, uint64_t now);

/* 1 when the periodic consumer info is due (it is then counted as asked). */
int rt_pull_info_due(rt_pull *w, uint64_t now);

/* The connection came back: pulls did not survive it; pull afresh. */
void rt_pull_reconnected(rt_pull *w, uint64_t now);

#endif
