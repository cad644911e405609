/*
 * lwire.c - a connection's write path: write accounting, nc:publish's
 * backpressure and the control-line limits.
 *
 * cnats (with the libuv adapter) appends every publish to one write buffer
 * and writes only when the loop sees the socket writable, or when jetlua
 * writes it out (before each poll, every 64 publishes, at close). When the
 * server stops reading (a frozen peer or network), nothing bounds that
 * buffer: cnats grows it until malloc fails. So:
 *  - every write goes through jl_conn_write (the adapter reports its own
 *    writes through a hook), and c->wt counts the bytes that left the
 *    buffer. The async publisher records where each message ends and never
 *    re-sends one whose first copy is still waiting in the buffer;
 *  - nc:publish, once the buffer holds more than max_buffered bytes (64 MiB),
 *    yields until it drained to half (as a blocking write would in nats.go
 *    or cnats without an event loop); outside a jetlua coroutine it returns
 *    nil, "buffer_full" instead;
 *  - nc:stats() shows the buffer and cnats' counters;
 *  - subjects, reply subjects and queue names that would make a PUB/HPUB/SUB
 *    line longer than the server's max_control_line raise an argument error
 *    (the server would close the connection for good: -ERR 'Maximum
 *    Control Line Exceeded').
 */
#include "jl.h"
#include "lconn.h"
#include "rt_natsuv.h"

#include <stdlib.h>
#include <string.h>

typedef struct jl_bpwait {
    jl_conn          *c;
    rt_co            *co;
    struct jl_bpwait *next, *prev;
} jl_bpwait;

static void wrote(jl_conn *c, int before, int after)
{
    rt_wtrack_wrote(&c->wt, before, after);
}

void jl_conn_write(jl_conn *c)
{
    int before = natsConnection_Buffered(c->nc);
    if (before <= 0)
        return;
    natsConnection_ProcessWriteEvent(c->nc);
    wrote(c, before, natsConnection_Buffered(c->nc));
}

/* The adapter wrote on a writable event (loop thread, no Lua running). */
static void adapter_wrote(void *arg, int before, int after)
{
    jl_conn *c = arg;
    wrote(c, before, after);
    if (c->bp_waits)
        jl_conn_bp_check(c);
}

void jl_conn_write_some(jl_conn *c, size_t bytes)
{
    int n;
    c->pub_bytes += bytes;
    if ((++c->pubs & 63) != 0 && c->pub_bytes < 1024 * 1024)
        return;
    c->pub_bytes = 0;
    n = natsConnection_Buffered(c->nc);
    if (n >= 32 * 1024) {
        jl_conn_write(c);
        n = natsConnection_Buffered(c->nc);
    }
    c->over_buffered = n > c->max_buffered;
}

uint64_t jl_conn_wpos(jl_conn *c)
{
    return rt_wtrack_end(&c->wt, natsConnection_Buffered(c->nc));
}

int jl_conn_wbuffered(jl_conn *c, uint32_t epoch, uint64_t end)
{
    if (c->state != JL_CONN_CONNECTED && c->state != JL_CONN_DRAINING)
        return 0;
    if (natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED &&
        natsConnection_Status(c->nc) != NATS_CONN_STATUS_DRAINING_PUBS &&
        natsConnection_Status(c->nc) != NATS_CONN_STATUS_DRAINING_SUBS)
        return 0;    /* cnats drops the buffer when it reconnects */
    return rt_wtrack_buffered(&c->wt, epoch, end, natsConnection_Buffered(c->nc));
}

/* ---- nc:publish backpressure ---- */

static void bp_unlink(jl_bpwait *w)
{
    jl_conn *c = w->c;
    if (w->prev) w->prev->next = w->next; else c->bp_waits = w->next;
    if (w->next) w->next->prev = w->prev;
}

static void bp_cancel(rt_co *co, void *op)
{
    jl_bpwait *w = op;
    jl_conn *c = w->c;
    bp_unlink(w);
    free(w);
    jl_conn_release(c);
}

/* Resume every waiter: with true, or nil, "closed". */
static void bp_wake_all(jl_conn *c, int closed)
{
    while (c->bp_waits) {
        jl_bpwait *w = c->bp_waits;
        rt_co *co = w->co;
        lua_State *T;
        int n = 1;
        bp_unlink(w);
        free(w);
        if ((T = rt_co_prepare(co)) != NULL) {
            if (closed)
                n = jl_fail(T, "closed", "nc:publish: the connection closed before the buffered "
                                         "messages were written");
            else
                lua_pushboolean(T, 1);
        }
        jl_conn_release(c);
        if (T)
            rt_co_resume(co, n);
    }
}

void jl_conn_bp_check(jl_conn *c)
{
    int n;
    if (!c->bp_waits)
        return;
    if (c->state == JL_CONN_CLOSED) {
        bp_wake_all(c, 1);
        return;
    }
    n = natsConnection_Buffered(c->nc);
    c->over_buffered = n > c->max_buffered;
    if (c->state != JL_CONN_CONNECTED || n <= c->max_buffered / 2)
        bp_wake_all(c, 0);
}

