/*
 * rt_prefixes.h - a small set of subject prefixes something is known to
 * answer (a KV bucket's stream listens on every "$KV.<bucket>." key and
 * answers every direct get under "$JS.API.DIRECT.GET.KV_<bucket>.").
 *
 * The async publisher (ljs_publish_acks.c) and the request mux (lmux.c) read
 * the replies to subjects under an "on" prefix on the loop thread, from a
 * synchronous subscription: no hop through cnats' delivery thread. cnats
 * hides the message of a 503 (no responders) on such a subscription, so a
 * 503 there turns every prefix off (what follows takes the slow path, where
 * a 503 names its message), and a reply that comes back on the slow path
 * for a subject under an off prefix turns it on again.
 *
 * Bounded: RT_PREFIXES_MAX entries; adding one more replaces the oldest
 * (whose subjects then take the slow path: slower, never wrong). No Lua,
 * no allocation; any thread, but the callers use it on the loop only.
 */
#ifndef JETLUA_RT_PREFIXES_H
#define JETLUA_RT_PREFIXES_H

#include <stddef.h>

enum { RT_PREFIXES_MAX = 16, RT_PREFIX_LEN = 96 };

typedef struct rt_prefixes {
    struct {
        char s[RT_PREFIX_LEN];
        size_t n;
        int on;
    } e[RT_PREFIXES_MAX];
    int n;    /* entries in use */
    int next; /* the oldest: replaced when full */
} rt_prefixes;

/* Add prefix (or turn it on again): 0, or -1 (empty, or RT_PREFIX_LEN or longer). */
int rt_prefixes_add(rt_prefixes *t, const char *prefix, size_t len);
/* 1: subj (len bytes) lies under a prefix that is on (and is longer than it). */
int rt_prefixes_match(const rt_prefixes *t, const char *subj, size_t len);
/* An anonymous 503: every prefix off. */
void rt_prefixes_off(rt_prefixes *t);
/* A reply came back (slow path) for subj: the prefixes it lies under are on again. */
void rt_prefixes_seen(rt_prefixes *t, const char *subj, size_t len);

#endif
