/*
 * test_pubwin.c - the async publish window (messages and bytes) and the
 * write-buffer position tracker; the publish queue (rt_pubq): lists,
 * deadlines, and the re-arm / retry / fail decision, table-driven.
 */
#include "check.h"
#include "rt_pubwin.h"

#include <string.h>

static int count(const rt_pubent *e)
{
    int n = 0;
    for (; e; e = e->next)
        n++;
    return n;
}

/* The lists, the deadline order, the window. */
static void queue(void)
{
    rt_pubq q;
    rt_pubent e[4];
    memset(e, 0, sizeof e);
    rt_pubq_init(&q, 10, 1000);
    rt_pubq_enter(&q, &e[0], 100, 500, 2);
    rt_pubq_enter(&q, &e[1], 50, 200, 0);
    rt_pubq_enter(&q, &e[2], 10, 1000, 0);
    CHECK(q.pending == 3 && q.win.msgs == 3 && q.win.bytes == 160);
    CHECK(e[0].where == RT_PUBENT_NEW && !q.sent && !q.held);

    /* sent at t=1000: deadlines 1500, 1200, 2000 -> order 1, 0, 2 */
    rt_pubq_sent(&q, &e[0], 1000);
    rt_pubq_sent(&q, &e[1], 1000);
    rt_pubq_sent(&q, &e[2], 1000);
    CHECK(q.sent == &e[1] && e[1].next == &e[0] && e[0].next == &e[2] && q.sent_tail == &e[2]);
    CHECK(e[0].deadline == 1500 && e[1].deadline == 1200 && e[2].deadline == 2000);
    CHECK(rt_pubq_expired(&q, 1199) == NULL);
    CHECK(rt_pubq_expired(&q, 1200) == &e[1]);

    /* held: FIFO, not before now + delay, deadline after that */
    rt_pubq_hold(&q, &e[1], 1200, 250);
    CHECK(e[1].where == RT_PUBENT_HELD && q.held == &e[1] && q.held_tail == &e[1]);
    CHECK(e[1].not_before == 1450 && e[1].deadline == 1650);
    CHECK(q.sent == &e[0] && count(q.sent) == 2);
    CHECK(!rt_pubq_ready(&e[1], 1449) && rt_pubq_ready(&e[1], 1450));
    CHECK(!rt_pubq_held_expired(&e[1], 1649) && rt_pubq_held_expired(&e[1], 1650));
    rt_pubq_hold(&q, &e[2], 1200, 0);
    CHECK(q.held == &e[1] && q.held_tail == &e[2] && count(q.sent) == 1);

    /* re-sent from held: back in the sent list, in deadline order */
    rt_pubq_sent(&q, &e[2], 1300); /* deadline 2300, after e[0]'s 1500 */
    CHECK(q.sent == &e[0] && q.sent_tail == &e[2] && count(q.held) == 1);
    rt_pubq_sent(&q, &e[1], 1000); /* deadline 1200: to the front */
    CHECK(q.sent == &e[1] && !q.held && !q.held_tail && count(q.sent) == 3);

    /* removal from anywhere, and of an entry never listed */
    rt_pubq_remove(&q, &e[0]);
    CHECK(q.pending == 2 && q.win.bytes == 60 && count(q.sent) == 2 && e[0].where == RT_PUBENT_NEW);
    rt_pubq_enter(&q, &e[3], 5, 100, 0);
    rt_pubq_remove(&q, &e[3]);
    CHECK(q.pending == 2 && q.win.msgs == 2 && q.win.bytes == 60);
    rt_pubq_remove(&q, &e[1]);
    rt_pubq_remove(&q, &e[2]);
    CHECK(q.pending == 0 && q.win.msgs == 0 && q.win.bytes == 0 && !q.sent && !q.sent_tail);
}

