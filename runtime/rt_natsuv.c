/*
 * rt_natsuv.c - our libuv event-loop adapter for cnats (see rt_natsuv.h).
 *
 * Same contract as the adapter cnats ships (attach/read/write/detach, ops
 * from other threads queued to the loop through a uv_async), plus one thing
 * it lacks: a hook called on the loop thread right after cnats parsed a read
 * event. jetlua uses it to take messages of synchronous subscriptions
 * straight out of cnats' queues on the loop thread, with no hop through a
 * cnats delivery thread and back through the inbox (measured: those two
 * hops and their lock contention were most of the subscriber's CPU).
 */
#include "rt_natsuv.h"
#include "rt.h"
#include "rt_mem.h"

#include <stdlib.h>
#include <string.h>

enum { OP_ATTACH = 1, OP_READ, OP_WRITE, OP_DETACH };

typedef struct op { int type, add; } op;

typedef struct uvnats {
    natsConnection *nc;
    uv_loop_t      *loop;
    uv_poll_t      *poll;
    uv_async_t     *async;
    uv_mutex_t      mu;
    op             *ops;
    size_t          nops, cap;
    int             events;
    natsSock        sock;
    rt_natsuv_hook  after_read;
    void           *arg;
    int             attached;      /* attached before: the next attach is a reconnect */
} uvnats;

/* ---- cnats 3.x event-loop reconnect bug: a stale parser ----
 * cnats keeps one protocol parser per connection (nc->ps). Its own read
 * thread destroys the parser when a connection ends, but in event-loop mode
 * nothing does: a reconnect keeps the parser of the dead socket. When the
 * server died in the middle of a message (a kill -9 during a stream of
 * PubAcks), the new socket's first bytes are parsed as the rest of that
 * message; the parser errors out, cnats closes the socket, reconnects, and
 * the parser is still stuck: we saw a connection reconnect 100+ times and
 * never recover. So on every re-attach (loop thread, before any read of the
 * new socket) we destroy the parser; cnats creates a fresh one on the next
 * read event, exactly as its read thread does.
 * nc is opaque, so we locate the field once: natsConnection_GetLastError
 * hands back the address of nc->errStr (char[256]), and in every cnats 3.x
 * the parser pointer is the next field. Checked for 3.x only; on another
 * major version the workaround is off (logged). */
extern void natsParser_Destroy(void *parser);
static long ps_offset = -1;

void rt_natsuv_learn(natsConnection *nc)
{
    const char *err = NULL;
    long off;
    if (ps_offset >= 0 || ps_offset == -2)
        return;
    if (strncmp(nats_GetVersion(), "3.", 2) != 0) {
        rt_warn("cnats %s: the reconnect parser workaround is off (written for cnats 3.x)", nats_GetVersion());
        ps_offset = -2;
        return;
    }
    natsConnection_GetLastError(nc, &err);
    off = (long)(err - (const char *)nc) + 256;
    off = (off + (long)sizeof(void *) - 1) & ~((long)sizeof(void *) - 1);
    ps_offset = off;
}

static void reset_parser(natsConnection *nc)
{
    void **pps;
    if (ps_offset < 0)
        return;
    pps = (void **)((char *)nc + ps_offset);
    if (*pps) {
        natsParser_Destroy(*pps);
        *pps = NULL;
    }
}

static uv_thread_t    loop_thread;
static int            live;          /* adapters not yet detached and closed */

int rt_natsuv_live(void)
{
    return live;
}
static rt_natsuv_hook next_hook;
static void          *next_arg;
static rt_natsuv_write_hook write_hook;

void rt_natsuv_set_write_hook(rt_natsuv_write_hook fn)
{
    write_hook = fn;
}

void rt_natsuv_init(void)
{
    loop_thread = uv_thread_self();
}

void rt_natsuv_next_hook(rt_natsuv_hook fn, void *arg)
{
    next_hook = fn;
    next_arg = arg;
}

static int on_loop(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &loop_thread);
}

static void poll_free(uv_handle_t *h) { free(h); }

