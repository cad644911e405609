/*
 * test_jsack.c - the "$JS.ACK..." subject and the PubAck, table-driven:
 * v1/v2 subjects, domains, malformed subjects; PubAck successes,
 * duplicates, domains, error objects, and what is not a PubAck.
 */
#include "check.h"
#include "rt_jsack.h"

#include <stdlib.h>
#include <string.h>

static int field_is(const rt_ack_meta *m, int i, const char *want)
{
    return m->len[i] == strlen(want) && memcmp(m->f[i], want, m->len[i]) == 0;
}

static void subjects(void)
{
    static const struct {
        const char *subject;
        int ok;
        const char *stream, *consumer, *delivered, *sseq, *cseq, *ts, *pending, *domain;
    } cases[] = {
        /* v1: 9 tokens */
        {"$JS.ACK.ORDERS.billing.1.42.7.1700000000000000000.3", 1, "ORDERS", "billing", "1", "42", "7",
         "1700000000000000000", "3", NULL},
        /* v2: domain and account hash, 11 tokens */
        {"$JS.ACK.hub.ACCHASH.ORDERS.billing.2.43.8.1700000000000000001.0", 1, "ORDERS", "billing", "2", "43",
         "8", "1700000000000000001", "0", "hub"},
        /* v2 with "_": no domain */
        {"$JS.ACK._.ACCHASH.S.C.1.1.1.5.0", 1, "S", "C", "1", "1", "1", "5", "0", NULL},
        /* v2 with a trailing random token (12 tokens) */
        {"$JS.ACK.dom.HASH.S.C.3.9.9.11.2.rnd123", 1, "S", "C", "3", "9", "9", "11", "2", "dom"},
        /* a one-letter domain that is not "_" */
        {"$JS.ACK.x.HASH.S.C.1.2.3.4.5", 1, "S", "C", "1", "2", "3", "4", "5", "x"},
        /* malformed */
        {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        {"", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        {"$JS.ACK", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        {"$JS.ACK.", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        {"$JS.ACK.S.C.1.2.3.4", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},     /* 8 tokens */
        {"$JS.ACK.d.h.S.C.1.2.3.4", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}, /* 10 tokens */
        {"$JS.API.S.C.1.2.3.4.5", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},   /* wrong prefix */
        {"_INBOX.abc.1", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
        {"$js.ack.S.C.1.2.3.4.5", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL}, /* prefix is case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_ack_meta m;
        int r = rt_ack_subject(cases[i].subject, &m);
        CHECK((r == 0) == cases[i].ok);
        if (r != 0 || !cases[i].ok)
            continue;
        CHECK(field_is(&m, RT_ACK_STREAM, cases[i].stream));
        CHECK(field_is(&m, RT_ACK_CONSUMER, cases[i].consumer));
        CHECK(field_is(&m, RT_ACK_DELIVERED, cases[i].delivered));
        CHECK(field_is(&m, RT_ACK_STREAM_SEQ, cases[i].sseq));
        CHECK(field_is(&m, RT_ACK_CONSUMER_SEQ, cases[i].cseq));
        CHECK(field_is(&m, RT_ACK_TIMESTAMP, cases[i].ts));
        CHECK(field_is(&m, RT_ACK_PENDING, cases[i].pending));
        /* numbers parse in place: strtoll stops at the '.' */
        CHECK(strtoll(m.f[RT_ACK_STREAM_SEQ], NULL, 10) == atoll(cases[i].sseq));
        if (cases[i].domain)
            CHECK(m.domain && m.domain_len == strlen(cases[i].domain) &&
                  memcmp(m.domain, cases[i].domain, m.domain_len) == 0);
        else
            CHECK(m.domain == NULL && m.domain_len == 0);
    }
}

static void pubacks(void)
{
    static const struct {
        const char *json;
        int kind;
        const char *stream;
        uint64_t seq;
        int duplicate;
        const char *domain;
        int code, err_code;
        const char *description;
    } cases[] = {
        /* successes */
        {"{\"stream\":\"ORDERS\",\"seq\":1}", RT_PUBACK_OK, "ORDERS", 1, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":18446744073709551615}", RT_PUBACK_OK, "S", 18446744073709551615ull, 0, "",
         0, 0, ""},
        {" { \"stream\" : \"S\" , \"seq\" : 7 } ", RT_PUBACK_OK, "S", 7, 0, "", 0, 0, ""},
        {"{\"seq\":9,\"stream\":\"S\"}", RT_PUBACK_OK, "S", 9, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":3,\"domain\":\"hub\"}", RT_PUBACK_OK, "S", 3, 0, "hub", 0, 0, ""},
        /* duplicates: the original sequence, both spellings */
        {"{\"stream\":\"S\",\"seq\":5,\"duplicate\":true}", RT_PUBACK_OK, "S", 5, 1, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":5,\"duplicate\": true}", RT_PUBACK_OK, "S", 5, 1, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":5,\"duplicate\":false}", RT_PUBACK_OK, "S", 5, 0, "", 0, 0, ""},
        /* unknown members are skipped, nested ones too */
        {"{\"x\":{\"stream\":\"no\",\"a\":[1,\"}\",{}]},\"stream\":\"S\",\"seq\":2,\"y\":null}", RT_PUBACK_OK,
         "S", 2, 0, "", 0, 0, ""},
        /* an escaped stream name is unescaped */
        {"{\"stream\":\"a\\\"b\",\"seq\":4}", RT_PUBACK_OK, "a\"b", 4, 0, "", 0, 0, ""},
        /* errors */
        {"{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last sequence: 5\"},"
         "\"stream\":\"S\",\"seq\":0}",
         RT_PUBACK_ERROR, "", 0, 0, "", 400, 10071, "wrong last sequence: 5"},
        {"{\"stream\":\"S\",\"seq\":0,\"error\":{\"code\":503,\"err_code\":10023,"
         "\"description\":\"insufficient resources\"}}",
         RT_PUBACK_ERROR, "", 0, 0, "", 503, 10023, "insufficient resources"},
        {"{\"error\":{\"code\":400,\"description\":\"bad \\\"x\\\"\"}}", RT_PUBACK_ERROR, "", 0, 0, "", 400,
         0, "bad \"x\""},
        {"{\"error\":{}}", RT_PUBACK_ERROR, "", 0, 0, "", 0, 0, ""},
        /* not a PubAck */
        {"", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"[1,2]", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"garbage", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\"}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"seq\":1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"\",\"seq\":1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":-1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":1.5}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":\"1\"}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":1,\"seq\":1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
        {"{\"stream\":\"S\",\"seq\":1", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},  /* cut */
        {"{\"stream\":\"S,\"seq\":1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},   /* unterminated */
        {"{\"stream\":\"S\" \"seq\":1}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""}, /* no comma */
        {"{\"error\":\"boom\"}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},         /* error not an object */
        {"{\"stream\":\"S\",\"seq\":1,\"x\":{\"a\":[}", RT_PUBACK_BAD, "", 0, 0, "", 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_puback a;
        int k = rt_puback_parse(cases[i].json, strlen(cases[i].json), &a);
        if (k != cases[i].kind)
            fprintf(stderr, "case %zu: %s -> kind %d\n", i, cases[i].json, k);
        CHECK(k == cases[i].kind && a.kind == k);
        CHECK(strcmp(a.stream, cases[i].stream) == 0);
        CHECK(a.seq == cases[i].seq);
        CHECK(a.duplicate == cases[i].duplicate);
        CHECK(strcmp(a.domain, cases[i].domain) == 0);
        CHECK(a.code == cases[i].code);
        CHECK(a.err_code == cases[i].err_code);
        CHECK(strcmp(a.description, cases[i].description) == 0);
    }
    {
        /* NULL data, and a length shorter than the text */
        rt_puback a;
        const char *t = "{\"stream\":\"S\",\"seq\":12}";
        CHECK(rt_puback_parse(NULL, 0, &a) == RT_PUBACK_BAD);
        CHECK(rt_puback_parse(t, strlen(t) - 1, &a) == RT_PUBACK_BAD);
        /* a long stream name is cut to fit */
        char big[600];
        memset(big, 'x', sizeof big);
        memcpy(big, "{\"stream\":\"", 11);
        memcpy(big + 500, "\",\"seq\":1}", 11);
        CHECK(rt_puback_parse(big, strlen(big), &a) == RT_PUBACK_OK);
        CHECK(strlen(a.stream) == sizeof a.stream - 1);
    }
}

int main(void)
{
    subjects();
    pubacks();
    return DONE();
}
