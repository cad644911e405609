/*
 * test_pull.c - the pull engine's state machine (rt_pull): every status
 * and header combination -> action, the window (slow start, growth, the
 * ack_wait bound, refill), request accounting (pending headers, completed
 * batches, expiry), limits, the back-off, the heartbeat watchdog, and the
 * parsers (status texts, Go durations, consumer info).
 */
#include "check.h"
#include "rt_pull.h"

#include <string.h>

#define NOW 1000000

static rt_pull_opts opts(int64_t max_msgs, int concurrency)
{
    rt_pull_opts o;
    memset(&o, 0, sizeof o);
    o.max_msgs = max_msgs;
    o.thr_msgs = max_msgs / 2;
    o.expires_ms = 30000;
    o.hb_ms = 15000;
    o.concurrency = concurrency;
    return o;
}

static void engine(rt_pull *w, rt_pull_mode mode, int64_t max_msgs, int concurrency)
{
    rt_pull_opts o = opts(max_msgs, concurrency);
    rt_pull_init(w, mode, NOW);
    rt_pull_configure(w, &o);
}

/* send n requests of batch (and bytes) each */
static void send(rt_pull *w, int n, int64_t batch, int64_t bytes)
{
    for (int i = 0; i < n; i++) {
        CHECK(rt_pull_req_prepare(w, batch, bytes, NOW) != NULL);
        rt_pull_req_sent(w, NOW);
    }
}

/* refill and send what it asks; returns the messages asked for */
static int64_t refill(rt_pull *w, int64_t buffered, int64_t running, int64_t bbytes, uint64_t now)
{
    rt_pull_ask asks[RT_PULL_MAX_REQS];
    int n = rt_pull_refill(w, buffered, running, bbytes, now, asks);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        CHECK(rt_pull_req_prepare(w, asks[i].batch, asks[i].bytes, now) != NULL);
        rt_pull_req_sent(w, now);
        total += asks[i].batch;
    }
    return total;
}

static void test_texts(void)
{
    static const struct { int code; const char *desc; rt_pull_status st; } cls[] = {
        {100, "Idle Heartbeat", RT_PS_HEARTBEAT},
        {100, "FlowControl Request", RT_PS_HEARTBEAT},
        {404, "No Messages", RT_PS_END},
        {408, "Request Timeout", RT_PS_END},
        {408, "Interest Expired", RT_PS_END},
        {400, "Bad Request - heartbeat value too large", RT_PS_BAD_REQUEST},
        {409, "Consumer Deleted", RT_PS_DELETED},
        {409, "Consumer is push based", RT_PS_PUSH},
        {409, "Leadership Change", RT_PS_LEADER_CHANGE},
        {409, "Server Shutdown", RT_PS_SHUTDOWN},
        {409, "Message Size Exceeds MaxBytes", RT_PS_MAX_BYTES},
        {409, "Exceeded MaxRequestBatch of 10", RT_PS_LIMIT_BATCH},
        {409, "Exceeded MaxRequestExpires of 1s", RT_PS_LIMIT_EXPIRES},
        {409, "Exceeded MaxRequestMaxBytes of 1024", RT_PS_LIMIT_BYTES},
        {409, "Exceeded MaxWaiting", RT_PS_MAX_WAITING},
        {409, "Something New", RT_PS_OTHER},
        {409, NULL, RT_PS_OTHER},
        {503, NULL, RT_PS_OTHER},
    };
    int64_t v = 0;
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++)
        CHECK(rt_pull_classify(cls[i].code, cls[i].desc) == cls[i].st);

    CHECK(rt_pull_limit(RT_PS_LIMIT_BATCH, "Exceeded MaxRequestBatch of 10", &v) == 0 && v == 10);
    CHECK(rt_pull_limit(RT_PS_LIMIT_BYTES, "Exceeded MaxRequestMaxBytes of 1024", &v) == 0 && v == 1024);
    CHECK(rt_pull_limit(RT_PS_LIMIT_EXPIRES, "Exceeded MaxRequestExpires of 1m30s", &v) == 0 && v == 90000);
    CHECK(rt_pull_limit(RT_PS_LIMIT_EXPIRES, "Exceeded MaxRequestExpires of 500ms", &v) == 0 && v == 500);
    CHECK(rt_pull_limit(RT_PS_LIMIT_BATCH, "Exceeded MaxRequestBatch", &v) == -1);
    CHECK(rt_pull_limit(RT_PS_LIMIT_BATCH, "Exceeded MaxRequestBatch of x", &v) == -1);
    CHECK(rt_pull_limit(RT_PS_LIMIT_BATCH, "Exceeded MaxRequestBatch of 0", &v) == -1);
    CHECK(rt_pull_limit(RT_PS_MAX_WAITING, "Exceeded MaxWaiting of 3", &v) == -1);
    CHECK(rt_pull_limit(RT_PS_LIMIT_EXPIRES, "Exceeded MaxRequestExpires of 0s", &v) == -1);

    CHECK(rt_go_duration_ms("1s", &v) == 0 && v == 1000);
    CHECK(rt_go_duration_ms("1.5s", &v) == 0 && v == 1500);
    CHECK(rt_go_duration_ms("250ms", &v) == 0 && v == 250);
    CHECK(rt_go_duration_ms("1m0s", &v) == 0 && v == 60000);
    CHECK(rt_go_duration_ms("2h3m4s", &v) == 0 && v == 7384000);
    CHECK(rt_go_duration_ms("1500us", &v) == 0 && v == 1);
    CHECK(rt_go_duration_ms("1500\xc2\xb5s", &v) == 0 && v == 1);
    CHECK(rt_go_duration_ms("999999ns", &v) == 0 && v == 0);
    CHECK(rt_go_duration_ms("0", &v) == 0 && v == 0);
    CHECK(rt_go_duration_ms("", &v) == -1);
    CHECK(rt_go_duration_ms("5", &v) == -1);
    CHECK(rt_go_duration_ms("5x", &v) == -1);
    CHECK(rt_go_duration_ms("-1s", &v) == -1);

    CHECK(rt_pull_redelivery_ms(0) == 1000);
    CHECK(rt_pull_redelivery_ms(1) == 1000);
    CHECK(rt_pull_redelivery_ms(2) == 5000);
    CHECK(rt_pull_redelivery_ms(3) == 15000);
    CHECK(rt_pull_redelivery_ms(4) == 30000);
    CHECK(rt_pull_redelivery_ms(1000) == 30000);
}

