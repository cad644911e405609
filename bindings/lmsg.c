/*
 * lmsg.c - message objects: msg.subject, msg.reply, msg.data, msg.size,
 * msg.headers, msg:header(name), msg:header_values(name),
 * msg:respond(data, opts); for JetStream messages msg:ack(), msg:nak(delay),
 * msg:in_progress(), msg:term(), msg:ack_sync(timeout), msg:metadata().
 *
 * The userdata owns the natsMsg until it is collected. Fields are read
 * lazily from the natsMsg, so a handler that only counts messages never
 * copies a payload into a Lua string. Acks are plain publishes to the
 * message's $JS.ACK reply subject, counted in the consumer's jl_ackstats.
 */
#include "jl.h"
#include "lconn.h"
#include "lfuture.h"
#include "lmsg.h"
#include "lmux.h"
#include "lpublish.h"
#include "lwire.h"
#include "rt_jsack.h"
#include "rt_mem.h"
#include "rt_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MT "jetlua.msg"

struct lmsg {
    natsMsg *m;
    jl_conn *c;
    int      acked;     /* JetStream: an ack, nak or term was sent (or an ack_sync is out) */
    int      outputs;   /* publishes waiting for their PubAck before this is acked */
    int      out_failed;
    jl_ackstats *st;    /* the consumer's counters, or NULL */
};

static int methods_ref = LUA_NOREF;
static int mt_ref = LUA_NOREF;      /* the metatable, by integer ref: no string lookup per message */

/* The Lua GC sees a message as its small userdata, not the natsMsg it
 * owns: 1 MiB messages piled up until the GC ran on its own (a consume of
 * 200 of them peaked at 217 MB RSS against 24 MB for cnats, and each new
 * message got fresh pages). So every JL_MSG_GC_BYTES of payload handed to
 * Lua runs the GC through one cycle; small messages rarely reach it. */
#define JL_MSG_GC_BYTES (16 * 1024 * 1024)
static size_t gc_debt;

lmsg *jl_msg_push_ud(lua_State *L, natsMsg *m, jl_conn *c)
{
    lmsg *u;
    gc_debt += (size_t)natsMsg_GetDataLength(m);
    if (gc_debt >= JL_MSG_GC_BYTES) {
        lua_gc(L, LUA_GCSTEP, (int)(gc_debt / 1024));
        gc_debt = 0;
    }
    u = lua_newuserdata(L, sizeof *u);
    u->m = m;
    u->c = c;
    u->acked = 0;
    u->outputs = 0;
    u->out_failed = 0;
    u->st = NULL;
    if (c)
        jl_conn_retain(c);
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
    lua_setmetatable(L, -2);
    return u;
}

void jl_msg_push(lua_State *L, natsMsg *m, jl_conn *c)
{
    jl_msg_push_ud(L, m, c);
}

int jl_msg_acked(lmsg *u) { return u->acked; }
int jl_msg_handed_off(lmsg *u)
{
    return u->outputs > 0;
}

/* Hand-off (js:publish_async{ack = msg}): the message is acked once every
 * output linked to it got its PubAck, nak'd (1 s) as soon as one fails. */
void jl_msg_output_add(lmsg *u) { u->outputs++; }

void jl_msg_output_done(lmsg *u, int ok)
{
    u->outputs--;
    if (!ok && !u->out_failed) {
        u->out_failed = 1;
        if (!u->acked)
            jl_msg_send_ack(u, "-NAK {\"delay\":1000000000}");
    }
    if (u->outputs == 0 && !u->out_failed && !u->acked)
        jl_msg_send_ack(u, "+ACK");
}

void jl_msg_set_stats(lmsg *u, jl_ackstats *st)
{
    u->st = st;
    st->refs++;
}

void jl_ackstats_release(jl_ackstats *st)
{
    if (st && --st->refs == 0)
        free(st);
}