/* When cnats finds the connection broken while processing an event, it
 * closes the socket; a poll handle left on that fd would make libuv call
 * epoll_ctl on a closed (or reused) fd at the next start/stop, and libuv
 * aborts on that. So the poll goes with the socket; the reconnect's attach
 * makes a new one. (Seen as a rare silent abort in the reconnect test.) */
static void drop_poll_if_broken(uvnats *u)
{
    natsConnStatus st = natsConnection_Status(u->nc);
    if (u->poll && (st == NATS_CONN_STATUS_DISCONNECTED || st == NATS_CONN_STATUS_RECONNECTING ||
                    st == NATS_CONN_STATUS_CLOSED)) {
        uv_close((uv_handle_t *)u->poll, poll_free);
        u->poll = NULL;
        u->events = 0;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    uvnats *u = h->data;
    if (status < 0 || (events & UV_READABLE)) {
        natsConnection_ProcessReadEvent(u->nc);
        if (u->after_read)
            u->after_read(u->arg);
    }
    if (u->poll == h && status == 0 && (events & UV_WRITABLE)) {
        int before = natsConnection_Buffered(u->nc);
        if (before > 0) {
            natsConnection_ProcessWriteEvent(u->nc);
            if (write_hook && u->arg)
                write_hook(u->arg, before, natsConnection_Buffered(u->nc));
        } else {
            /* The buffer was already written out since this poll (by the
             * after-read hook's acks, or the pre-poll flush): cnats would
             * send 0 bytes, read that as a closed socket and reconnect.
             * Just stop asking for writability; cnats asks again. Found by
             * the consume benchmark (a reconnect per few thousand acks). */
            u->events &= ~UV_WRITABLE;
            uv_poll_start(h, u->events ? u->events : UV_READABLE, on_poll);
        }
    }
    if (u->poll == h)
        drop_poll_if_broken(u);
}

static natsStatus do_attach(uvnats *u)
{
    if (u->attached++)
        reset_parser(u->nc);       /* a reconnect: see reset_parser */
    if (u->poll)
        uv_close((uv_handle_t *)u->poll, poll_free);
    u->poll = malloc(sizeof *u->poll);
    if (!u->poll || uv_poll_init_socket(u->loop, u->poll, u->sock) != 0)
        return NATS_ERR;
    u->poll->data = u;
    u->events = UV_READABLE;
    return uv_poll_start(u->poll, UV_READABLE, on_poll) == 0 ? NATS_OK : NATS_ERR;
}

static natsStatus do_update(uvnats *u, int type, int add)
{
    int bit = type == OP_READ ? UV_READABLE : UV_WRITABLE;
    if (u->poll && natsConnection_Status(u->nc) == NATS_CONN_STATUS_CLOSED) {
        /* closing: the socket may be gone already; never touch its fd again */
        uv_close((uv_handle_t *)u->poll, poll_free);
        u->poll = NULL;
    }
    if (!u->poll)
        return NATS_OK;
    u->events = add ? (u->events | bit) : (u->events & ~bit);
    if (u->events)
        return uv_poll_start(u->poll, u->events, on_poll) == 0 ? NATS_OK : NATS_ERR;
    return uv_poll_stop(u->poll) == 0 ? NATS_OK : NATS_ERR;
}

static void async_closed(uv_handle_t *h)
{
    uvnats *u = h->data;
    live--;
    free(u->async);
    uv_mutex_destroy(&u->mu);
    free(u->ops);
    free(u);
}

static void do_detach(uvnats *u)
{
    /* Stop polling now, not in a later close callback: uv_close stops the
     * watcher and removes the fd from epoll at once, while the number still
     * names cnats' (closing) socket. Deferred, it could remove a new socket
     * that got the same fd number meanwhile, and libuv aborts when it then
     * updates that socket's watcher (seen as a rare abort in the tests). */
    if (u->poll) {
        uv_close((uv_handle_t *)u->poll, poll_free);
        u->poll = NULL;
    }
    uv_close((uv_handle_t *)u->async, async_closed);
}

/* Apply queued ops in order. Returns 0 once u is detached (gone). */
static int run_ops(uvnats *u)
{
    for (;;) {
        op o;
        uv_mutex_lock(&u->mu);
        if (u->nops == 0) {
            uv_mutex_unlock(&u->mu);
            return 1;
        }
        o = u->ops[0];
        memmove(u->ops, u->ops + 1, (u->nops - 1) * sizeof *u->ops);
        u->nops--;
        uv_mutex_unlock(&u->mu);
        if (o.type == OP_DETACH) {
            do_detach(u);
            return 0;
        }
        if ((o.type == OP_ATTACH ? do_attach(u) : do_update(u, o.type, o.add)) != NATS_OK) {
            natsConnection_Close(u->nc);
            return 1;
        }
    }
}

static void on_async(uv_async_t *h)
{
    run_ops(h->data);
}

static natsStatus enqueue(uvnats *u, int type, int add)
{
    uv_mutex_lock(&u->mu);
    if (u->nops == u->cap) {
        size_t ncap = u->cap ? u->cap * 2 : 8;
        op *n = realloc(u->ops, ncap * sizeof *n);
        if (!n) {
            uv_mutex_unlock(&u->mu);
            return NATS_NO_MEMORY;
        }
        u->ops = n;
        u->cap = ncap;
    }
    u->ops[u->nops].type = type;
    u->ops[u->nops].add = add;
    u->nops++;
    uv_mutex_unlock(&u->mu);
    return uv_async_send(u->async) == 0 ? NATS_OK : NATS_ERR;
}

/* Ops must stay in order. Another thread's op waits in the queue for the
 * loop; on the loop thread we first apply whatever is queued, then our op
 * directly. Queuing the loop's own ops instead (as cnats' adapter does once
 * anything is queued) deferred the stop of a socket's poll past
 * natsConnection_Close closing that socket, and libuv aborted on epoll_ctl
 * for the dead fd (found by a helper's repro, tests/lua/test_regress_close_abort.lua).
 * Returns 1 if the caller must queue, 0 to apply now, -1 if u is gone. */
static int must_queue(uvnats *u)
{
    if (!on_loop())
        return 1;
    return run_ops(u) ? 0 : -1;
}

natsStatus rt_natsuv_attach(void **userData, void *loop, natsConnection *nc, natsSock sock)
{
    uvnats *u = *userData;
    if (!u) {
        if (!on_loop())
            return NATS_ILLEGAL_STATE;   /* the first attach happens in jet.connect */
        u = rt_xcalloc(1, sizeof *u);
        u->async = malloc(sizeof *u->async);
        if (!u->async || uv_mutex_init(&u->mu) != 0 ||
            uv_async_init(loop, u->async, on_async) != 0) {
            free(u->async);
            free(u);
            return NATS_ERR;
        }
        u->async->data = u;
        uv_unref((uv_handle_t *)u->async);
        live++;
        u->nc = nc;
        u->loop = loop;
        u->after_read = next_hook;
        u->arg = next_arg;
        next_hook = NULL;
        next_arg = NULL;
        *userData = u;
    }
    u->sock = sock;
    switch (must_queue(u)) {
    case 1:  return enqueue(u, OP_ATTACH, 1);
    case 0:  return do_attach(u);
    default: return NATS_ILLEGAL_STATE;
    }
}

static natsStatus update(uvnats *u, int type, bool add)
{
    switch (must_queue(u)) {
    case 1:  return enqueue(u, type, add);
    case 0:  return do_update(u, type, add);
    default: return NATS_OK;       /* already detached */
    }
}

natsStatus rt_natsuv_read(void *userData, bool add)  { return update(userData, OP_READ, add); }
natsStatus rt_natsuv_write(void *userData, bool add) { return update(userData, OP_WRITE, add); }

natsStatus rt_natsuv_detach(void *userData)
{
    uvnats *u = userData;
    switch (must_queue(u)) {
    case 1:  return enqueue(u, OP_DETACH, 1);
    case 0:  do_detach(u); return NATS_OK;
    default: return NATS_OK;
    }
}