static void test_info_parse(void)
{
    static const char ok[] =
        "{\"stream_name\":\"S\",\"name\":\"C\",\"config\":{\"ack_wait\":30000000000,\"max_deliver\":5,"
        "\"max_batch\":10,\"max_expires\":2000000000,\"max_bytes\":4096},\"num_pending\":7,\"num_ack_pending\":3}";
    static const char gone[] = "{\"error\":{\"code\":404,\"err_code\":10014,\"description\":\"consumer not found\"}}";
    static const char nostream[] = "{\"error\":{\"code\":404,\"err_code\":10059,\"description\":\"stream not found\"}}";
    static const char other[] = "{\"error\":{\"code\":500,\"err_code\":10999}}";
    rt_pull_info ci;

    rt_pull_info_parse(ok, sizeof ok - 1, &ci);
    CHECK(ci.code == NULL && !ci.gone);
    CHECK(ci.num_pending == 7 && ci.num_ack_pending == 3);
    CHECK(ci.max_batch == 10 && ci.max_bytes == 4096 && ci.max_expires_ms == 2000);
    CHECK(ci.ack_wait_ms == 30000 && ci.max_deliver == 5);

    rt_pull_info_parse(gone, sizeof gone - 1, &ci);
    CHECK(ci.gone && strcmp(ci.code, "consumer_deleted") == 0);
    CHECK(strcmp(ci.detail, "consumer not found (err_code 10014)") == 0);
    rt_pull_info_parse(nostream, sizeof nostream - 1, &ci);
    CHECK(ci.gone && strcmp(ci.code, "stream_not_found") == 0);
    rt_pull_info_parse(other, sizeof other - 1, &ci);
    CHECK(!ci.gone && strcmp(ci.code, "api_error") == 0);
    CHECK(strcmp(ci.detail, "JetStream API error (err_code 10999)") == 0);
    rt_pull_info_parse("{}", 2, &ci);
    CHECK(!ci.gone && strcmp(ci.code, "bad_response") == 0);
    rt_pull_info_parse("{\"config\":{}}", 13, &ci);
    CHECK(ci.code == NULL && ci.num_pending == -1 && ci.ack_wait_ms == -1 && ci.max_batch == 0);
}

/* Slow start begins at max(4 x concurrency, 16): a handler concurrency of
 * 10 may hold 40 before its handlers have been timed. (It once read the
 * concurrency after computing the ramp, so it always began at 16.) */
static void test_slow_start(void)
{
    static const struct { int concurrency; int64_t max, window; } t[] = {
        {1, 4000, 16}, {3, 4000, 16}, {4, 4000, 16}, {5, 4000, 20}, {10, 4000, 40},
        {100, 4000, 400}, {10, 30, 30}, {0, 4000, 16},
    };
    rt_pull w;
    rt_pull_opts o;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        engine(&w, RT_PULL_CONSUME, t[i].max, t[i].concurrency);
        CHECK(rt_pull_window(&w) == t[i].window);
        if (rt_pull_window(&w) != t[i].window)
            fprintf(stderr, "  concurrency %d: window %lld\n", t[i].concurrency, (long long)rt_pull_window(&w));
    }
    /* messages and fetch: no slow start */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    CHECK(rt_pull_window(&w) == 4000);

    /* growth: +1 per handled message, up to max_messages */
    engine(&w, RT_PULL_CONSUME, 100, 2);
    for (int i = 0; i < 10; i++)
        rt_pull_handled(&w, -1);
    CHECK(rt_pull_window(&w) == 26);
    for (int i = 0; i < 200; i++)
        rt_pull_handled(&w, -1);
    CHECK(rt_pull_window(&w) == 100);
    /* a reload keeps the ramp reached, even with a new concurrency */
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    for (int i = 0; i < 5; i++)
        rt_pull_handled(&w, -1);
    o = opts(4000, 50);
    rt_pull_configure(&w, &o);
    CHECK(w.ramp == 21 && w.concurrency == 50);
}

