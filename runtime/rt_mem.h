/*
 * rt_mem.h - jetlua's allocation policy.
 *
 * Small allocations of a fixed or bounded size (structs, timers, copies of
 * names) use rt_xmalloc/rt_xcalloc/rt_xstrdup: they never return NULL; when
 * the system is out of memory the process logs one line and aborts, as
 * Redis and LuaJIT's own allocator do, because no caller could do anything
 * sensible with a half-built object. Allocations whose size comes from the
 * outside (a payload, a window the script chose) are checked by their
 * callers and turned into an error the script sees (e.g. nil, "no_memory").
 */
#ifndef JETLUA_RT_MEM_H
#define JETLUA_RT_MEM_H

#include <stddef.h>

void *rt_xmalloc(size_t n);
void *rt_xcalloc(size_t n, size_t size);
void *rt_xrealloc(void *p, size_t n);
char *rt_xstrdup(const char *s);

#endif
