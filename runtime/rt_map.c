/*
 * rt_map.c - linear probing with backward-shift deletion (no tombstones, so
 * a map that sees millions of insert/delete pairs never degrades).
 */
#include "rt_map.h"

#include <stdlib.h>
#include <string.h>

static size_t slot(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

int rt_map_init(rt_map *m, size_t cap_hint)
{
    size_t cap = 16;
    if (cap_hint > ((size_t)1 << 40))
        return -1;                     /* absurd: would loop or overflow */
    while (cap < cap_hint * 2)
        cap <<= 1;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    return (m->keys && m->vals) ? 0 : -1;
}

void rt_map_free(rt_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int grow(rt_map *m)
{
    rt_map bigger;
    if (rt_map_init(&bigger, m->cap) != 0)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            rt_map_put(&bigger, m->keys[i], m->vals[i]);
    rt_map_free(m);
    *m = bigger;
    return 0;
}

int rt_map_put(rt_map *m, uint64_t key, void *val)
{
    size_t i;
    if (key == 0)
        return -1;
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -1;
    for (i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
        if (m->keys[i] == 0) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
    }
}

void *rt_map_get(const rt_map *m, uint64_t key)
{
    if (key == 0 || m->cap == 0)
        return NULL;
    for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

void *rt_map_del(rt_map *m, uint64_t key)
{
    size_t i, j, mask = m->cap - 1;
    void *val;

    if (key == 0 || m->cap == 0)
        return NULL;
    for (i = slot(key, m->cap);; i = (i + 1) & mask) {
        if (m->keys[i] == 0)
            return NULL;
        if (m->keys[i] == key)
            break;
    }
    val = m->vals[i];
    /* Backward shift: move later entries of the cluster into the hole when
     * their home slot is not between the hole and their position. */
    for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = slot(m->keys[j], m->cap);
        int between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!between) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->n--;
    return val;
}

int rt_map_next(const rt_map *m, size_t *iter, uint64_t *key, void **val)
{
    for (; *iter < m->cap; (*iter)++)
        if (m->keys[*iter]) {
            *key = m->keys[*iter];
            *val = m->vals[*iter];
            (*iter)++;
            return 1;
        }
    return 0;
}