/* count one sent ack by its payload's first bytes */
static void count_ack(lmsg *u, const char *payload)
{
    jl_ackstats *st = u->st;
    if (!st)
        return;
    if (payload[1] == 'A') {
        st->acked++;
        rt_metric_add(st->m_acked, 1);
    } else if (payload[1] == 'N') {
        st->naked++;
        rt_metric_add(st->m_naked, 1);
    } else if (payload[1] == 'T') {
        st->termed++;
        rt_metric_add(st->m_termed, 1);
    } else {
        st->in_progress++;
    }
}

static lmsg *check(lua_State *L, int idx, const char *fname);

/* ---- JetStream acks: plain publishes to the $JS.ACK reply (PROTOCOL.md §3;
 * cnats' natsMsg_Ack crashes on messages of a plain subscription) ---- */

static int is_js(lmsg *u)
{
    const char *r = natsMsg_GetReply(u->m);
    return r && strncmp(r, "$JS.ACK.", 8) == 0 && u->c;
}

int jl_msg_send_ack(lmsg *u, const char *payload)
{
    natsStatus s;
    if (!is_js(u) || u->c->state == JL_CONN_CLOSED)
        return -1;
    if (u->acked && strcmp(payload, "+WPI") != 0)
        return -2;
    s = natsConnection_Publish(u->c->nc, natsMsg_GetReply(u->m), payload, (int)strlen(payload));
    jl_conn_write_some(u->c, 0);
    if (s != NATS_OK)
        return -1;
    if (strcmp(payload, "+WPI") != 0)
        u->acked = 1;
    count_ack(u, payload);
    return 0;
}

static int ack_common(lua_State *L, const char *fname, const char *payload)
{
    lmsg *u = check(L, 1, fname);
    if (!is_js(u))
        return luaL_error(L, "%s: not a JetStream message (no $JS.ACK reply subject)", fname);
    if (u->acked)
        return jl_fail(L, "already_acked", "the message was already acknowledged (ack, nak or term)");
    if (jl_conn_is_closed(u->c))
        return jl_conn_closed_result(L, fname);
    jl_conn_check_open(L, u->c, fname);
    if (jl_msg_send_ack(u, payload) != 0)
        return jl_fail(L, "closed", "the connection is closed");
    lua_pushboolean(L, 1);
    return 1;
}

static int msg_ack(lua_State *L)  { return ack_common(L, "msg:ack", "+ACK"); }
static int msg_term(lua_State *L) { return ack_common(L, "msg:term", "+TERM"); }
static int msg_in_progress(lua_State *L) { return ack_common(L, "msg:in_progress", "+WPI"); }

/* msg:nak([delay seconds]) */
static int msg_nak(lua_State *L)
{
    char payload[64];
    if (lua_isnoneornil(L, 2))
        return ack_common(L, "msg:nak", "-NAK");
    {
        double d = jl_check_number(L, 2, "msg:nak", "delay");
        if (d < 0)
            jl_argerror(L, "msg:nak", "delay", "must be >= 0 seconds, got %g", d);
        snprintf(payload, sizeof payload, "-NAK {\"delay\":%lld}", (long long)(d * 1e9));
    }
    return ack_common(L, "msg:nak", payload);
}

/* An ack_sync: the mux's waiter and the future its coroutine waits on. */
typedef struct acksync_op {
    jl_reply_wait w; /* first: the future's ops get &w.f */
    lmsg *u;
} acksync_op;

static int acksync_push(lua_State *L, jl_future *f)
{
    lua_pushboolean(L, 1);
    return 1;
}

static const jl_future_ops acksync_ops = {"msg:ack_sync", "msg:ack_sync", acksync_push,
                                          jl_reply_wait_abandoned};