void jl_conn_bp_event(jl_conn *c, int ev)
{
    if (ev == JL_EV_DISCONNECTED)
        rt_wtrack_drop(&c->wt);
    c->over_buffered = 0;
    if (c->bp_waits)
        bp_wake_all(c, ev == JL_EV_CLOSED);
}

int jl_conn_bp_wait(jl_conn *c, rt_co *co)
{
    jl_bpwait *w = calloc(1, sizeof *w);
    w->c = c;
    w->co = co;
    w->next = c->bp_waits;
    if (c->bp_waits)
        c->bp_waits->prev = w;
    c->bp_waits = w;
    jl_conn_retain(c);
    return rt_co_wait(co, bp_cancel, w);
}

/* ---- control-line limits ---- */

void jl_check_pub_line(lua_State *L, const char *fname, const char *arg, size_t subj, size_t reply,
                       int hdr, size_t data_len)
{
    /* with headers the header block's size is not known yet: count its
     * digits as the most it can have (10), so the check is never short */
    size_t line = rt_proto_pub_line(subj, reply, hdr ? 1000000000u : 0, data_len);
    int is_reply = strcmp(arg, "reply") == 0;
    if (line <= RT_PROTO_MAX_CONTROL_LINE)
        return;
    jl_argerror(L, fname, arg, "a %s of %zu bytes makes the %s protocol line %zu bytes, over the server's "
                "max_control_line of %d (the server would close the connection)",
                is_reply ? "reply subject" : "subject", is_reply && reply ? reply : subj,
                hdr ? "HPUB" : "PUB", line, RT_PROTO_MAX_CONTROL_LINE);
}

void jl_check_sub_line(lua_State *L, const char *fname, size_t subj, size_t queue)
{
    size_t line = rt_proto_sub_line(subj, queue, 4294967295u);
    if (line <= RT_PROTO_MAX_CONTROL_LINE)
        return;
    jl_argerror(L, fname, queue > subj ? "queue" : "subject",
                "a subject of %zu bytes%s makes the SUB protocol line %zu bytes, over the server's "
                "max_control_line of %d (the server would close the connection)", subj,
                queue ? " with its queue name" : "", line, RT_PROTO_MAX_CONTROL_LINE);
}

/* jet._check_publish(fname, subject, data, has_headers): the argument checks
 * nc:request would make, raised in the name of fname (js:publish). The
 * reply is the connection's mux inbox: "_INBOX.<22>.<token>", under 64. */
static int jet_check_publish(lua_State *L)
{
    const char *fname = luaL_checkstring(L, 1);
    size_t len = 0, dlen = 0;
    const char *subj = jl_check_string(L, 2, fname, "subject", &len);
    const char *why = jl_subject_invalid(subj, len, 0);
    if (why)
        jl_argerror(L, fname, "subject", "invalid subject '%s' (%s)", subj, why);
    if (!lua_isnoneornil(L, 3))
        jl_check_string(L, 3, fname, "data", &dlen);
    jl_check_pub_line(L, fname, "subject", len, 64, lua_toboolean(L, 4), dlen);
    return 0;
}

/* nc:stats() -> {in_msgs=, out_msgs=, in_bytes=, out_bytes=, reconnects=,
 * buffered=, max_buffered=}: cnats' counters, and what waits in the write
 * buffer (bytes not yet taken by the socket) */
static int nc_stats(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:stats");
    uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnects = 0;
    natsStatistics *st = NULL;
    int buffered = 0;

    if (c->nc && natsStatistics_Create(&st) == NATS_OK) {
        if (natsConnection_GetStats(c->nc, st) == NATS_OK)
            natsStatistics_GetCounts(st, &in_msgs, &in_bytes, &out_msgs, &out_bytes, &reconnects);
        natsStatistics_Destroy(st);
    }
    if (c->nc && !jl_conn_is_closed(c))
        buffered = natsConnection_Buffered(c->nc);
    lua_createtable(L, 0, 7);
    lua_pushnumber(L, (lua_Number)in_msgs);    lua_setfield(L, -2, "in_msgs");
    lua_pushnumber(L, (lua_Number)out_msgs);   lua_setfield(L, -2, "out_msgs");
    lua_pushnumber(L, (lua_Number)in_bytes);   lua_setfield(L, -2, "in_bytes");
    lua_pushnumber(L, (lua_Number)out_bytes);  lua_setfield(L, -2, "out_bytes");
    lua_pushnumber(L, (lua_Number)c->reconnects); lua_setfield(L, -2, "reconnects");
    lua_pushinteger(L, buffered > 0 ? buffered : 0); lua_setfield(L, -2, "buffered");
    lua_pushinteger(L, c->max_buffered);       lua_setfield(L, -2, "max_buffered");
    return 1;
}

void jl_inject_wire(lua_State *L)
{
    rt_natsuv_set_write_hook(adapter_wrote);
    /* nc:stats joins the connection's methods (lconn.c made the class) */
    luaL_getmetatable(L, CONN_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, nc_stats);
    lua_setfield(L, -2, "stats");
    lua_pop(L, 2);
    lua_pushcfunction(L, jet_check_publish);
    lua_setfield(L, -2, "_check_publish");
}
