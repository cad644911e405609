/*
 * rt_map.h - open-addressing hash map from uint64 keys to pointers.
 * Used for reply tokens (requests now, publish acks later): one map lookup
 * per reply instead of a subscription or a timer per message.
 * Key 0 is reserved (empty slot). Loop thread only.
 */
#ifndef JETLUA_RT_MAP_H
#define JETLUA_RT_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_map {
    uint64_t *keys;
    void    **vals;
    size_t    cap;     /* power of two */
    size_t    n;
} rt_map;

int   rt_map_init(rt_map *m, size_t cap_hint);
void  rt_map_free(rt_map *m);
/* Insert or replace; returns 0 or -1 (out of memory, or key 0). */
int   rt_map_put(rt_map *m, uint64_t key, void *val);
void *rt_map_get(const rt_map *m, uint64_t key);
/* Remove and return the value, or NULL. */
void *rt_map_del(rt_map *m, uint64_t key);
/* Iterate: for (size_t i = 0; rt_map_next(m, &i, &k, &v);) ... */
int   rt_map_next(const rt_map *m, size_t *iter, uint64_t *key, void **val);

#endif
