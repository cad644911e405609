/*
 * lpull_watch.c - consumer info requests and MAX_DELIVERIES advisories for
 * the pull engine (see lpull_watch.h; PROTOCOL.md "Facts found by trying
 * the runtime hard": when heartbeats stop, ask CONSUMER.INFO; 10014 consumer
 * not found and 10059 stream not found are terminal).
 */
#include "lpull_watch.h"
#include "lwire.h"
#include "rt_json.h"

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

void jl_cinfo_parse(const char *json, size_t len, jl_cinfo *ci)
{
    int64_t ec = 0, v;
    const char *raw;
    size_t rn;
    memset(ci, 0, sizeof *ci);
    ci->num_pending = ci->num_ack_pending = ci->ack_wait_ms = ci->max_deliver = -1;
    if (rt_json_get(json, len, "error", &raw, &rn) == 0) {
        rt_json_int(json, len, "error.err_code", &ec);
        char desc[160] = "";
        rt_json_str(json, len, "error.description", desc, sizeof desc);
        ci->gone = ec == 10014 || ec == 10059;
        ci->code = ec == 10014 ? "consumer_deleted" : ec == 10059 ? "stream_not_found" : "api_error";
        snprintf(ci->detail, sizeof ci->detail, "%s (err_code %lld)", desc[0] ? desc : "JetStream API error",
                 (long long)ec);
        return;
    }
    if (rt_json_get(json, len, "config", &raw, &rn) != 0) {
        ci->code = "bad_response";
        snprintf(ci->detail, sizeof ci->detail, "consumer info: not a consumer info reply");
        return;
    }
    rt_json_int(json, len, "num_pending", &ci->num_pending);
    rt_json_int(json, len, "num_ack_pending", &ci->num_ack_pending);
    rt_json_int(json, len, "config.max_batch", &ci->max_batch);
    rt_json_int(json, len, "config.max_bytes", &ci->max_bytes);
    rt_json_int(json, len, "config.max_deliver", &ci->max_deliver);
    if (rt_json_int(json, len, "config.max_expires", &v) == 0)
        ci->max_expires_ms = v / 1000000;
    if (rt_json_int(json, len, "config.ack_wait", &v) == 0)
        ci->ack_wait_ms = v / 1000000;
}

static void info_reply(jl_reply *r, natsMsg *m, const char *err)
{
    jl_cwatch *w = (jl_cwatch *)r;
    jl_cinfo ci;
    w->out = 0;
    memset(&ci, 0, sizeof ci);
    if (m && natsMsg_IsNoResponders(m)) {
        ci.code = "no_responders";
        snprintf(ci.detail, sizeof ci.detail, "nobody answered the consumer info request (JetStream unavailable)");
    } else if (m) {
        jl_cinfo_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &ci);
    } else {
        ci.code = err ? err : "closed";
        snprintf(ci.detail, sizeof ci.detail, "consumer info request: %s", ci.code);
    }
    if (m)
        natsMsg_Destroy(m);
    w->info(w->owner, &ci);        /* may free w: nothing after this */
}

jl_cwatch *jl_cwatch_new(jl_conn *c, const char *info_subj, const char *adv_subj, jl_cwatch_info_fn info,
                         jl_cwatch_maxdel_fn maxdel, void *owner)
{
    jl_cwatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->c = c;
    w->info_subj = strdup(info_subj);
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

void jl_cwatch_pump(jl_cwatch *w)
{
    if (!w)
        return;
    while (w->adv) {
        int64_t seq = -1, n = -1;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, w->adv, 0);
        if (s == NATS_SLOW_CONSUMER)
            continue;
        if (s != NATS_OK)
            break;
        rt_json_int(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "stream_seq", &seq);
        rt_json_int(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "deliveries", &n);
        natsMsg_Destroy(m);
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
