/*
 * rt_repeat.h - say a repeated error once: the first occurrence of an error
 * (where it happened + its text) is logged in full; the same error again
 * within the window is only counted, and a flush reports the count
 * ("... repeated 500 times in the last 10 s"). A handler that raises on
 * every message then costs a line per window instead of a flood of stderr.
 *
 * Pure bookkeeping (no clock, no I/O): the caller passes the time and a
 * function that writes the summary lines. Loop thread only.
 */
#ifndef JETLUA_RT_REPEAT_H
#define JETLUA_RT_REPEAT_H

#include <stddef.h>
#include <stdint.h>

#define RT_REPEAT_MAX 128        /* distinct errors remembered at once */
#define RT_REPEAT_TEXT 300       /* bytes of the error text kept as key */

typedef struct rt_repeat_entry {
    uint64_t hash;
    char    *where, *text;
    uint64_t start;              /* ms: the window began */
    uint64_t count;              /* hits since start, not logged */
} rt_repeat_entry;

typedef struct rt_repeat {
    rt_repeat_entry e[RT_REPEAT_MAX];
    int             n;
    uint64_t        window_ms;
} rt_repeat;

/* Summary writer: `count` more of (where, text) in the last `ms`. */
typedef void (*rt_repeat_fn)(const char *where, const char *text, uint64_t count, uint64_t ms, void *ud);

void rt_repeat_init(rt_repeat *r, uint64_t window_ms);

/* The part of an error message that identifies it: up to the traceback
 * ("\nstack traceback:"), at most RT_REPEAT_TEXT bytes. */
size_t rt_repeat_text_len(const char *msg);

/* One more error at `now`: 1 = log it in full (new, or its last window
 * passed without a repeat), 0 = counted, stay quiet. When the table is full
 * every count is reported through fn first and the table is emptied. */
int rt_repeat_hit(rt_repeat *r, const char *where, const char *text, size_t text_len, uint64_t now,
                  rt_repeat_fn fn, void *ud);

/* Report the windows that ended by `now` (all of them when final): one
 * with repeats reports its count and starts a new quiet window; one
 * without is forgotten. Returns how many entries remain. */
int rt_repeat_flush(rt_repeat *r, uint64_t now, int final, rt_repeat_fn fn, void *ud);

void rt_repeat_free(rt_repeat *r);

#endif