/* Slow handlers: the window holds what they get through in ack_wait / 2. */
static void test_ack_wait_bound(void)
{
    static const struct { int concurrency; uint64_t ack_wait_ms; double handler_us; int64_t window; } t[] = {
        {1, 3000, 40000, 37},          /* 1.5 s / 40 ms */
        {4, 3000, 40000, 150},
        {1, 3000, 1, 4000},            /* fast handlers: max_messages */
        {3, 1000, 10e6, 3},            /* slower than ack_wait: at least concurrency */
        {1, 0, 40000, 4000},           /* no acks: no bound */
    };
    rt_pull w;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rt_pull_opts o = opts(4000, t[i].concurrency);
        o.ack_wait_ms = t[i].ack_wait_ms;
        rt_pull_init(&w, RT_PULL_CONSUME, NOW);
        rt_pull_configure(&w, &o);
        w.ramp = 4000;                               /* past slow start */
        rt_pull_handled(&w, t[i].handler_us);        /* the first sample is the average */
        CHECK(rt_pull_window(&w) == t[i].window);
    }
    /* the average moves by a tenth of each sample */
    rt_pull_handled(&w, 40000 + 10 * 1000);
    CHECK(w.handler_us > 40999 && w.handler_us < 41001);
    rt_pull_init(&w, RT_PULL_CONSUME, NOW);
    rt_pull_handled(&w, 0);
    CHECK(w.handler_us == 0.001);                    /* never 0: 0 means "not timed yet" */
}

/* Large messages without max_bytes: the window holds about 32 MiB at the
 * average size seen, so nats-server never queues more than its max_pending
 * (64 MiB) for us (1 MiB messages under the defaults got the client cut off
 * as a slow consumer), and the buffer's memory stays bounded. */
static void test_window_bytes(void)
{
    rt_pull w;
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    w.ramp = 4000;
    CHECK(rt_pull_window(&w) == 4000); /* nothing seen yet */
    rt_pull_sized(&w, 128);
    CHECK(rt_pull_window(&w) == 4000); /* small messages: max_messages */
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    w.ramp = 4000;
    rt_pull_sized(&w, 1024 * 1024);
    CHECK(rt_pull_window(&w) == 32);
    CHECK(refill(&w, 0, 0, 0, NOW) == 32); /* one pull of 32, not 4000 */
    rt_pull_sized(&w, 0);                  /* the average moves by a tenth */
    CHECK(rt_pull_window(&w) == 35);
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    rt_pull_sized(&w, 64LL * 1024 * 1024);
    CHECK(rt_pull_window(&w) == 1); /* larger than the bound: one at a time */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    rt_pull_sized(&w, 1024 * 1024);
    CHECK(rt_pull_window(&w) == 32); /* the iterator too */
    engine(&w, RT_PULL_FETCH, 4000, 1);
    rt_pull_sized(&w, 1024 * 1024);
    CHECK(rt_pull_window(&w) == 4000); /* fetch asks for what it was told */
    engine(&w, RT_PULL_CONSUME, 1000000, 1);
    w.max_bytes = 100LL * 1024 * 1024; /* max_bytes given: that bound instead */
    w.ramp = 1000000;
    rt_pull_sized(&w, 1024 * 1024);
    CHECK(rt_pull_window(&w) == 1000000);
}

/* Refill: ask for window - held once held is down to the threshold (half
 * the window during slow start); nothing while backing off or probing. */
static void test_refill(void)
{
    rt_pull w;
    int64_t asked;

    engine(&w, RT_PULL_CONSUME, 4000, 1);
    CHECK(refill(&w, 0, 0, 0, NOW) == 16);          /* slow start */
    CHECK(w.nreqs == 1 && w.out_msgs == 16 && w.pulls == 1);
    CHECK(refill(&w, 0, 0, 0, NOW) == 0);           /* 16 held > 8 */
    for (int i = 0; i < 8; i++) {                   /* 8 arrive and are handled */
        rt_pull_on_msg(&w, 0);
        rt_pull_handled(&w, 10);
    }
    CHECK(w.out_msgs == 8);
    CHECK(refill(&w, 0, 0, 0, NOW) == 16);          /* window 24, held 8 -> 16 more */
    CHECK(w.nreqs == 2 && w.out_msgs == 24);

    /* past slow start: refill at threshold_messages, for the difference */
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    w.ramp = 4000;
    CHECK(refill(&w, 0, 0, 0, NOW) == 4000);
    CHECK(refill(&w, 1999, 0, 0, NOW) == 0);        /* 4000 out + 1999 buffered */
    rt_pull_reset(&w);
    CHECK(refill(&w, 1500, 501, 0, NOW) == 0);      /* 2001 held > 2000 */
    CHECK(refill(&w, 1500, 500, 0, NOW) == 2000);

    /* messages: the full max_messages at once */
    engine(&w, RT_PULL_MESSAGES, 500, 1);
    CHECK(refill(&w, 0, 0, 0, NOW) == 500);
    /* fetch never refills */
    engine(&w, RT_PULL_FETCH, 500, 1);
    CHECK(refill(&w, 0, 0, 0, NOW) == 0);

    /* a consumer's max_request_batch: several requests, at most 16 out */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    w.lim_batch = 100;
    asked = refill(&w, 0, 0, 0, NOW);
    CHECK(asked == 1600 && w.nreqs == RT_PULL_MAX_REQS);
    for (int i = 0; i < w.nreqs; i++)
        CHECK(w.reqs[i].left == 100);
    CHECK(rt_pull_req_prepare(&w, 1, 0, NOW) == NULL);   /* the table is full */
}