static void acksync_done(jl_reply *r, natsMsg *m, const char *err)
{
    acksync_op *op = r->data;
    jl_conn *c = r->conn;

    if (m && natsMsg_IsNoResponders(m))
        err = "no_responders";
    jl_msg_free(m);
    if (err) {
        const char *why = strcmp(err, "no_responders") == 0 ? "nobody answered (the consumer is gone?)"
                          : r->detail                       ? r->detail
                                                            : err;
        size_t n = strlen(why) + 32;
        char *text = rt_xmalloc(n);
        op->u->acked = 0; /* not confirmed: the script may try again */
        snprintf(text, n, "msg:ack_sync: %s", why);
        jl_future_fail(&op->w.f, err, text, 0);
        free(text);
    } else {
        count_ack(op->u, "+ACK");
        jl_future_ok(&op->w.f);
    }
    jl_future_free(&op->w.f);
    free(op);
    jl_conn_release(c);
}

/* msg:ack_sync([timeout]): ack and wait until the server confirms it */
static int msg_ack_sync(lua_State *L)
{
    lmsg *u = check(L, 1, "msg:ack_sync");
    double timeout = 5.0;
    char reply[128];
    acksync_op *op;
    rt_co *co;

    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "msg:ack_sync", "timeout");
        if (!(timeout > 0))
            jl_argerror(L, "msg:ack_sync", "timeout", "must be > 0 seconds");
    }
    if (!is_js(u))
        return luaL_error(L, "msg:ack_sync: not a JetStream message (no $JS.ACK reply subject)");
    co = rt_co_current(L, "msg:ack_sync");
    if (u->acked)
        return jl_fail(L, "already_acked", "the message was already acknowledged (ack, nak or term)");
    if (jl_conn_is_closed(u->c))
        return jl_conn_closed_result(L, "msg:ack_sync");
    jl_conn_check_open(L, u->c, "msg:ack_sync");
    op = rt_xcalloc(1, sizeof *op);
    jl_future_init(&op->w.f, &acksync_ops);
    op->u = u;
    op->w.r.fn = acksync_done;
    op->w.r.data = op;
    if (jl_conn_reply_add(u->c, &op->w.r, (uint64_t)(timeout * 1000.0), reply, sizeof reply) != 0) {
        free(op);
        return jl_fail(L, "closed", "msg:ack_sync: the connection is closed");
    }
    if (natsConnection_PublishRequest(u->c->nc, natsMsg_GetReply(u->m), reply, "+ACK", 4) != NATS_OK) {
        jl_conn_reply_cancel(u->c, &op->w.r);
        free(op);
        return jl_fail(L, "closed", "msg:ack_sync: the connection is closed");
    }
    jl_conn_write_some(u->c, 0);
    u->acked = 1;
    jl_conn_retain(u->c);
    return jl_future_wait(L, &op->w.f, co, 0, -1, NULL);
}

/* msg:metadata() -> {stream=, consumer=, num_delivered=, stream_seq=, consumer_seq=,
 * timestamp=, num_pending=, domain=} from the $JS.ACK reply (v1: 9 tokens, v2: 11+) */
static int msg_metadata(lua_State *L)
{
    static const char *const nums[] = {NULL, NULL, "num_delivered", "stream_seq", "consumer_seq",
                                       "timestamp", "num_pending"};
    lmsg *u = check(L, 1, "msg:metadata");
    rt_ack_meta m;

    if (rt_ack_subject(natsMsg_GetReply(u->m), &m) != 0)
        return jl_fail(L, "not_jetstream", "msg:metadata: not a JetStream message");
    lua_createtable(L, 0, 8);
    lua_pushlstring(L, m.f[RT_ACK_STREAM], m.len[RT_ACK_STREAM]);
    lua_setfield(L, -2, "stream");
    lua_pushlstring(L, m.f[RT_ACK_CONSUMER], m.len[RT_ACK_CONSUMER]);
    lua_setfield(L, -2, "consumer");
    for (int i = RT_ACK_DELIVERED; i <= RT_ACK_PENDING; i++) {
        double v = (double)strtoll(m.f[i], NULL, 10);      /* stops at the '.' */
        lua_pushnumber(L, i == RT_ACK_TIMESTAMP ? v / 1e9 : v);
        lua_setfield(L, -2, nums[i]);
    }
    if (m.domain) {
        lua_pushlstring(L, m.domain, m.domain_len);
        lua_setfield(L, -2, "domain");
    }
    return 1;
}

