/*
 * ljs_consumer_watch.c - consumer info requests and MAX_DELIVERIES
 * advisories for the pull engine (see ljs_consumer_watch.h; PROTOCOL.md
 * "Facts found by trying the runtime hard": when heartbeats stop, ask
 * CONSUMER.INFO). The answer is parsed by rt_pull_info_parse (rt_pull.c).
 */
#include "ljs_consumer_watch.h"
#include "lmsg.h"
#include "lwire.h"
#include "rt_json.h"
#include "rt_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jl_cwatch {
    jl_reply          r;           /* first: the mux hands us &r */
    jl_conn          *c;
    char             *info_subj;
    natsSubscription *adv;
    int               out;         /* a request is out (r is in the mux) */
    jl_cwatch_info_fn info;
    jl_cwatch_maxdel_fn maxdel;
    void             *owner;
};

static void info_reply(jl_reply *r, natsMsg *m, const char *err)
{
    jl_cwatch *w = (jl_cwatch *)r;
    rt_pull_info ci;
    w->out = 0;
    memset(&ci, 0, sizeof ci);
    if (m && natsMsg_IsNoResponders(m)) {
        ci.code = "no_responders";
        snprintf(ci.detail, sizeof ci.detail, "nobody answered the consumer info request (JetStream unavailable)");
    } else if (m) {
        rt_pull_info_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &ci);
    } else {
        ci.code = err ? err : "closed";
        snprintf(ci.detail, sizeof ci.detail, "consumer info request: %s", ci.code);
    }
    if (m)
        jl_msg_free(m);
    w->info(w->owner, &ci);        /* may free w: nothing after this */
}

jl_cwatch *jl_cwatch_new(jl_conn *c, const char *info_subj, const char *adv_subj, jl_cwatch_info_fn info,
                         jl_cwatch_maxdel_fn maxdel, void *owner)
{
    jl_cwatch *w = rt_xcalloc(1, sizeof *w);
    w->c = c;
    w->info_subj = rt_xstrdup(info_subj);
    w->info = info;
    w->maxdel = maxdel;
    w->owner = owner;
    w->r.fn = info_reply;
    w->r.data = w;
    if (adv_subj && natsConnection_SubscribeSync(&w->adv, c->nc, adv_subj) == NATS_OK)
        natsSubscription_SetPendingLimits(w->adv, -1, -1);
    else
        w->adv = NULL;
    return w;
}

int jl_cwatch_asking(const jl_cwatch *w) { return w && w->out; }

int jl_cwatch_ask(jl_cwatch *w, uint64_t timeout_ms)
{
    char reply[128];
    if (!w || !w->info_subj)
        return 0;
    if (w->out)
        return 1;
    if (w->c->state != JL_CONN_CONNECTED || jl_conn_reply_add(w->c, &w->r, timeout_ms, reply, sizeof reply) != 0)
        return 0;
    if (natsConnection_PublishRequest(w->c->nc, w->info_subj, reply, "", 0) != NATS_OK) {
        jl_conn_reply_cancel(w->c, &w->r);
        return 0;
    }
    jl_conn_write_some(w->c, 0);
    w->out = 1;
    return 1;
}

int jl_cwatch_pending(jl_cwatch *w)
{
    int msgs = 0, bytes = 0;
    if (!w || !w->adv)
        return 0;
    if (natsSubscription_GetPending(w->adv, &msgs, &bytes) != NATS_OK)
        return 1;
    return msgs > 0;
}

void jl_cwatch_pump(jl_cwatch *w)
{
    if (!w)
        return;
    while (w->adv && jl_cwatch_pending(w)) {
        int64_t seq = -1, n = -1;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, w->adv, 0);
        if (s == NATS_SLOW_CONSUMER)
            continue;
        if (s != NATS_OK)
            break;
        rt_json_int(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "stream_seq", &seq);
        rt_json_int(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "deliveries", &n);
        jl_msg_free(m);
        if (seq > 0 && w->maxdel)
            w->maxdel(w->owner, seq, n);
    }
}

void jl_cwatch_free(jl_cwatch *w)
{
    if (!w)
        return;
    if (w->out)
        jl_conn_reply_cancel(w->c, &w->r);
    if (w->adv) {
        natsSubscription_Unsubscribe(w->adv);
        natsSubscription_Destroy(w->adv);
    }
    free(w->info_subj);
    free(w);
}
