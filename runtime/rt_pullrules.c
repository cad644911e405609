/*
 * rt_pullrules.c - see rt_pullrules.h. The texts are nats-server 2.9.10's
 * (server/consumer.go processNextMsgRequest and friends).
 */
#include "rt_pullrules.h"

#include <stdlib.h>
#include <string.h>

rt_pull_status rt_pull_classify(int code, const char *desc)
{
    if (!desc)
        desc = "";
    switch (code) {
    case 100: return RT_PS_HEARTBEAT;
    case 404:
    case 408: return RT_PS_END;
    case 400: return RT_PS_BAD_REQUEST;
    case 409:
        if (strstr(desc, "Consumer Deleted"))
            return RT_PS_DELETED;
        if (strstr(desc, "push based"))
            return RT_PS_PUSH;
        if (strstr(desc, "Leadership Change"))
            return RT_PS_LEADER_CHANGE;
        if (strstr(desc, "Server Shutdown"))
            return RT_PS_SHUTDOWN;
        if (strstr(desc, "MaxRequestBatch"))
            return RT_PS_LIMIT_BATCH;
        if (strstr(desc, "MaxRequestExpires"))
            return RT_PS_LIMIT_EXPIRES;
        if (strstr(desc, "MaxRequestMaxBytes"))
            return RT_PS_LIMIT_BYTES;
        if (strstr(desc, "MaxWaiting"))
            return RT_PS_MAX_WAITING;
        if (strstr(desc, "MaxBytes"))         /* "Message Size Exceeds MaxBytes" */
            return RT_PS_MAX_BYTES;
        return RT_PS_OTHER;
    default: return RT_PS_OTHER;
    }
}

int rt_pull_limit(rt_pull_status st, const char *desc, int64_t *out)
{
    const char *of;
    char *end;
    long long v;
    if (!desc || !(of = strstr(desc, " of ")))
        return -1;
    of += 4;
    if (st == RT_PS_LIMIT_EXPIRES)
        return rt_go_duration_ms(of, out) == 0 && *out > 0 ? 0 : -1;
    if (st != RT_PS_LIMIT_BATCH && st != RT_PS_LIMIT_BYTES)
        return -1;
    v = strtoll(of, &end, 10);
    if (end == of || v <= 0)
        return -1;
    *out = v;
    return 0;
}

int rt_go_duration_ms(const char *s, int64_t *ms)
{
    static const struct { const char *u; double ms; } units[] = {
        {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    double total = 0;
    int parts = 0;
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*s && *s != ' ' && *s != ',' && *s != '"') {
        char *end;
        double v = strtod(s, &end);
        size_t best = 0;
        double mult = 0;
        if (end == s || v < 0)
            return -1;
        /* the longest unit that matches ("ms" before "m") */
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].u);
            if (strncmp(end, units[i].u, n) == 0 && n > best) {
                best = n;
                mult = units[i].ms;
            }
        }
        if (!best)
            return -1;
        total += v * mult;
        s = end + best;
        parts++;
    }
    if (!parts)
        return -1;
    *ms = (int64_t)total;
    return 0;
}

uint64_t rt_pull_redelivery_ms(long n)
{
    static const uint64_t sched[] = {1000, 5000, 15000, 30000};
    if (n < 1)
        n = 1;
    if (n > (long)(sizeof sched / sizeof sched[0]))
        n = (long)(sizeof sched / sizeof sched[0]);
    return sched[n - 1];
}
