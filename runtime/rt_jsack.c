/*
 * rt_jsack.c - the "$JS.ACK..." subject and the PubAck (see rt_jsack.h).
 */
#include "rt_jsack.h"
#include "rt_json.h"

#include <string.h>

int rt_ack_subject(const char *reply, rt_ack_meta *m)
{
    const char *t[16];
    int n = 0, o;
    if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0)
        return -1;
    t[n++] = reply;
    for (const char *c = reply; *c && n < 16; c++)
        if (*c == '.')
            t[n++] = c + 1;
    if (n == 9)
        o = 2; /* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> */
    else if (n >= 11)
        o = 4; /* $JS.ACK.<domain>.<hash>.<stream>.<consumer>.... */
    else
        return -1;
    for (int i = 0; i < 7; i++) {
        m->f[i] = t[o + i];
        m->len[i] = o + i + 1 < n ? (size_t)(t[o + i + 1] - t[o + i] - 1) : strlen(t[o + i]);
    }
    m->domain = NULL;
    m->domain_len = 0;
    if (o == 4 && !(t[3] - t[2] - 1 == 1 && t[2][0] == '_')) {
        m->domain = t[2];
        m->domain_len = (size_t)(t[3] - t[2] - 1);
    }
    return 0;
}

/* ---- the PubAck: one pass over the top-level members ---- */

/* A string member: copied into buf, or unescaped by rt_json when it holds
 * escapes (rare). */
static int take_string(rt_json_cur *c, const char *data, size_t len, const char *key, char *buf, size_t cap)
{
    const char *s;
    size_t n;
    int esc;
    if (rt_json_string(c, &s, &n, &esc) != 0)
        return -1;
    if (esc)
        return rt_json_str(data, len, key, buf, cap);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

/* Not a PubAck: nothing half-read stays behind. */
static int bad(rt_puback *a)
{
    a->stream[0] = a->domain[0] = a->description[0] = '\0';
    a->seq = 0;
    a->duplicate = 0;
    a->code = a->err_code = 0;
    a->kind = RT_PUBACK_BAD;
    return a->kind;
}

static int key_is(const char *k, size_t kn, const char *name)
{
    return strlen(name) == kn && memcmp(k, name, kn) == 0;
}

int rt_puback_parse(const char *data, size_t len, rt_puback *a)
{
    rt_json_cur c = {data, data ? data + len : NULL};
    const char *err = NULL, *errend = NULL;
    int have_stream = 0, have_seq = 0;

    bad(a);
    if (!data)
        return bad(a);
    rt_json_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return bad(a);
    c.p++;
    rt_json_ws(&c);
    if (c.p < c.end && *c.p == '}')
        return bad(a);
    for (;;) {
        const char *k;
        size_t kn;
        int esc;
        if (rt_json_string(&c, &k, &kn, &esc) != 0)
            return bad(a);
        rt_json_ws(&c);
        if (c.p >= c.end || *c.p != ':')
            return bad(a);
        c.p++;
        rt_json_ws(&c);
        if (c.p >= c.end)
            return bad(a);
        if (key_is(k, kn, "stream") && *c.p == '"') {
            if (take_string(&c, data, len, "stream", a->stream, sizeof a->stream) != 0)
                return bad(a);
            have_stream = a->stream[0] != '\0';
        } else if (key_is(k, kn, "seq") && *c.p >= '0' && *c.p <= '9') {
            uint64_t v = 0;
            while (c.p < c.end && *c.p >= '0' && *c.p <= '9')
                v = v * 10 + (uint64_t)(*c.p++ - '0');
            if (c.p < c.end && (*c.p == '.' || *c.p == 'e' || *c.p == 'E'))
                return bad(a);
            a->seq = v;
            have_seq = 1;
        } else if (key_is(k, kn, "domain") && *c.p == '"') {
            if (take_string(&c, data, len, "domain", a->domain, sizeof a->domain) != 0)
                return bad(a);
        } else if (key_is(k, kn, "duplicate") && c.end - c.p >= 4 && memcmp(c.p, "true", 4) == 0) {
            a->duplicate = 1;
            c.p += 4;
        } else {
            const char *start = c.p;
            if (rt_json_skip(&c) != 0)
                return bad(a);
            if (key_is(k, kn, "error") && *start == '{') {
                err = start;
                errend = c.p;
            }
        }
        rt_json_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            rt_json_ws(&c);
            continue;
        }
        if (c.p < c.end && *c.p == '}')
            break;
        return bad(a);
    }
    if (err) {
        size_t en = (size_t)(errend - err);
        int64_t n;
        a->kind = RT_PUBACK_ERROR;
        a->stream[0] = a->domain[0] = '\0';
        a->seq = 0;
        a->duplicate = 0;
        if (rt_json_int(err, en, "code", &n) == 0 && n >= 0 && n < 1000000)
            a->code = (int)n;
        if (rt_json_int(err, en, "err_code", &n) == 0 && n >= 0 && n < 1000000000)
            a->err_code = (int)n;
        if (rt_json_str(err, en, "description", a->description, sizeof a->description) != 0)
            a->description[0] = '\0';
        return a->kind;
    }
    if (!have_stream || !have_seq)
        return bad(a);
    a->kind = RT_PUBACK_OK;
    return a->kind;
}
