/*
 * rt_pubwin.c - publish window and write-position accounting (see rt_pubwin.h).
 */
#include "rt_pubwin.h"
#include "rt_list.h"

#include <string.h>

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

/* ---- rt_pubq ---- */

void rt_pubq_init(rt_pubq *q, int max_msgs, uint64_t max_bytes)
{
    memset(q, 0, sizeof *q);
    rt_pubwin_init(&q->win, max_msgs, max_bytes);
}

void rt_pubq_enter(rt_pubq *q, rt_pubent *e, uint64_t size, uint32_t timeout_ms, int tries)
{
    e->size = size;
    e->timeout_ms = timeout_ms;
    e->tries_left = tries;
    e->where = RT_PUBENT_NEW;
    e->deadline = e->not_before = 0;
    e->wend = 0;
    e->wepoch = 0;
    e->next = e->prev = NULL;
    rt_pubwin_add(&q->win, size);
    q->pending++;
}

static void unlink_entry(rt_pubq *q, rt_pubent *e)
{
    if (e->where == RT_PUBENT_SENT)
        RT_DLIST_UNLINK(q->sent, q->sent_tail, e);
    else if (e->where == RT_PUBENT_HELD)
        RT_DLIST_UNLINK(q->held, q->held_tail, e);
    e->where = RT_PUBENT_NEW;
}

void rt_pubq_sent(rt_pubq *q, rt_pubent *e, uint64_t now)
{
    rt_pubent *at;
    unlink_entry(q, e);
    e->deadline = now + e->timeout_ms;
    /* ordered by deadline; with one timeout for all messages an append */
    at = q->sent_tail;
    while (at && at->deadline > e->deadline)
        at = at->prev;
    RT_DLIST_INSERT_AFTER(q->sent, q->sent_tail, at, e);
    e->where = RT_PUBENT_SENT;
}

void rt_pubq_hold(rt_pubq *q, rt_pubent *e, uint64_t now, uint32_t delay_ms)
{
    unlink_entry(q, e);
    e->not_before = now + delay_ms;
    e->deadline = e->not_before + e->timeout_ms;
    RT_DLIST_APPEND(q->held, q->held_tail, e);
    e->where = RT_PUBENT_HELD;
}

void rt_pubq_remove(rt_pubq *q, rt_pubent *e)
{
    unlink_entry(q, e);
    rt_pubwin_del(&q->win, e->size);
    if (q->pending > 0)
        q->pending--;
}

rt_pubent *rt_pubq_expired(const rt_pubq *q, uint64_t now)
{
    return q->sent && q->sent->deadline <= now ? q->sent : NULL;
}

int rt_pubq_ready(const rt_pubent *e, uint64_t now)
{
    return e->not_before <= now;
}

int rt_pubq_held_expired(const rt_pubent *e, uint64_t now)
{
    return e->deadline <= now && e->not_before <= now;
}

int rt_pub_retryable(const char *code)
{
    return strcmp(code, "timeout") == 0 || strcmp(code, "no_responders") == 0 ||
           strcmp(code, "disconnected") == 0;
}

int rt_pubq_failed(rt_pubq *q, rt_pubent *e, const char *code, const rt_pubfacts *f, uint64_t now,
                   uint32_t retry_delay_ms)
{
    if (!f->can_retry || e->tries_left <= 0 || !f->open)
        return RT_PUB_FAIL;
    if (strcmp(code, "timeout") == 0 && e->where == RT_PUBENT_SENT && e->wepoch && f->in_buffer) {
        /* its first copy still waits in the write buffer (the server is not
         * reading): a resend would only add a second copy behind it */
        e->tries_left--;
        rt_pubq_sent(q, e, now);
        return RT_PUB_REARM;
    }
    if (rt_pub_retryable(code) && !f->closed) {
        e->tries_left--;
        rt_pubq_hold(q, e, now, strcmp(code, "no_responders") == 0 ? retry_delay_ms : 0);
        return RT_PUB_RETRY;
    }
    return RT_PUB_FAIL;
}

const char *rt_pubq_timeout_text(const rt_pubent *e, int in_buffer)
{
    if (e->where == RT_PUBENT_HELD)
        return e->wepoch
                   ? "no PubAck within the ack timeout while the connection was down (an earlier attempt "
                     "may have been stored: publish it again with the same msg_id to be sure)"
                   : "no PubAck within the ack timeout: the connection was down and the message was "
                     "never sent (it is not stored)";
    if (in_buffer)
        return "no PubAck within the ack timeout: the message still waits in the connection's write "
               "buffer (the server is not reading it) and may be stored once it moves; publish it "
               "again with the same msg_id to be sure";
    return "no PubAck within the ack timeout (the message was sent: the server may have stored it; "
           "publish it again with the same msg_id to be sure)";
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