/* Bytes mode: every request carries max_bytes within the consumer's
 * limits, and the bytes asked never pass max_bytes - held bytes. */
static void test_refill_bytes(void)
{
    static const struct { int64_t lim_batch, lim_bytes; int nreqs; int64_t batch0, bytes0; } t[] = {
        {0, 0, 1, 1000000, 1000},         /* one request for it all */
        {0, 300, 4, 250000, 300},         /* 300, 300, 300, 100 */
        {0, 10, 16, 62500, 10},           /* the bytes need 100 requests: 16 x 10 */
        {100, 0, 1, 100, 1000},           /* never a request without max_bytes */
        {400000, 0, 1, 400000, 1000},
        {100, 300, 4, 100, 300},
    };
    rt_pull w;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rt_pull_opts o = opts(1000000, 1);
        rt_pull_ask asks[RT_PULL_MAX_REQS];
        int64_t bytes = 0;
        int n;
        o.max_bytes = 1000;
        o.thr_bytes = 500;
        o.lim_batch = t[i].lim_batch;
        o.lim_bytes = t[i].lim_bytes;
        rt_pull_init(&w, RT_PULL_MESSAGES, NOW);
        rt_pull_configure(&w, &o);
        n = rt_pull_refill(&w, 0, 0, 0, NOW, asks);
        CHECK(n == t[i].nreqs);
        CHECK(asks[0].batch == t[i].batch0 && asks[0].bytes == t[i].bytes0);
        for (int j = 0; j < n; j++) {
            CHECK(asks[j].bytes > 0);
            CHECK(t[i].lim_bytes == 0 || asks[j].bytes <= t[i].lim_bytes);
            CHECK(t[i].lim_batch == 0 || asks[j].batch <= t[i].lim_batch);
            bytes += asks[j].bytes;
        }
        CHECK(bytes <= 1000);
        if (n != t[i].nreqs || asks[0].batch != t[i].batch0 || asks[0].bytes != t[i].bytes0 || bytes > 1000)
            fprintf(stderr, "  row %zu: %d requests, first %lld/%lld, %lld bytes\n", i, n,
                    (long long)asks[0].batch, (long long)asks[0].bytes, (long long)bytes);
    }
    /* held bytes: over the threshold, no pull; under it, the rest */
    {
        rt_pull_opts o = opts(1000000, 1);
        o.max_bytes = 1000;
        o.thr_bytes = 500;
        rt_pull_init(&w, RT_PULL_MESSAGES, NOW);
        rt_pull_configure(&w, &o);
        CHECK(refill(&w, 0, 0, 501, NOW) == 0);
        CHECK(refill(&w, 0, 0, 400, NOW) > 0);
        CHECK(w.out_bytes == 600);
        rt_pull_on_msg(&w, 250);                     /* bytes come off the request and the total */
        CHECK(w.out_bytes == 350 && w.reqs[0].bytes == 350 && w.reqs[0].left == 999999);
        rt_pull_on_msg(&w, 400);                     /* its bytes are done: the request is over */
        CHECK(w.nreqs == 0 && w.out_bytes == 0 && w.out_msgs == 0);
    }
}