/* msg:_ack_ids() -> stream, stream sequence (a string), consumer,
 * num_delivered: the part of metadata() a pipeline (each message's
 * Nats-Msg-Id) and jet.idempotent (its key and claim) need, without the
 * table metadata() builds */
static int msg_ack_ids(lua_State *L)
{
    lmsg *u = check(L, 1, "msg:_ack_ids");
    rt_ack_meta m;
    if (rt_ack_subject(natsMsg_GetReply(u->m), &m) != 0)
        return jl_fail(L, "not_jetstream", "msg:_ack_ids: not a JetStream message");
    lua_pushlstring(L, m.f[RT_ACK_STREAM], m.len[RT_ACK_STREAM]);
    lua_pushlstring(L, m.f[RT_ACK_STREAM_SEQ], m.len[RT_ACK_STREAM_SEQ]);
    lua_pushlstring(L, m.f[RT_ACK_CONSUMER], m.len[RT_ACK_CONSUMER]);
    lua_pushnumber(L, (double)strtoll(m.f[RT_ACK_DELIVERED], NULL, 10));
    return 4;
}

static lmsg *check(lua_State *L, int idx, const char *fname)
{
    lmsg *u = luaL_testudata(L, idx, MSG_MT);
    if (!u)
        jl_argerror(L, fname, "self", "message expected, got %s (use msg:%s, not msg.%s)",
                    jl_typename(L, idx), strchr(fname, ':') ? strchr(fname, ':') + 1 : fname,
                    strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
    return u;
}

lmsg *jl_msg_check_ud(lua_State *L, int idx, const char *fname)
{
    return check(L, idx, fname);
}

lmsg *jl_msg_test_ud(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, MSG_MT);
}

natsMsg *jl_msg_check(lua_State *L, int idx, const char *fname)
{
    return check(L, idx, fname)->m;
}

/* headers as a table: name -> value, or name -> {v1, v2, ...} when a header
 * has several values (the same shape nc:publish accepts). */
static void push_headers(lua_State *L, natsMsg *m)
{
    const char **keys = NULL;
    int nkeys = 0;

    lua_newtable(L);
    if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK)
        return;
    for (int i = 0; i < nkeys; i++) {
        const char **vals = NULL;
        int nvals = 0;
        if (natsMsgHeader_Values(m, keys[i], &vals, &nvals) != NATS_OK)
            continue;
        if (nvals == 1) {
            lua_pushstring(L, vals[0]);
        } else {
            lua_createtable(L, nvals, 0);
            for (int j = 0; j < nvals; j++) {
                lua_pushstring(L, vals[j]);
                lua_rawseti(L, -2, j + 1);
            }
        }
        lua_setfield(L, -2, keys[i]);
        free((void *)vals);
    }
    free((void *)keys);
}

