/*
 * test_prefixes.c - the answered-prefix set of the fast reply paths: match
 * only strictly under an "on" prefix; a 503 turns all off; a slow-path reply
 * turns on only the prefixes its subject lies under; full, the oldest goes.
 */
#include "check.h"
#include "rt_prefixes.h"

#include <stdio.h>
#include <string.h>

static int m(const rt_prefixes *t, const char *s)
{
    return rt_prefixes_match(t, s, strlen(s));
}
static int add(rt_prefixes *t, const char *s)
{
    return rt_prefixes_add(t, s, strlen(s));
}

int main(void)
{
    rt_prefixes t = {0};
    char big[RT_PREFIX_LEN + 1];

    CHECK(m(&t, "$KV.a.k") == 0); /* empty: nothing is fast */
    CHECK(add(&t, "") == -1);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(add(&t, big) == -1);                               /* too long */
    CHECK(rt_prefixes_add(&t, big, RT_PREFIX_LEN - 1) == 0); /* the longest that fits */
    CHECK(t.n == 1);

    CHECK(add(&t, "$KV.a.") == 0);
    CHECK(add(&t, "$KV.b.") == 0);
    CHECK(add(&t, "$KV.a.") == 0 && t.n == 3); /* again: no second entry */
    CHECK(m(&t, "$KV.a.k1") == 1);
    CHECK(m(&t, "$KV.b.k") == 1);
    CHECK(m(&t, "$KV.a.") == 0);   /* the prefix itself is no subject under it */
    CHECK(m(&t, "$KV.ab.k") == 0); /* "$KV.a" is not a prefix of it: the dot counts */
    CHECK(m(&t, "$KV.c.k") == 0);
    CHECK(rt_prefixes_match(&t, "$KV.a.k1", 6) == 0); /* length, not the terminator */

    /* a 503 nobody can place: all off; a reply under one turns on that one only */
    rt_prefixes_off(&t);
    CHECK(m(&t, "$KV.a.k1") == 0 && m(&t, "$KV.b.k") == 0);
    rt_prefixes_seen(&t, "$KV.c.k", 7);
    CHECK(m(&t, "$KV.a.k1") == 0 && m(&t, "$KV.b.k") == 0);
    rt_prefixes_seen(&t, "$KV.b.k", 7);
    CHECK(m(&t, "$KV.b.k2") == 1 && m(&t, "$KV.a.k1") == 0);
    CHECK(add(&t, "$KV.a.") == 0 && m(&t, "$KV.a.k1") == 1); /* added again (reopened): on */

    /* full: each new one replaces the oldest, and the rest stay */
    for (int i = 0; i < RT_PREFIXES_MAX; i++) {
        char p[32];
        snprintf(p, sizeof p, "$KV.n%d.", i);
        CHECK(add(&t, p) == 0);
    }
    CHECK(t.n == RT_PREFIXES_MAX);
    CHECK(m(&t, "$KV.n0.k") == 1 && m(&t, "$KV.n15.k") == 1);
    /* 3 entries were there first (big, a, b), then n0..n15: the 3 oldest went, then n0..n12 stay */
    CHECK(m(&t, "$KV.a.k1") == 0 && m(&t, "$KV.b.k") == 0);
    CHECK(m(&t, "$KV.n12.k") == 1);
    CHECK(add(&t, "$KV.late.") == 0);
    CHECK(m(&t, "$KV.late.k") == 1);
    CHECK(m(&t, "$KV.n0.k") == 0); /* the oldest then */
    CHECK(m(&t, "$KV.n1.k") == 1);
    return DONE();
}
