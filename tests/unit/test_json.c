/*
 * test_json.c - dotted-path lookups in JetStream API replies (rt_json).
 */
#include "check.h"
#include "rt_json.h"

#include <string.h>

static const char INFO[] =
    "{\"type\":\"io.nats.jetstream.api.v1.consumer_info_response\",\"stream_name\":\"S\",\"name\":\"C\","
    "\"created\":\"2026-12-03T05:19:50Z\",\"config\":{\"durable_name\":\"C\",\"description\":\"has \\\"max_batch\\\":7 "
    "in it\",\"deliver_policy\":\"all\",\"ack_wait\":30000000000,\"max_batch\":10,\"max_expires\":1000000000,"
    "\"backoff\":[1000000000,5000000000],\"nested\":{\"a\":[{\"b\":1},[2,3]],\"c\":null}},"
    "\"delivered\":{\"consumer_seq\":5,\"stream_seq\":9},\"num_ack_pending\":3,\"num_pending\":1234567890123,"
    "\"cluster\":{\"leader\":\"n1\"},\"push_bound\":false, \"ratio\" : -1.5e2 }";

static const char ERR[] = "{\"type\":\"io.nats.jetstream.api.v1.consumer_info_response\","
                          "\"error\":{\"code\":404,\"err_code\":10014,\"description\":\"consumer not found\"}}";

int main(void)
{
    int64_t v = -1;
    char buf[64];
    const char *raw;
    size_t n, len = strlen(INFO);

    CHECK(rt_json_int(INFO, len, "config.max_batch", &v) == 0 && v == 10);
    CHECK(rt_json_int(INFO, len, "config.max_expires", &v) == 0 && v == 1000000000);
    CHECK(rt_json_int(INFO, len, "num_pending", &v) == 0 && v == 1234567890123LL);
    CHECK(rt_json_int(INFO, len, "num_ack_pending", &v) == 0 && v == 3);
    CHECK(rt_json_int(INFO, len, "delivered.stream_seq", &v) == 0 && v == 9);
    CHECK(rt_json_int(INFO, len, "ratio", &v) == 0 && v == -150);
    /* a key that only appears inside a string, or nowhere, or in the wrong object */
    CHECK(rt_json_int(INFO, len, "max_batch", &v) == -1);
    CHECK(rt_json_int(INFO, len, "config.max_bytes", &v) == -1);
    CHECK(rt_json_int(INFO, len, "delivered.max_batch", &v) == -1);
    /* not numbers */
    CHECK(rt_json_int(INFO, len, "name", &v) == -1);
    CHECK(rt_json_int(INFO, len, "config.backoff", &v) == -1);
    CHECK(rt_json_int(INFO, len, "push_bound", &v) == -1);
    CHECK(rt_json_int(INFO, len, "config.nested.c", &v) == -1);
    /* descending into a non-object */
    CHECK(rt_json_int(INFO, len, "name.x", &v) == -1);
    /* strings, escapes */
    CHECK(rt_json_str(INFO, len, "cluster.leader", buf, sizeof buf) == 0 && strcmp(buf, "n1") == 0);
    CHECK(rt_json_str(INFO, len, "config.description", buf, sizeof buf) == 0 &&
          strcmp(buf, "has \"max_batch\":7 in it") == 0);
    CHECK(rt_json_str(INFO, len, "config.description", buf, 4) == 0 && strcmp(buf, "has") == 0);
    CHECK(rt_json_str(INFO, len, "num_pending", buf, sizeof buf) == -1);
    CHECK(rt_json_get(INFO, len, "config.nested", &raw, &n) == 0 && n == strlen("{\"a\":[{\"b\":1},[2,3]],\"c\":null}"));
    /* the error reply */
    CHECK(rt_json_int(ERR, strlen(ERR), "error.err_code", &v) == 0 && v == 10014);
    CHECK(rt_json_str(ERR, strlen(ERR), "error.description", buf, sizeof buf) == 0 &&
          strcmp(buf, "consumer not found") == 0);
    CHECK(rt_json_int(ERR, strlen(ERR), "num_pending", &v) == -1);
    {
        const char *u = "{\"s\":\"a\\u0041\\u00e9\\n\"}";
        CHECK(rt_json_str(u, strlen(u), "s", buf, sizeof buf) == 0 && strcmp(buf, "aA?\n") == 0);
    }
    /* broken or hostile input: never found, never read past len */
    CHECK(rt_json_int("", 0, "a", &v) == -1);
    CHECK(rt_json_int("[1,2]", 5, "a", &v) == -1);
    CHECK(rt_json_int("{\"a\":", 5, "a", &v) == -1);
    CHECK(rt_json_int("{\"a\":1", 6, "a", &v) == 0 && v == 1);      /* a value, then truncation */
    CHECK(rt_json_int("{\"b\":\"x", 7, "a", &v) == -1);
    CHECK(rt_json_int("{\"a\":12}", 4, "a", &v) == -1);              /* len cuts the text */
    {
        char deep[600];
        size_t k = 0;
        for (int i = 0; i < 100; i++) {
            memcpy(deep + k, "{\"a\":", 5);
            k += 5;
        }
        deep[k++] = '1';
        CHECK(rt_json_int(deep, k, "a.a", &v) == -1);
        CHECK(rt_json_int(deep, k, "b", &v) == -1);
    }
    return DONE();
}
