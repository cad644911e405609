/*
 * test_pubwin.c - the async publish window (messages and bytes) and the
 * write-buffer position tracker.
 */
#include "check.h"
#include "rt_pubwin.h"

int main(void)
{
    rt_pubwin w;
    rt_wtrack t = {0, 0};
    uint64_t end1, end2;

    /* bounded by messages */
    rt_pubwin_init(&w, 4, 1000000);
    for (int i = 0; i < 4; i++) {
        CHECK(rt_pubwin_admit(&w, 10));
        rt_pubwin_add(&w, 10);
    }
    CHECK(!rt_pubwin_admit(&w, 10));
    CHECK(rt_pubwin_full(&w));
    rt_pubwin_del(&w, 10);
    CHECK(!rt_pubwin_full(&w));
    CHECK(rt_pubwin_resume(&w));        /* 3 <= 4 - 1 */
    CHECK(w.msgs == 3 && w.bytes == 30);

    /* bounded by bytes: 100-byte window, 30-byte messages */
    rt_pubwin_init(&w, 1000, 100);
    for (int i = 0; i < 3; i++) {
        CHECK(rt_pubwin_admit(&w, 30));
        rt_pubwin_add(&w, 30);
    }
    CHECK(!rt_pubwin_admit(&w, 30));   /* 90 + 30 > 100 */
    CHECK(rt_pubwin_full(&w));
    CHECK(!rt_pubwin_resume(&w));
    rt_pubwin_del(&w, 30);              /* 60 + max(30, 25) <= 100 */
    CHECK(rt_pubwin_resume(&w));
    CHECK(rt_pubwin_admit(&w, 30));

    /* hysteresis: woken only when a quarter (or the wanted size) is free */
    rt_pubwin_init(&w, 1000, 1000);
    rt_pubwin_add(&w, 990);
    CHECK(rt_pubwin_admit(&w, 10));      /* 990 + 10 fits exactly */
    CHECK(!rt_pubwin_admit(&w, 20));
    rt_pubwin_del(&w, 0);               /* msgs 0 -> empty resets */
    CHECK(w.msgs == 0 && w.bytes == 0);
    CHECK(rt_pubwin_resume(&w));
    rt_pubwin_add(&w, 500);
    rt_pubwin_add(&w, 300);
    CHECK(!rt_pubwin_admit(&w, 300));
    CHECK(!rt_pubwin_resume(&w));       /* 800 + 300 > 1000 */
    rt_pubwin_del(&w, 300);             /* 500 + 300 <= 1000 */
    CHECK(rt_pubwin_resume(&w));

    /* a message larger than the whole bound enters an empty window only */
    rt_pubwin_init(&w, 10, 100);
    CHECK(rt_pubwin_admit(&w, 500));
    rt_pubwin_add(&w, 500);
    CHECK(!rt_pubwin_admit(&w, 1));
    rt_pubwin_del(&w, 500);
    CHECK(rt_pubwin_admit(&w, 500));
    rt_pubwin_add(&w, 10);
    CHECK(!rt_pubwin_admit(&w, 500));
    CHECK(!rt_pubwin_resume(&w));       /* wants 500: only an empty window */
    rt_pubwin_del(&w, 10);
    CHECK(rt_pubwin_resume(&w));

    /* write positions */
    end1 = rt_wtrack_end(&t, 100);      /* 100 bytes buffered, ours end at 100 */
    CHECK(rt_wtrack_buffered(&t, 0, end1, 100));
    rt_wtrack_wrote(&t, 100, 40);       /* 60 bytes left for the socket */
    CHECK(t.written == 60);
    CHECK(rt_wtrack_buffered(&t, 0, end1, 40));
    end2 = rt_wtrack_end(&t, 90);       /* 50 more appended: ends at 150 */
    CHECK(end2 == 150);
    rt_wtrack_wrote(&t, 90, 50);        /* written 100: the first is out */
    CHECK(!rt_wtrack_buffered(&t, 0, end1, 50));
    CHECK(rt_wtrack_buffered(&t, 0, end2, 50));
    CHECK(!rt_wtrack_buffered(&t, 0, end2, 0));   /* an empty buffer holds nothing */
    rt_wtrack_wrote(&t, -1, 0);         /* unknown: nothing counted */
    CHECK(t.written == 100);
    rt_wtrack_wrote(&t, 50, -1);        /* closed after writing: all out */
    CHECK(t.written == 150);
    end1 = rt_wtrack_end(&t, 10);
    rt_wtrack_drop(&t);                 /* disconnect: the buffer is gone */
    CHECK(!rt_wtrack_buffered(&t, 0, end1, 10));
    CHECK(rt_wtrack_buffered(&t, 1, rt_wtrack_end(&t, 10), 10));
    return DONE();
}
