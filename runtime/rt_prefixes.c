/*
 * rt_prefixes.c - the set of answered subject prefixes (see rt_prefixes.h).
 */
#include "rt_prefixes.h"

#include <string.h>

static int under(const rt_prefixes *t, int i, const char *subj, size_t len)
{
    return len > t->e[i].n && memcmp(subj, t->e[i].s, t->e[i].n) == 0;
}

int rt_prefixes_add(rt_prefixes *t, const char *prefix, size_t len)
{
    int i;
    if (len == 0 || len >= RT_PREFIX_LEN)
        return -1;
    for (i = 0; i < t->n; i++)
        if (t->e[i].n == len && memcmp(t->e[i].s, prefix, len) == 0) {
            t->e[i].on = 1;
            return 0;
        }
    if (t->n < RT_PREFIXES_MAX) {
        i = t->n++;
    } else {
        i = t->next;
        t->next = (t->next + 1) % RT_PREFIXES_MAX;
    }
    memcpy(t->e[i].s, prefix, len);
    t->e[i].s[len] = '\0';
    t->e[i].n = len;
    t->e[i].on = 1;
    return 0;
}

int rt_prefixes_match(const rt_prefixes *t, const char *subj, size_t len)
{
    for (int i = 0; i < t->n; i++)
        if (t->e[i].on && under(t, i, subj, len))
            return 1;
    return 0;
}

void rt_prefixes_off(rt_prefixes *t)
{
    for (int i = 0; i < t->n; i++)
        t->e[i].on = 0;
}

void rt_prefixes_seen(rt_prefixes *t, const char *subj, size_t len)
{
    for (int i = 0; i < t->n; i++)
        if (!t->e[i].on && under(t, i, subj, len))
            t->e[i].on = 1;
}