static void test_requests(void)
{
    rt_pull w;
    rt_pull_req *r;
    char body[256];

    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    r = rt_pull_req_prepare(&w, 500, 0, NOW);
    CHECK(r && r->id == 1 && r->deadline == NOW + 30000 && w.nreqs == 0);
    if (!r)
        return;
    rt_pull_req_body(&w, r, body, sizeof body);
    CHECK(strcmp(body, "{\"batch\":500,\"expires\":30000000000,\"idle_heartbeat\":15000000000}") == 0);
    rt_pull_req_sent(&w, NOW + 5);
    CHECK(w.nreqs == 1 && w.out_msgs == 500 && w.last_in == NOW + 5);
    r = rt_pull_req_prepare(&w, 10, 2048, NOW);
    CHECK(r != NULL);
    if (!r)
        return;
    w.no_wait = 1;
    rt_pull_req_body(&w, r, body, sizeof body);
    CHECK(strcmp(body, "{\"batch\":10,\"expires\":30000000000,\"max_bytes\":2048,\"idle_heartbeat\":15000000000,"
                       "\"no_wait\":true}") == 0);
    CHECK(rt_pull_req_body(&w, r, body, 12) == 11 && strcmp(body, "{\"batch\":10") == 0);
    CHECK(rt_pull_req_prepare(&w, 0, 0, NOW) == NULL);

    /* a completed batch ends its request (2.9.10 sends nothing) */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    send(&w, 2, 3, 0);
    for (int i = 0; i < 3; i++)
        rt_pull_on_msg(&w, 0);
    CHECK(w.nreqs == 1 && w.reqs[0].id == 2 && w.out_msgs == 3);
    /* a message with no request out (a late one) changes nothing */
    rt_pull_reset(&w);
    rt_pull_on_msg(&w, 0);
    CHECK(w.out_msgs == 0 && w.nreqs == 0);

    /* expiry: written off one grace second after the server's deadline */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    send(&w, 1, 100, 0);
    rt_pull_heard(&w, NOW + 30500);                 /* not a heartbeat matter */
    CHECK(rt_pull_tick(&w, NOW + 31000, 1) == 0 && w.nreqs == 1);
    CHECK(rt_pull_tick(&w, NOW + 31001, 1) == 0 && w.nreqs == 0 && w.out_msgs == 0);
    /* expires 0: never */
    {
        rt_pull_opts o = opts(10, 1);
        o.expires_ms = 0;
        o.hb_ms = 0;
        rt_pull_init(&w, RT_PULL_FETCH, NOW);
        rt_pull_configure(&w, &o);
        send(&w, 1, 10, 0);
        CHECK(w.reqs[0].deadline == 0);
        CHECK(rt_pull_tick(&w, NOW + 10000000, 1) == 0 && w.nreqs == 1);
    }
}

