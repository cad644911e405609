/*
 * rt_mem.c - allocations that never return NULL (see rt_mem.h).
 */
#include "rt_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    /* no rt_log here: it may allocate, and this must not recurse */
    fprintf(stderr, "jetlua: out of memory (allocating %zu bytes): aborting\n", n);
    abort();
}

void *rt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *rt_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *rt_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *rt_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = rt_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
