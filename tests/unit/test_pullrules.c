/*
 * test_pullrules.c - status classification, the limits a 409 names, Go
 * durations and the default redelivery schedule (rt_pullrules).
 */
#include "check.h"
#include "rt_pullrules.h"

int main(void)
{
    int64_t v = 0;

    CHECK(rt_pull_classify(100, "Idle Heartbeat") == RT_PS_HEARTBEAT);
    CHECK(rt_pull_classify(404, "No Messages") == RT_PS_END);
    CHECK(rt_pull_classify(408, "Request Timeout") == RT_PS_END);
    CHECK(rt_pull_classify(400, "Bad Request - heartbeat value too large") == RT_PS_BAD_REQUEST);
    CHECK(rt_pull_classify(409, "Consumer Deleted") == RT_PS_DELETED);
    CHECK(rt_pull_classify(409, "Consumer is push based") == RT_PS_PUSH);
    CHECK(rt_pull_classify(409, "Leadership Change") == RT_PS_LEADER_CHANGE);
    CHECK(rt_pull_classify(409, "Server Shutdown") == RT_PS_SHUTDOWN);
    CHECK(rt_pull_classify(409, "Message Size Exceeds MaxBytes") == RT_PS_MAX_BYTES);
    CHECK(rt_pull_classify(409, "Exceeded MaxRequestBatch of 10") == RT_PS_LIMIT_BATCH);
    CHECK(rt_pull_classify(409, "Exceeded MaxRequestExpires of 1s") == RT_PS_LIMIT_EXPIRES);
    CHECK(rt_pull_classify(409, "Exceeded MaxRequestMaxBytes of 1024") == RT_PS_LIMIT_BYTES);
    CHECK(rt_pull_classify(409, "Exceeded MaxWaiting") == RT_PS_MAX_WAITING);
    CHECK(rt_pull_classify(409, "Something New") == RT_PS_OTHER);
    CHECK(rt_pull_classify(503, NULL) == RT_PS_OTHER);

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
    return DONE();
}
