/*
 * rt_proto.c - control-line lengths and permission-violation texts (see rt_proto.h).
 */
#include "rt_proto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t rt_proto_digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t rt_proto_pub_line(size_t subj, size_t reply, size_t hdr_len, size_t data_len)
{
    size_t n = (hdr_len > 0 ? 5 : 4) + subj + 1;      /* "HPUB " / "PUB ", subject, space */
    if (reply > 0)
        n += reply + 1;
    if (hdr_len > 0)
        n += rt_proto_digits(hdr_len) + 1;
    return n + rt_proto_digits((uint64_t)hdr_len + data_len) + 2;
}

size_t rt_proto_sub_line(size_t subj, size_t queue, uint64_t sid)
{
    size_t n = 4 + subj + 1;                          /* "SUB ", subject, space */
    if (queue > 0)
        n += queue + 1;
    return n + rt_proto_digits(sid) + 2;
}

/* Copy the quoted string that starts at q (just after the opening quote)
 * into out; returns a pointer after the closing quote, or NULL (cut). */
static const char *quoted(const char *q, char *out, size_t size, int *cut)
{
    size_t n = 0;
    while (*q && *q != '"') {
        if (*q == '\\' && q[1])
            q++;
        if (n + 1 < size)
            out[n++] = *q;
        q++;
    }
    out[n] = '\0';
    if (*q != '"') {
        *cut = 1;
        return NULL;
    }
    return q + 1;
}

int rt_proto_perm(const char *text, rt_perm *p)
{
    static const char head[] = "Permissions Violation for ";
    static const struct { const char *s; int op; } forms[] = {
        {"Publish to \"", RT_PERM_PUBLISH},
        {"Publish with Reply of \"", RT_PERM_REPLY},
        {"Subscription to \"", RT_PERM_SUBSCRIBE},
    };
    const char *at;

    memset(p, 0, sizeof *p);
    if (!text || strncasecmp(text, head, sizeof head - 1) != 0)
        return RT_PERM_NONE;
    at = text + sizeof head - 1;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t n = strlen(forms[i].s);
        const char *rest;
        if (strncasecmp(at, forms[i].s, n) != 0)
            continue;
        p->op = forms[i].op;
        rest = quoted(at + n, p->subject, sizeof p->subject, &p->truncated);
        if (rest && p->op == RT_PERM_SUBSCRIBE && strncasecmp(rest, " using queue \"", 14) == 0) {
            int cut = 0;
            quoted(rest + 14, p->queue, sizeof p->queue, &cut);
        }
        return p->op;
    }
    return RT_PERM_NONE;
}

int rt_perm_matches(const rt_perm *p, const char *subject)
{
    if (!subject || p->op == RT_PERM_NONE)
        return 0;
    if (p->truncated)
        return strncmp(subject, p->subject, strlen(p->subject)) == 0;
    return strcmp(subject, p->subject) == 0;
}
