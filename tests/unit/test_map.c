/*
 * test_map.c - the token map against a plain array reference under a long
 * random sequence of puts, gets and deletes (deletion shifts entries back,
 * which is where open addressing usually breaks).
 */
#include "check.h"
#include "rt_map.h"

#include <stdint.h>
#include <stdlib.h>

#define KEYS 5000

int main(void)
{
    rt_map m;
    static void *ref[KEYS];
    uint64_t rnd = 88172645463325252ULL;
    int mismatches = 0;
    size_t live = 0;

    CHECK(rt_map_init(&m, 4) == 0);
    CHECK(rt_map_put(&m, 0, &m) == -1);            /* key 0 is reserved */
    for (int step = 0; step < 2000000; step++) {
        rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17;
        uint64_t k = 1 + rnd % KEYS;
        int op = (int)((rnd >> 32) % 3);
        void *val = (void *)(uintptr_t)(rnd | 1);
        if (op == 0) {
            if (!ref[k - 1]) live++;
            ref[k - 1] = val;
            rt_map_put(&m, k, val);
        } else if (op == 1) {
            if (rt_map_get(&m, k) != ref[k - 1]) mismatches++;
        } else {
            void *got = rt_map_del(&m, k);
            if (got != ref[k - 1]) mismatches++;
            if (ref[k - 1]) live--;
            ref[k - 1] = NULL;
        }
    }
    CHECK(mismatches == 0);
    CHECK(m.n == live);
    size_t it = 0, count = 0;
    uint64_t k;
    void *v;
    while (rt_map_next(&m, &it, &k, &v)) {
        count++;
        if (ref[k - 1] != v) mismatches++;
    }
    CHECK(count == live);
    CHECK(mismatches == 0);
    rt_map_free(&m);
    return DONE();
}