/* Every status and header combination -> what to do. */
static void test_statuses(void)
{
    enum { KNOWN = 1, UNKNOWN = 0 };
    static const struct {
        rt_pull_mode mode;
        int code;
        const char *desc;
        int known;            /* the status names a request we have */
        int64_t pending;      /* Nats-Pending-Messages, -1: none */
        int64_t fetched;
        int idle;
        rt_pull_act act;
        const char *err;      /* the code the script sees */
        int nak;
        int nreqs;            /* requests left (of 2 sent: 100 each, 40 arrived) */
        int64_t out;          /* outstanding after */
    } t[] = {
        {RT_PULL_CONSUME, 100, "Idle Heartbeat", KNOWN, -1, 0, 1, RT_PA_NONE, NULL, 0, 2, 160},
        {RT_PULL_CONSUME, 404, "No Messages", KNOWN, -1, 0, 1, RT_PA_END, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 408, "Request Timeout", KNOWN, 100, 0, 1, RT_PA_END, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 408, "Request Timeout", KNOWN, 30, 0, 1, RT_PA_END, NULL, 0, 1, 130},
        {RT_PULL_CONSUME, 408, "Request Timeout", UNKNOWN, 100, 0, 1, RT_PA_NONE, NULL, 0, 2, 160},
        {RT_PULL_CONSUME, 408, "Interest Expired", KNOWN, 0, 0, 1, RT_PA_END, NULL, 0, 1, 160},
        {RT_PULL_CONSUME, 409, "Message Size Exceeds MaxBytes", KNOWN, 100, 0, 1, RT_PA_END, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 409, "Leadership Change", UNKNOWN, -1, 0, 1, RT_PA_RESET, NULL, 0, 0, 0},
        {RT_PULL_CONSUME, 409, "Server Shutdown", KNOWN, 100, 0, 1, RT_PA_END, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 400, "Bad Request - heartbeat value too large", UNKNOWN, -1, 0, 1, RT_PA_TERMINAL,
         "bad_request", 1, 2, 160},
        {RT_PULL_CONSUME, 409, "Consumer Deleted", UNKNOWN, -1, 0, 1, RT_PA_TERMINAL, "consumer_deleted", 0, 2, 160},
        {RT_PULL_MESSAGES, 409, "Consumer is push based", KNOWN, -1, 0, 1, RT_PA_TERMINAL, "push_consumer", 1, 2,
         160},
        {RT_PULL_CONSUME, 409, "Exceeded MaxWaiting", KNOWN, -1, 0, 1, RT_PA_BACKOFF, "limit_exceeded", 0, 1, 60},
        {RT_PULL_CONSUME, 409, "Exceeded MaxRequestBatch of 10", KNOWN, -1, 0, 1, RT_PA_ADAPT, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 409, "Exceeded MaxRequestBatch", KNOWN, -1, 0, 1, RT_PA_BACKOFF, "limit_exceeded", 0, 1,
         60},
        {RT_PULL_CONSUME, 409, "Exceeded MaxRequestExpires of 10s", KNOWN, -1, 0, 1, RT_PA_ADAPT, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 409, "Exceeded MaxRequestMaxBytes of 100", KNOWN, -1, 0, 1, RT_PA_ADAPT, NULL, 0, 1, 60},
        {RT_PULL_CONSUME, 409, "Something New", KNOWN, -1, 0, 1, RT_PA_BACKOFF, "status", 0, 1, 60},
        {RT_PULL_CONSUME, 503, "", KNOWN, -1, 0, 1, RT_PA_BACKOFF, "status", 0, 1, 60},
        /* fetch: any status but a heartbeat ends it */
        {RT_PULL_FETCH, 100, "Idle Heartbeat", KNOWN, -1, 0, 1, RT_PA_NONE, NULL, 0, 2, 160},
        {RT_PULL_FETCH, 404, "No Messages", KNOWN, -1, 0, 1, RT_PA_FINISH, NULL, 0, 1, 60},
        {RT_PULL_FETCH, 408, "Request Timeout", KNOWN, 60, 3, 1, RT_PA_FINISH, NULL, 0, 1, 100},
        {RT_PULL_FETCH, 409, "Leadership Change", KNOWN, -1, 0, 1, RT_PA_FINISH, NULL, 0, 0, 0},
        {RT_PULL_FETCH, 409, "Message Size Exceeds MaxBytes", KNOWN, -1, 0, 1, RT_PA_FINISH, "message_too_large",
         0, 1, 60},
        {RT_PULL_FETCH, 409, "Message Size Exceeds MaxBytes", KNOWN, -1, 2, 1, RT_PA_FINISH, NULL, 0, 1, 60},
        {RT_PULL_FETCH, 409, "Exceeded MaxRequestBatch of 10", KNOWN, -1, 0, 1, RT_PA_FINISH, "limit_exceeded", 0,
         1, 60},
        {RT_PULL_FETCH, 409, "Server Shutdown", KNOWN, -1, 0, 1, RT_PA_FINISH, "status", 0, 1, 60},
        {RT_PULL_FETCH, 409, "Consumer Deleted", UNKNOWN, -1, 0, 1, RT_PA_FINISH, "consumer_deleted", 0, 2, 160},
        {RT_PULL_FETCH, 400, "Bad Request", KNOWN, -1, 0, 1, RT_PA_FINISH, "bad_request", 1, 2, 160},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rt_pull w;
        rt_pull_verdict v;
        engine(&w, t[i].mode, 4000, 1);
        send(&w, 2, 100, 0);
        for (int j = 0; j < 40; j++)
            rt_pull_on_msg(&w, 0);                 /* credited to request 1 */
        /* the status names request 2 (or one long gone) */
        rt_pull_on_status(&w, t[i].code, t[i].desc, t[i].known ? 2 : 77, t[i].pending, t[i].fetched, t[i].idle,
                          NOW, &v);
        CHECK(v.act == t[i].act);
        CHECK(t[i].err ? v.code && strcmp(v.code, t[i].err) == 0 : v.code == NULL);
        CHECK(v.nak == t[i].nak);
        CHECK(w.nreqs == t[i].nreqs);
        CHECK(w.out_msgs == t[i].out);
        CHECK(v.act == RT_PA_BACKOFF ? v.backoff_ms == 1000 && w.backoff_until == NOW + 1000 : w.backoff_until == 0);
        if (v.act != t[i].act || w.nreqs != t[i].nreqs || w.out_msgs != t[i].out)
            fprintf(stderr, "  row %zu (%d %s): act %d, %d requests, %lld out\n", i, t[i].code, t[i].desc, v.act,
                    w.nreqs, (long long)w.out_msgs);
    }
}

/* Several requests out when the consumer's max_request_batch drops: each
 * comes back 409. The first teaches the limit; the others asked more than
 * it before we knew, so they are no reason to back off or tell the script.
 * A 409 for a request that kept within the limit still backs off. */