static int msg_index(lua_State *L)
{
    lmsg *u = lua_touserdata(L, 1);
    size_t len;
    const char *k = luaL_checklstring(L, 2, &len);

    switch (k[0]) {
    case 'd':
        if (strcmp(k, "data") == 0) {
            lua_pushlstring(L, natsMsg_GetData(u->m), (size_t)natsMsg_GetDataLength(u->m));
            return 1;
        }
        break;
    case 's':
        if (strcmp(k, "subject") == 0) {
            lua_pushstring(L, natsMsg_GetSubject(u->m));
            return 1;
        }
        if (strcmp(k, "size") == 0) {
            lua_pushinteger(L, natsMsg_GetDataLength(u->m));
            return 1;
        }
        break;
    case 'r':
        if (strcmp(k, "reply") == 0) {
            const char *r = natsMsg_GetReply(u->m);
            if (r && *r)
                lua_pushstring(L, r);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    case 'h':
        if (strcmp(k, "headers") == 0) {
            push_headers(L, u->m);
            return 1;
        }
        break;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, methods_ref);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int msg_header(lua_State *L)
{
    lmsg *u = check(L, 1, "msg:header");
    const char *name = jl_check_string(L, 2, "msg:header", "name", NULL);
    const char *v = NULL;
    if (natsMsgHeader_Get(u->m, name, &v) == NATS_OK && v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int msg_header_values(lua_State *L)
{
    lmsg *u = check(L, 1, "msg:header_values");
    const char *name = jl_check_string(L, 2, "msg:header_values", "name", NULL);
    const char **vals = NULL;
    int n = 0;
    lua_newtable(L);
    if (natsMsgHeader_Values(u->m, name, &vals, &n) == NATS_OK) {
        for (int i = 0; i < n; i++) {
            lua_pushstring(L, vals[i]);
            lua_rawseti(L, -2, i + 1);
        }
        free((void *)vals);
    }
    return 1;
}

/* msg:respond(data, {headers=}) */
static int msg_respond(lua_State *L)
{
    static const char *const keys[] = {"headers", NULL};
    lmsg *u = check(L, 1, "msg:respond");
    size_t len = 0;
    const char *data = "";
    const char *reply = natsMsg_GetReply(u->m);
    int hidx = 0;
    natsStatus s;

    if (!lua_isnoneornil(L, 2))
        data = jl_check_string(L, 2, "msg:respond", "data", &len);
    if (jl_opt_table(L, 3, "msg:respond", "opts")) {
        jl_check_keys(L, 3, "msg:respond", keys);
        lua_getfield(L, 3, "headers");
        if (!lua_isnil(L, -1))
            hidx = lua_gettop(L);
    }
    if (!reply || !*reply)
        return luaL_error(L, "msg:respond: the message has no reply subject");
    if (!u->c)
        return luaL_error(L, "msg:respond: the message has no connection");
    jl_check_pub_line(L, "msg:respond", "reply", strlen(reply), 0, hidx != 0, len);
    if (jl_conn_is_closed(u->c))
        return jl_conn_closed_result(L, "msg:respond");
    s = jl_conn_publish(L, u->c, reply, NULL, data, len, hidx, "msg:respond");
    if (s != NATS_OK)
        return jl_push_status(L, s, "msg:respond");
    lua_pushboolean(L, 1);
    return 1;
}

/* msg.x = v: messages are read-only; say so instead of Lua's generic
 * "attempt to index a userdata value". */
static int msg_newindex(lua_State *L)
{
    return luaL_error(L, "msg: fields are read-only (cannot set '%s'); copy what you need into a table",
                      lua_tostring(L, 2) ? lua_tostring(L, 2) : luaL_typename(L, 2));
}

static int msg_gc(lua_State *L)
{
    lmsg *u = lua_touserdata(L, 1);
    if (u->m) {
        jl_msg_free(u->m); /* here: not through cnats' GC thread */
        u->m = NULL;
    }
    if (u->c) {
        jl_conn_release(u->c);
        u->c = NULL;
    }
    jl_ackstats_release(u->st);
    u->st = NULL;
    return 0;
}

static int msg_tostring(lua_State *L)
{
    lmsg *u = lua_touserdata(L, 1);
    lua_pushfstring(L, "jetlua.msg(%s, %d bytes)", natsMsg_GetSubject(u->m), natsMsg_GetDataLength(u->m));
    return 1;
}

void jl_inject_msg(lua_State *L)
{
    static const luaL_Reg methods[] = {{"header", msg_header},
                                       {"header_values", msg_header_values},
                                       {"respond", msg_respond},
                                       {"ack", msg_ack},
                                       {"ack_sync", msg_ack_sync},
                                       {"nak", msg_nak},
                                       {"in_progress", msg_in_progress},
                                       {"term", msg_term},
                                       {"metadata", msg_metadata},
                                       {"_ack_ids", msg_ack_ids},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__index", msg_index}, {"__newindex", msg_newindex}, {"__gc", msg_gc},
        {"__tostring", msg_tostring}, {NULL, NULL}};

    jl_newclass(L, MSG_MT, NULL, meta);
    luaL_getmetatable(L, MSG_MT);
    mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    methods_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
