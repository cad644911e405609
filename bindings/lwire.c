/*
 * lwire.c - a connection's write buffer: write accounting, the write before
 * each poll, nc:publish's backpressure, and closing without losing it.
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
 *    nil, "buffer_full" instead (lpublish.c).
 *
 * Below lconn.c: this file knows the struct (jl_conn.h), not the
 * connection's life; lconn.c tells it about connects, disconnects and
 * closes (jl_wire_add/remove, jl_conn_bp_event).
 */
#include "jl.h"
#include "lwire.h"
#include "rt_list.h"
#include "rt_mem.h"
#include "rt_natsuv.h"

#include <stdlib.h>

/* An nc:publish call waiting for the buffer to drain. It holds no ref on
 * the connection: waiters exist only while c is connected, and c wakes
 * them all (jl_conn_bp_event) before it drops its own ref at close. */
typedef struct jl_bpwait {
    jl_conn          *c;
    rt_co            *co;
    struct jl_bpwait *next, *prev;
} jl_bpwait;

static void bp_check(jl_conn *c);

/* ---- write accounting ---- */

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
        bp_check(c);
}

/* (with the libuv adapter, cnats writes only when the loop sees the socket
 * writable. A script publishing in a tight loop never returns to the loop,
 * so cnats' buffer would grow (realloc + page faults: measured 5x slower
 * than raw cnats). Every 64 publishes we write what is buffered ourselves,
 * non-blocking, as the adapter's writable callback would.) */
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

/* natsConnection_Close flushes a non-empty write buffer with a PING and
 * waits up to 500 ms for the PONG, on the calling thread. Called on the loop
 * thread, the only one that reads the socket, it always waited the full
 * 500 ms (blocking the loop) and the buffered publishes were lost. So write
 * the buffer out first (non-blocking; a few tries while the socket takes it),
 * then close. Found by a helper's repro (tests/lua/test_regress_close_stall.lua). */
void jl_conn_close_now(jl_conn *c)
{
    for (int i = 0; i < 64 && natsConnection_Buffered(c->nc) > 0; i++)
        jl_conn_write(c);
    natsConnection_Close(c->nc);
}

/* ---- every open connection: the write before each poll ---- */

static jl_conn *all_conns;

/* Before the loop waits for I/O, write out what every connection buffered
 * during this iteration (acks, pull requests, requests, publishes). cnats
 * alone would leave it to its flusher thread, which waits 1 ms first: a
 * request/reply round trip (a sync JetStream publish, an API call) then
 * cost 1 ms instead of ~80 us. One write per iteration also batches the
 * acks of many handlers. */
static uv_prepare_t flush_prep;
static int flush_prep_on;

static void flush_before_poll(uv_prepare_t *h)
{
    (void)h;
    for (jl_conn *c = all_conns, *next; c; c = next) {
        next = c->next;
        if (c->state == JL_CONN_CONNECTED)
            jl_conn_write(c);
        if (c->bp_waits)
            bp_check(c);     /* may run Lua: next was read first */
    }
}

void jl_wire_add(jl_conn *c)
{
    if (!flush_prep_on) {
        flush_prep_on = 1;
        uv_prepare_init(RT->loop, &flush_prep);
        uv_prepare_start(&flush_prep, flush_before_poll);
        uv_unref((uv_handle_t *)&flush_prep);
        rt_natsuv_set_write_hook(adapter_wrote);
    }
    if (c->max_buffered <= 0)
        c->max_buffered = JL_MAX_BUFFERED;
    if (c->wt.epoch == 0)
        c->wt.epoch = 1;          /* 0 marks "never sent" in the publisher */
    RT_LIST_PUSH(all_conns, c);
}

void jl_wire_remove(jl_conn *c)
{
    RT_LIST_UNLINK(all_conns, c);
}

/* ---- nc:publish backpressure ---- */

static void bp_cancel(rt_co *co, void *op)
{
    jl_bpwait *w = op;
    RT_LIST_UNLINK(w->c->bp_waits, w);
    free(w);
}

/* Resume every waiter: with true, or nil, "closed". */
static void bp_wake_all(jl_conn *c, int closed)
{
    while (c->bp_waits) {
        jl_bpwait *w = c->bp_waits;
        rt_co *co = w->co;
        lua_State *T;
        int n = 1;
        RT_LIST_UNLINK(c->bp_waits, w);
        free(w);
        if ((T = rt_co_prepare(co)) != NULL) {
            if (closed)
                n = jl_fail(T, "closed", "nc:publish: the connection closed before the buffered "
                                         "messages were written");
            else
                lua_pushboolean(T, 1);
            rt_co_resume(co, n);
        }
    }
}

/* Top of the loop (no Lua running): wake nc:publish calls waiting for the
 * buffer to drain, when it did (or the connection went down). */
static void bp_check(jl_conn *c)
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
    jl_bpwait *w = rt_xcalloc(1, sizeof *w);
    w->c = c;
    w->co = co;
    RT_LIST_PUSH(c->bp_waits, w);
    return rt_co_wait(co, bp_cancel, w);
}