static void test_limit_stale(void)
{
    rt_pull w;
    rt_pull_verdict v;
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    send(&w, 3, 100, 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 5", 1, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT && w.lim_batch == 5);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 5", 2, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_END && v.code == NULL && w.backoff_until == 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 5", 3, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_END && v.code == NULL && w.nreqs == 0);
    send(&w, 1, 5, 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 5", 4, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_BACKOFF && v.code && strcmp(v.code, "limit_exceeded") == 0);
    /* the same for max_bytes and expires */
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    send(&w, 2, 100, 5000);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestMaxBytes of 1000", 1, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestMaxBytes of 1000", 2, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_END && v.code == NULL);
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    send(&w, 2, 100, 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestExpires of 5s", 1, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestExpires of 5s", 2, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_END && v.code == NULL);
}

/* 409 MaxBytes on a consume: back off only when the request got nothing
 * and nothing is buffered or running (a message larger than max_bytes). */
static void test_too_large(void)
{
    rt_pull w;
    rt_pull_verdict v;
    rt_pull_opts o = opts(1000000, 1);
    o.max_bytes = 1000;
    o.thr_bytes = 500;
    rt_pull_init(&w, RT_PULL_CONSUME, NOW);
    rt_pull_configure(&w, &o);
    send(&w, 1, 100, 1000);
    rt_pull_on_status(&w, 409, "Message Size Exceeds MaxBytes", 1, 100, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_BACKOFF && strcmp(v.code, "message_too_large") == 0 && v.detail);
    /* again while backing off: no second report */
    send(&w, 1, 100, 1000);
    rt_pull_on_status(&w, 409, "Message Size Exceeds MaxBytes", 2, 100, 0, 1, NOW + 10, &v);
    CHECK(v.act == RT_PA_END && w.backoff_ms == 1000);
    /* part of the request came: the next message just did not fit */
    send(&w, 1, 100, 1000);
    rt_pull_on_msg(&w, 10);
    rt_pull_on_status(&w, 409, "Message Size Exceeds MaxBytes", 3, 99, 0, 1, NOW + 5000, &v);
    CHECK(v.act == RT_PA_END);
    /* handlers still busy: not stuck, wait for them */
    send(&w, 1, 100, 1000);
    rt_pull_on_status(&w, 409, "Message Size Exceeds MaxBytes", 4, 100, 0, 0, NOW + 5000, &v);
    CHECK(v.act == RT_PA_END);
}

/* A 409 Exceeded MaxRequest* of N is adopted once; the same again backs off. */
static void test_limits(void)
{
    rt_pull w;
    rt_pull_verdict v;
    rt_pull_info ci;

    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    CHECK(w.rexp_ms == 30000 && w.rhb_ms == 15000 && w.tick_ms == 1000);
    send(&w, 1, 4000, 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 10", 1, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT && w.lim_batch == 10 && w.nreqs == 0);
    CHECK(refill(&w, 0, 0, 0, NOW) == 160 && w.reqs[0].left == 10);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 10", 2, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_BACKOFF && strcmp(v.code, "limit_exceeded") == 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestBatch of 5", 3, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT && w.lim_batch == 5);

    /* expires: the request's expires and heartbeat shrink, the tick with them */
    engine(&w, RT_PULL_MESSAGES, 4000, 1);
    send(&w, 1, 4000, 0);
    rt_pull_on_status(&w, 409, "Exceeded MaxRequestExpires of 1s", 1, -1, 0, 1, NOW, &v);
    CHECK(v.act == RT_PA_ADAPT && w.lim_expires_ms == 1000 && w.rexp_ms == 1000 && w.rhb_ms == 500);
    CHECK(w.tick_ms == 250);
    CHECK(rt_pull_apply_limits(&w) == 0);          /* unchanged */

    /* the tick: hb / 2, exp / 4, wpi / 2, within 20 ms .. 1 s */
    {
        static const struct { uint64_t exp, hb, wpi, tick; } t[] = {
            {30000, 15000, 0, 1000}, {1000, 0, 0, 250}, {30000, 100, 0, 50}, {30000, 15000, 300, 150},
            {100, 10, 0, 20}, {0, 0, 0, 1000},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            rt_pull_opts o = opts(100, 1);
            o.expires_ms = t[i].exp;
            o.hb_ms = t[i].hb;
            o.wpi_ms = t[i].wpi;
            rt_pull_init(&w, RT_PULL_CONSUME, NOW);
            rt_pull_configure(&w, &o);
            CHECK(w.tick_ms == t[i].tick);
        }
    }

    /* consumer info: the limits it has now (none: none), and its ack_wait */
    engine(&w, RT_PULL_CONSUME, 4000, 1);
    w.ack_wait_ms = 30000;
    memset(&ci, 0, sizeof ci);
    ci.max_batch = 50;
    ci.max_expires_ms = 2000;
    ci.ack_wait_ms = 5000;
    CHECK(rt_pull_info_apply(&w, &ci, NOW) == 1);
    CHECK(w.lim_batch == 50 && w.lim_bytes == 0 && w.rexp_ms == 2000 && w.rhb_ms == 1000 && w.ack_wait_ms == 5000);
    ci.max_batch = 0;
    ci.max_expires_ms = 0;
    CHECK(rt_pull_info_apply(&w, &ci, NOW) == 1 && w.lim_batch == 0 && w.rexp_ms == 30000);
    /* no acks: ack_wait stays off */
    w.ack_wait_ms = 0;
    rt_pull_info_apply(&w, &ci, NOW);
    CHECK(w.ack_wait_ms == 0);
    /* an answer that is not one changes nothing */
    ci.code = "timeout";
    ci.max_batch = 7;
    rt_pull_info_apply(&w, &ci, NOW);
    CHECK(w.lim_batch == 0);
}

/* 1 s, doubling to 30 s; a message resets it; no pull while it lasts. */
static void test_backoff(void)
{
    static const uint32_t seq[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    rt_pull w;
    rt_pull_verdict v;
    engine(&w, RT_PULL_MESSAGES, 100, 1);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        rt_pull_on_no_responders(&w, NOW, &v);
        CHECK(v.act == RT_PA_BACKOFF && strcmp(v.code, "no_responders") == 0 && v.backoff_ms == seq[i]);
    }
    CHECK(w.backoff_until == NOW + 30000);
    CHECK(refill(&w, 0, 0, 0, NOW + 29999) == 0);
    CHECK(refill(&w, 0, 0, 0, NOW + 30000) == 100 && w.backoff_until == 0);
    rt_pull_on_msg(&w, 0);
    CHECK(w.backoff_ms == 0);
    CHECK(rt_pull_backoff(&w, NOW) == 1000);

    /* no responders drops every request; a fetch ends with it */
    send(&w, 3, 10, 0);
    rt_pull_on_no_responders(&w, NOW + 7, &v);
    CHECK(w.nreqs == 0 && w.out_msgs == 0 && w.last_in == NOW + 7);
    engine(&w, RT_PULL_FETCH, 100, 1);
    rt_pull_on_no_responders(&w, NOW, &v);
    CHECK(v.act == RT_PA_FINISH && strcmp(v.code, "no_responders") == 0 && w.backoff_until == 0);
}

/* Two heartbeat intervals of silence with a request out: report, ask for
 * consumer info, pull again only after it answers. */
static void test_heartbeats(void)
{
    rt_pull w;
    rt_pull_info ci;
    rt_pull_opts o = opts(100, 1);
    memset(&ci, 0, sizeof ci);

    o.expires_ms = 120000;                         /* heartbeat 15 s */
    rt_pull_init(&w, RT_PULL_MESSAGES, NOW);
    rt_pull_configure(&w, &o);
    CHECK(rt_pull_tick(&w, NOW + 60000, 1) == 0);  /* nothing out: silence is fine */
    send(&w, 1, 100, 0);
    rt_pull_heard(&w, NOW + 1000);
    CHECK(rt_pull_tick(&w, NOW + 31000, 1) == 0);
    CHECK(rt_pull_tick(&w, NOW + 31001, 0) == 0);  /* disconnected: the reconnect handles it */
    CHECK(rt_pull_tick(&w, NOW + 31001, 1) == 1 && w.hb_missed == 1 && w.last_in == NOW + 31001);
    CHECK(rt_pull_tick(&w, NOW + 31002, 1) == 0);  /* the clock restarted */

    /* asked: no pull until the answer; the answer writes the requests off */
    rt_pull_probe(&w, 1);
    CHECK(w.probe == 2 && w.nreqs == 1);
    CHECK(refill(&w, 0, 0, 0, NOW) == 0);
    CHECK(rt_pull_info_apply(&w, &ci, NOW) == 0);
    CHECK(w.probe == 0 && w.nreqs == 0);
    CHECK(refill(&w, 0, 0, 0, NOW) == 100);

    /* second miss of a streak, the info request fails: keep the requests */
    rt_pull_probe(&w, 1);                          /* streak 2 */
    CHECK(w.probe == 1);
    ci.code = "timeout";
    rt_pull_info_apply(&w, &ci, NOW);
    CHECK(w.nreqs == 1 && w.probe == 0);
    /* first of a streak, the info request fails: reset all the same */
    w.missed_streak = 0;
    rt_pull_probe(&w, 1);
    rt_pull_info_apply(&w, &ci, NOW);
    CHECK(w.nreqs == 0);
    /* could not ask: reset once per streak, then wait */
    send(&w, 1, 100, 0);
    w.missed_streak = 0;
    rt_pull_probe(&w, 0);
    CHECK(w.nreqs == 0 && w.probe == 0);
    send(&w, 1, 100, 0);
    rt_pull_probe(&w, 0);
    CHECK(w.nreqs == 1);
    /* a message ends the streak */
    rt_pull_on_msg(&w, 0);
    CHECK(w.missed_streak == 0);

    /* a reconnect: everything afresh */
    w.probe = 2;
    w.missed_streak = 3;
    rt_pull_reconnected(&w, NOW + 99);
    CHECK(w.nreqs == 0 && w.probe == 0 && w.missed_streak == 0 && w.last_in == NOW + 99);

    /* the periodic consumer info: every 10 s */
    engine(&w, RT_PULL_CONSUME, 100, 1);
    CHECK(rt_pull_info_due(&w, NOW + 9999) == 0);
    CHECK(rt_pull_info_due(&w, NOW + 10000) == 1);
    CHECK(rt_pull_info_due(&w, NOW + 10001) == 0);
    /* a gone consumer: nothing applied, the owner stops */
    ci.code = "consumer_deleted";
    ci.gone = 1;
    w.probe = 2;
    send(&w, 1, 10, 0);
    CHECK(rt_pull_info_apply(&w, &ci, NOW + 20000) == 0 && w.probe == 0 && w.nreqs == 1);
}

int main(void)
{
    test_texts();
    test_info_parse();
    test_limit_stale();
    test_slow_start();
    test_ack_wait_bound();
    test_refill();
    test_window_bytes();
    test_refill_bytes();
    test_requests();
    test_statuses();
    test_too_large();
    test_limits();
    test_backoff();
    test_heartbeats();
    return DONE();
}