/* What a failed attempt leads to. */
static void decisions(void)
{
    static const struct {
        const char *code;
        int where;  /* where the entry is when it fails */
        int wepoch; /* it was written out before */
        int tries;
        rt_pubfacts f; /* can_retry, open, closed, in_buffer */
        int want;
        uint64_t not_before; /* RETRY: now + delay */
    } cases[] = {
        /* a timeout while the copy still waits in the write buffer: re-armed */
        {"timeout", RT_PUBENT_SENT, 1, 2, {1, 1, 0, 1}, RT_PUB_REARM, 0},
        /* ... but not without tries left, when stopping, or never sent */
        {"timeout", RT_PUBENT_SENT, 1, 0, {1, 1, 0, 1}, RT_PUB_FAIL, 0},
        {"timeout", RT_PUBENT_SENT, 1, 2, {1, 0, 0, 1}, RT_PUB_FAIL, 0},
        {"timeout", RT_PUBENT_SENT, 0, 2, {1, 1, 0, 1}, RT_PUB_RETRY, 1000},
        /* held entries are never re-armed: they are not in the buffer */
        {"timeout", RT_PUBENT_HELD, 1, 2, {1, 1, 0, 1}, RT_PUB_RETRY, 1000},
        /* a timeout of a copy that left the buffer: retried now */
        {"timeout", RT_PUBENT_SENT, 1, 1, {1, 1, 0, 0}, RT_PUB_RETRY, 1000},
        /* no responders: retried after the retry delay */
        {"no_responders", RT_PUBENT_SENT, 1, 1, {1, 1, 0, 0}, RT_PUB_RETRY, 1250},
        {"no_responders", RT_PUBENT_SENT, 1, 1, {1, 1, 0, 1}, RT_PUB_RETRY, 1250},
        {"disconnected", RT_PUBENT_SENT, 1, 3, {1, 1, 0, 0}, RT_PUB_RETRY, 1000},
        /* the connection closed for good, or the failure forbids retries */
        {"disconnected", RT_PUBENT_SENT, 1, 3, {1, 1, 1, 0}, RT_PUB_FAIL, 0},
        {"timeout", RT_PUBENT_SENT, 1, 3, {0, 1, 0, 1}, RT_PUB_FAIL, 0},
        {"closed", RT_PUBENT_HELD, 0, 3, {0, 1, 0, 0}, RT_PUB_FAIL, 0},
        /* not retryable codes */
        {"wrong_last_sequence", RT_PUBENT_SENT, 1, 3, {1, 1, 0, 0}, RT_PUB_FAIL, 0},
        {"permission_denied", RT_PUBENT_SENT, 1, 3, {1, 1, 0, 0}, RT_PUB_FAIL, 0},
        {"bad_response", RT_PUBENT_SENT, 1, 3, {1, 1, 0, 0}, RT_PUB_FAIL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_pubq q;
        rt_pubent e, other;
        int d;
        memset(&e, 0, sizeof e);
        memset(&other, 0, sizeof other);
        rt_pubq_init(&q, 10, 1000);
        rt_pubq_enter(&q, &other, 10, 5000, 0);
        rt_pubq_sent(&q, &other, 0); /* deadline 5000 */
        rt_pubq_enter(&q, &e, 10, 300, cases[i].tries);
        if (cases[i].where == RT_PUBENT_SENT)
            rt_pubq_sent(&q, &e, 700); /* deadline 1000 */
        else
            rt_pubq_hold(&q, &e, 700, 0);
        e.wepoch = (uint32_t)cases[i].wepoch;
        d = rt_pubq_failed(&q, &e, cases[i].code, &cases[i].f, 1000, 250);
        if (d != cases[i].want)
            fprintf(stderr, "decision case %zu (%s): got %d\n", i, cases[i].code, d);
        CHECK(d == cases[i].want);
        CHECK(q.pending == 2); /* the caller removes failures */
        if (d == RT_PUB_REARM) {
            CHECK(e.tries_left == cases[i].tries - 1);
            CHECK(e.where == RT_PUBENT_SENT && e.deadline == 1300);
            CHECK(q.sent == &e && e.next == &other); /* re-sorted by its new deadline */
        } else if (d == RT_PUB_RETRY) {
            CHECK(e.tries_left == cases[i].tries - 1);
            CHECK(e.where == RT_PUBENT_HELD && q.held == &e);
            CHECK(e.not_before == cases[i].not_before && e.deadline == cases[i].not_before + 300);
            CHECK(q.sent == &other && !other.next);
        } else {
            CHECK(e.tries_left == cases[i].tries && e.where == cases[i].where);
        }
    }
    CHECK(rt_pub_retryable("timeout") && rt_pub_retryable("no_responders") &&
          rt_pub_retryable("disconnected"));
    CHECK(!rt_pub_retryable("closed") && !rt_pub_retryable("api_error") && !rt_pub_retryable(""));
}

/* The timeout detail says whether the message may have been stored. */
static void timeout_texts(void)
{
    rt_pubent e;
    memset(&e, 0, sizeof e);
    e.where = RT_PUBENT_SENT;
    CHECK(strstr(rt_pubq_timeout_text(&e, 1), "still waits in the connection's write buffer") != NULL);
    CHECK(strstr(rt_pubq_timeout_text(&e, 0), "the message was sent") != NULL);
    e.where = RT_PUBENT_HELD;
    CHECK(strstr(rt_pubq_timeout_text(&e, 0), "never sent (it is not stored)") != NULL);
    e.wepoch = 3;
    CHECK(strstr(rt_pubq_timeout_text(&e, 0), "an earlier attempt may have been stored") != NULL);
}

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

    queue();
    decisions();
    timeout_texts();
    return DONE();
}
