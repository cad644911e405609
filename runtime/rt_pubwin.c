/*
 * rt_pubwin.c - publish window and write-position accounting (see rt_pubwin.h).
 */
#include "rt_pubwin.h"

void rt_pubwin_init(rt_pubwin *w, int max_msgs, uint64_t max_bytes)
{
    w->max_msgs = max_msgs >= 1 ? max_msgs : 1;
    w->max_bytes = max_bytes >= 1 ? max_bytes : 1;
    w->msgs = 0;
    w->bytes = 0;
    w->want = 0;
}

static int fits(const rt_pubwin *w, uint64_t size)
{
    if (w->msgs == 0)
        return 1;
    return w->msgs < w->max_msgs && w->bytes + size <= w->max_bytes;
}

int rt_pubwin_admit(rt_pubwin *w, uint64_t size)
{
    if (fits(w, size)) {
        w->want = 0;
        return 1;
    }
    w->want = size;
    return 0;
}

void rt_pubwin_add(rt_pubwin *w, uint64_t size)
{
    w->msgs++;
    w->bytes += size;
}

void rt_pubwin_del(rt_pubwin *w, uint64_t size)
{
    if (w->msgs > 0)
        w->msgs--;
    w->bytes = w->bytes >= size ? w->bytes - size : 0;
    if (w->msgs == 0)
        w->bytes = 0;
}

int rt_pubwin_resume(const rt_pubwin *w)
{
    int room = w->max_msgs - (w->max_msgs >= 4 ? w->max_msgs / 4 : 1);
    uint64_t need = w->max_bytes / 4;
    if (w->msgs == 0)
        return 1;
    if (w->want > need)
        need = w->want;
    return w->msgs <= room && w->bytes + need <= w->max_bytes;
}

int rt_pubwin_full(const rt_pubwin *w)
{
    return !fits(w, w->want);
}

void rt_wtrack_wrote(rt_wtrack *t, int before, int after)
{
    if (before < 0)
        return;
    if (after < 0)
        after = 0;
    if (before > after)
        t->written += (uint64_t)(before - after);
}

void rt_wtrack_drop(rt_wtrack *t)
{
    t->epoch++;
}

uint64_t rt_wtrack_end(const rt_wtrack *t, int buffered)
{
    return t->written + (uint64_t)(buffered > 0 ? buffered : 0);
}

int rt_wtrack_buffered(const rt_wtrack *t, uint32_t epoch, uint64_t end, int buffered)
{
    if (epoch != t->epoch || buffered <= 0)
        return 0;
    return t->written < end;
}
