/*
 * rt_repeat.c - repeated-error suppression (see rt_repeat.h). A small table
 * searched linearly by hash: errors are the slow path, and at most
 * RT_REPEAT_MAX distinct ones are live at a time.
 */
#include "rt_repeat.h"

#include <stdlib.h>
#include <string.h>

void rt_repeat_init(rt_repeat *r, uint64_t window_ms)
{
    memset(r, 0, sizeof *r);
    r->window_ms = window_ms;
}

size_t rt_repeat_text_len(const char *msg)
{
    const char *tb;
    size_t n;
    if (!msg)
        return 0;
    tb = strstr(msg, "\nstack traceback:");
    n = tb ? (size_t)(tb - msg) : strlen(msg);
    return n > RT_REPEAT_TEXT ? RT_REPEAT_TEXT : n;
}

static uint64_t hash(const char *where, const char *text, size_t tn)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = where; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (size_t i = 0; i < tn; i++)
        h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
    return h;
}

static void drop(rt_repeat *r, int i)
{
    free(r->e[i].where);
    free(r->e[i].text);
    r->e[i] = r->e[--r->n];
}

int rt_repeat_hit(rt_repeat *r, const char *where, const char *text, size_t text_len, uint64_t now,
                  rt_repeat_fn fn, void *ud)
{
    uint64_t h;
    rt_repeat_entry *e;
    if (!where)
        where = "";
    if (!text)
        text = "";
    if (text_len > RT_REPEAT_TEXT)
        text_len = RT_REPEAT_TEXT;
    h = hash(where, text, text_len);
    for (int i = 0; i < r->n; i++) {
        e = &r->e[i];
        if (e->hash == h && strcmp(e->where, where) == 0 && strncmp(e->text, text, text_len) == 0 &&
            e->text[text_len] == 0) {
            if (now >= e->start + r->window_ms && e->count == 0) {
                e->start = now;             /* quiet for a whole window: log it afresh */
                return 1;
            }
            e->count++;
            return 0;
        }
    }
    if (r->n == RT_REPEAT_MAX)
        rt_repeat_flush(r, now, 1, fn, ud);
    e = &r->e[r->n];
    e->where = strdup(where);
    e->text = malloc(text_len + 1);
    if (!e->where || !e->text) {
        free(e->where);
        free(e->text);
        return 1;
    }
    memcpy(e->text, text, text_len);
    e->text[text_len] = 0;
    e->hash = h;
    e->start = now;
    e->count = 0;
    r->n++;
    return 1;
}

int rt_repeat_flush(rt_repeat *r, uint64_t now, int final, rt_repeat_fn fn, void *ud)
{
    for (int i = 0; i < r->n;) {
        rt_repeat_entry *e = &r->e[i];
        if (!final && now < e->start + r->window_ms) {
            i++;
            continue;
        }
        if (e->count > 0) {
            if (fn)
                fn(e->where, e->text, e->count, now - e->start, ud);
            if (!final) {
                e->count = 0;               /* still repeating: stay quiet another window */
                e->start = now;
                i++;
                continue;
            }
        }
        drop(r, i);
    }
    return r->n;
}

void rt_repeat_free(rt_repeat *r)
{
    while (r->n > 0)
        drop(r, r->n - 1);
}
