/*
 * lpubasync.c - JetStream async publish: the engine behind js:publish_async,
 * js:publish_async_pending, js:publish_async_complete and
 * js:on_publish_error (the Lua side is in jetlua/js.lua).
 *
 * One ack path for every message (PROTOCOL.md §4, DESIGN.md "Async publish"):
 *  - each publisher owns one subscription on "_INBOX.<nuid>.*"; every
 *    message gets the reply "<prefix><token>";
 *  - cnats' delivery thread hands each PubAck to the loop through the inbox
 *    (one mutex push; the loop is woken once per batch); on the loop we find
 *    the entry by token in one hash map and resolve its future. No coroutine,
 *    thread or timer per message.
 *    Why not a synchronous subscription pumped after each read, like core
 *    subscriptions (lsub.c)? cnats' NextMsg swallows a "503 no responders"
 *    status and returns only NATS_NO_RESPONDERS, without the message, so we
 *    could not tell which publish it answers;
 *  - one sweep timer per publisher expires entries past their ack timeout
 *    (they sit in a list ordered by deadline) and resends held ones;
 *  - our own in-flight window, bounded in messages (max_pending) and bytes
 *    (max_pending_bytes, rt_pubwin.h): when it is full, publish returns
 *    false and the Lua side yields in wait_slot() until acks free room. We
 *    never reach cnats' blocking stall, and the loop never blocks;
 *  - a message is never re-sent while its first copy still waits in the
 *    connection's write buffer (a frozen server or network: lwire.c tracks
 *    where the buffer stands). Its timeout then re-arms instead: a copy
 *    per retry used to pile up in that buffer until malloc failed. So the
 *    memory a publisher holds is its window plus, at most, one copy of it
 *    in cnats' buffer.
 *
 * Failures never pass silently. A retryable one (timeout, no_responders,
 * disconnected) is retried when the script asked for retries: the message
 * is re-sent unchanged, so its Nats-Msg-Id (jetlua generates one when the
 * script gave none) makes the stream store it once. While the connection is
 * down, new and retried messages are held here instead of filling cnats'
 * reconnect buffer, and sent on reconnect. A failure goes to the future's
 * waiter or callback, else to js:on_publish_error, else to the log -- and an
 * unobserved failure, or any failure during shutdown, makes the exit status 1.
 *
 * Lifetime: the publisher lives while its Lua userdata, any future, or its
 * registration as a connection client exists. A draining connection waits
 * for every pending ack (bounded by the ack timeouts and the shutdown bound).
 */
#include "jl.h"
#include "lconn.h"
#include "lmsg.h"
#include "lpublish.h"
#include "lwire.h"
#include "rt_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PA_MT  "jetlua.js_publisher"
#define FUT_MT "jetlua.publish_future"
#define SWEEP_MS 100

enum { FUT_PENDING = 0, FUT_OK, FUT_ERR };
enum { W_SLOT = 0, W_COMPLETE };

typedef struct pa pa;
typedef struct pa_entry pa_entry;
typedef struct pa_fut pa_fut;
typedef struct pa_wait pa_wait;

struct pa_entry {
    uint64_t  token;
    natsMsg  *msg;          /* subject, reply, headers, data: re-sent as is */
    uint64_t  size;         /* its bytes in the window */
    uint64_t  wend;         /* where it ends in the connection's write stream */
    uint32_t  wepoch;       /* ... in this epoch of the write buffer (0: never sent) */
    uint64_t  deadline;     /* monotonic ms */
    uint32_t  timeout_ms;
    int       tries_left;   /* retries still allowed */
    int       held;         /* 1: in the held list, 0: in the sent list */
    uint64_t  not_before;   /* held: earliest send */
    pa_fut   *fut;          /* NULL once the future was collected */
    lmsg     *up;           /* a consumed message to ack on success ({ack = msg}) */
    int       up_ref;       /* keeps it alive */
    pa_entry *next, *prev;
};

typedef struct { pa_entry *head, *tail; } pa_list;

struct pa_fut {
    pa         *p;
    pa_entry   *e;          /* while pending */
    int         state;
    int         self_ref;   /* keeps the future alive while someone listens */
    int         cb_ref;
    pa_wait    *waiter;
    uint64_t    seq;
    int         duplicate;
    const char *stream, *domain;   /* interned in p */
    const char *code;              /* static string */
    int         err_code;
    char       *detail;
    int         observed;   /* the script saw the failure (wait, on, status) */
    char       *what;       /* failed: "'subject' (msg_id x)" for a late log */
};

struct pa_wait {
    pa         *p;
    rt_co      *co;
    pa_fut     *fut;        /* f:wait */
    int         kind;
    uv_timer_t *timer;
    pa_wait    *next, *prev;
};

typedef struct pa_str { struct pa_str *next; char s[]; } pa_str;

struct pa {
    jl_client   client;     /* first: the connection calls us through it */
    jl_conn    *c;
    natsSubscription *sub;
    char        prefix[64];
    size_t      prefix_len;
    uint64_t    next_token;
    rt_map      map;        /* token -> entry */
    pa_list     sent, held;
    int         pending;    /* sent + held */
    int         max_pending;
    rt_pubwin   win;        /* messages and bytes of pending */
    uint32_t    timeout_ms;
    int         retry;      /* default retries per message (0: off) */
    uint32_t    retry_delay_ms;
    int         err_ref;    /* js:on_publish_error callback */
    int         codes_ref;  /* err_code -> stable code, from js.lua */
    int         refs;
    int         registered; /* a client of the connection */
    int         draining;
    int         finished;   /* no more publishes; waiting for the sub to complete */
    int         sub_done;   /* cnats completed the subscription */
    int         live;       /* holds an rt_ref while pending > 0 */
    uv_timer_t *sweep;
    pa_wait    *waits;
    pa_str     *strs;
    char        idbase[32];
    uint64_t    idseq;
    uint64_t    published, acked, failed, retried, unacked_at_exit;
    uint64_t    held_in_buffer; /* timeouts re-armed: the message was still in the write buffer */
};

/* jetlua's own metrics (--metrics), shared by every publisher */
static rt_series *m_published, *m_acked, *m_retried, *m_pending;

static void metrics_init(void)
{
    const char *err = NULL;
    if (m_published)
        return;
    m_published = rt_metric("jetlua_js_published_total", RT_COUNTER, "JetStream publishes",
                            "mode=\"async\"", NULL, 0, &err);
    m_acked = rt_metric("jetlua_js_publish_acked_total", RT_COUNTER, "JetStream publishes acknowledged",
                        "mode=\"async\"", NULL, 0, &err);
    m_retried = rt_metric_simple("jetlua_js_publish_retried_total", RT_COUNTER, "async publish attempts retried");
    m_pending = rt_metric_simple("jetlua_js_publish_pending", RT_GAUGE, "async publishes waiting for their ack");
}

static void count_failure(const char *code)
{
    char labels[128];
    const char *names[] = {"error", "mode"}, *values[] = {code, "async"};
    const char *err = NULL;
    rt_metric_labels(labels, sizeof labels, names, values, 2);
    rt_metric_add(rt_metric("jetlua_js_publish_failed_total", RT_COUNTER,
                            "JetStream publishes that failed for good, by error", labels, NULL, 0, &err), 1);
}

static void pa_release(pa *p);
static void pa_finish(pa *p);
static void entry_fail(pa *p, pa_entry *e, const char *code, const char *detail, int err_code, int retryable);

/* ---- small helpers ---- */

static void list_unlink(pa_list *l, pa_entry *e)
{
    if (e->prev) e->prev->next = e->next; else l->head = e->next;
    if (e->next) e->next->prev = e->prev; else l->tail = e->prev;
    e->next = e->prev = NULL;
}

static void list_append(pa_list *l, pa_entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail) l->tail->next = e; else l->head = e;
    l->tail = e;
}

/* The sent list stays ordered by deadline; with one timeout for all
 * messages this is an append. */
static void list_insert_by_deadline(pa_list *l, pa_entry *e)
{
    pa_entry *at = l->tail;
    while (at && at->deadline > e->deadline)
        at = at->prev;
    if (!at) {
        e->prev = NULL;
        e->next = l->head;
        if (l->head) l->head->prev = e; else l->tail = e;
        l->head = e;
        return;
    }
    e->prev = at;
    e->next = at->next;
    if (at->next) at->next->prev = e; else l->tail = e;
    at->next = e;
}

static const char *intern(pa *p, const char *s, size_t n)
{
    pa_str *x;
    for (x = p->strs; x; x = x->next)
        if (strncmp(x->s, s, n) == 0 && x->s[n] == '\0')
            return x->s;
    x = malloc(sizeof *x + n + 1);
    memcpy(x->s, s, n);
    x->s[n] = '\0';
    x->next = p->strs;
    p->strs = x;
    return x->s;
}

static void timer_free(uv_handle_t *h) { free(h); }

static const char *msg_id_of(pa_entry *e)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(e->msg, "Nats-Msg-Id", &id) != NATS_OK)
        id = NULL;
    return id;
}

/* ---- liveness and the sweep timer ---- */

static void sweep(uv_timer_t *t);

static void pending_inc(pa *p)
{
    rt_metric_add(m_pending, 1);
    if (p->pending++ == 0) {
        if (!p->live) {
            p->live = 1;
            rt_ref();
        }
        if (p->sweep)
            uv_timer_start(p->sweep, sweep, SWEEP_MS, SWEEP_MS);
    }
}

static void settle(pa *p);

static void pending_dec(pa *p)
{
    rt_metric_add(m_pending, -1);
    if (--p->pending == 0) {
        if (p->sweep)
            uv_timer_stop(p->sweep);
        if (p->live) {
            p->live = 0;
            rt_unref();
        }
    }
}

/* ---- futures ---- */

static void push_ack(lua_State *L, pa_fut *f)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, f->stream ? f->stream : "");
    lua_setfield(L, -2, "stream");
    lua_pushnumber(L, (lua_Number)f->seq);
    lua_setfield(L, -2, "seq");
    lua_pushboolean(L, f->duplicate);
    lua_setfield(L, -2, "duplicate");
    if (f->domain) {
        lua_pushstring(L, f->domain);
        lua_setfield(L, -2, "domain");
    }
}

/* ack | nil, code, detail, err_code; returns the count */
static int push_result(lua_State *L, pa_fut *f)
{
    if (f->state == FUT_OK) {
        push_ack(L, f);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, f->code);
    lua_pushstring(L, f->detail ? f->detail : f->code);
    if (f->err_code) {
        lua_pushinteger(L, f->err_code);
        return 4;
    }
    return 3;
}

static void wait_end(pa_wait *w)
{
    pa *p = w->p;
    if (w->timer && !uv_is_closing((uv_handle_t *)w->timer)) {
        uv_timer_stop(w->timer);
        uv_close((uv_handle_t *)w->timer, timer_free);
    }
    if (w->prev) w->prev->next = w->next; else if (p->waits == w) p->waits = w->next;
    if (w->next) w->next->prev = w->prev;
    if (w->fut)
        w->fut->waiter = NULL;
    free(w);
}

static void wait_cancel(rt_co *co, void *op) { wait_end(op); }

/* The entry is finished (ok or failed for good): tell the future's waiter
 * and callback. Returns 1 if anyone was told. */
static int fut_resolve(pa_fut *f)
{
    lua_State *L = RT->L;
    int told = 0;
    pa_wait *w = f->waiter;
    int cb = f->cb_ref;

    f->e = NULL;
    f->cb_ref = LUA_NOREF;
    if (cb != LUA_NOREF) {
        told = 1;
        lua_rawgeti(L, LUA_REGISTRYINDEX, cb);
        luaL_unref(L, LUA_REGISTRYINDEX, cb);
        int n = push_result(L, f);
        rt_co_spawn(L, n, "publish_async callback", NULL, NULL);
    }
    if (w) {
        rt_co *co = w->co;
        lua_State *T;
        told = 1;
        wait_end(w);
        if ((T = rt_co_prepare(co)) != NULL)
            rt_co_resume(co, push_result(T, f));
    }
    if (f->self_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, f->self_ref);
        f->self_ref = LUA_NOREF;
    }
    return told;
}

static pa_fut *check_fut(lua_State *L, const char *fname)
{
    pa_fut *f = luaL_testudata(L, 1, FUT_MT);
    if (!f)
        jl_argerror(L, fname, "self", "future expected, got %s", jl_typename(L, 1));
    return f;
}

static void fut_anchor(lua_State *L, pa_fut *f)
{
    if (f->self_ref == LUA_NOREF) {
        lua_pushvalue(L, 1);
        f->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

static void wait_timeout(uv_timer_t *t)
{
    pa_wait *w = t->data;
    rt_co *co = w->co;
    pa_fut *f = w->fut;
    lua_State *T;
    int kind = w->kind;
    int left = w->p->pending;

    wait_end(w);
    if (f && f->state == FUT_PENDING && f->cb_ref == LUA_NOREF && f->self_ref != LUA_NOREF) {
        luaL_unref(RT->L, LUA_REGISTRYINDEX, f->self_ref);
        f->self_ref = LUA_NOREF;
    }
    if ((T = rt_co_prepare(co)) == NULL)
        return;
    if (kind == W_COMPLETE) {
        lua_pushinteger(T, left);
        rt_co_resume(co, 1);
    } else {
        lua_pushnil(T);
        lua_pushliteral(T, "timeout");
        lua_pushliteral(T, "f:wait: no ack yet (the publish is still pending)");
        rt_co_resume(co, 3);
    }
}

static pa_wait *wait_add(pa *p, rt_co *co, int kind, double timeout)
{
    pa_wait *w = calloc(1, sizeof *w);
    w->p = p;
    w->co = co;
    w->kind = kind;
    /* FIFO: append */
    if (!p->waits) {
        p->waits = w;
    } else {
        pa_wait *t = p->waits;
        while (t->next)
            t = t->next;
        t->next = w;
        w->prev = t;
    }
    if (timeout >= 0) {
        w->timer = malloc(sizeof *w->timer);
        uv_timer_init(RT->loop, w->timer);
        w->timer->data = w;
        uv_timer_start(w->timer, wait_timeout, (uint64_t)(timeout * 1000.0), 0);
    }
    return w;
}

/* Wake the waiters of a kind while their condition holds, FIFO: slot
 * waiters while the window has room, complete waiters when nothing is
 * pending (all of them once the publisher ended). A woken publisher that
 * fills the window again waits again, so this always ends. */
static void wake(pa *p, int kind)
{
    /* a blocked publisher resumes with a quarter of the window free (in
     * messages and bytes), not one slot: it then publishes a batch instead
     * of one message per ack */
    for (;;) {
        pa_wait *w;
        rt_co *co;
        lua_State *T;
        int ok = kind == W_SLOT ? rt_pubwin_resume(&p->win) : p->pending == 0;
        if (!ok && p->registered)
            return;
        for (w = p->waits; w && w->kind != kind; w = w->next)
            ;
        if (!w)
            return;
        co = w->co;
        wait_end(w);
        if ((T = rt_co_prepare(co)) != NULL) {
            if (kind == W_COMPLETE)
                lua_pushinteger(T, p->pending);
            rt_co_resume(co, kind == W_COMPLETE ? 1 : 0);
        }
    }
}

/* After acks, failures or sends: let waiters go, finish a drain. */
static void settle(pa *p)
{
    wake(p, W_SLOT);
    if (p->pending == 0) {
        wake(p, W_COMPLETE);
        if (p->draining)
            pa_finish(p);
    }
}

/* f:wait([timeout]) -> ack | nil, code, detail[, err_code] */
static int fut_wait(lua_State *L)
{
    pa_fut *f = check_fut(L, "f:wait");
    double timeout = -1;
    rt_co *co;

    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "f:wait", "timeout");
        if (timeout < 0)
            jl_argerror(L, "f:wait", "timeout", "must be >= 0 seconds");
    }
    f->observed = 1;
    if (f->state != FUT_PENDING)
        return push_result(L, f);
    co = rt_co_current(L, "f:wait");
    if (f->waiter)
        return luaL_error(L, "f:wait: another coroutine is already waiting on this future");
    f->waiter = wait_add(f->p, co, -1, timeout);
    f->waiter->fut = f;
    fut_anchor(L, f);
    return rt_co_wait(co, wait_cancel, f->waiter);
}

/* f:on(function(ack, code, detail, err_code) end): called once, in its own
 * coroutine, when the publish is acked or fails for good (now if it already
 * did). Replaces an earlier callback. */
static int fut_on(lua_State *L)
{
    pa_fut *f = check_fut(L, "f:on");
    jl_check_function(L, 2, "f:on", "fn");
    f->observed = 1;
    if (f->state != FUT_PENDING) {
        lua_pushvalue(L, 2);
        rt_co_spawn(L, push_result(L, f), "publish_async callback", NULL, NULL);
        return 0;
    }
    if (f->cb_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, f->cb_ref);
    lua_pushvalue(L, 2);
    f->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    fut_anchor(L, f);
    return 0;
}

/* f:status() -> "pending" | "acked" | "failed" */
static int fut_status(lua_State *L)
{
    static const char *const names[] = {"pending", "acked", "failed"};
    pa_fut *f = check_fut(L, "f:status");
    f->observed = 1;
    lua_pushstring(L, names[f->state]);
    return 1;
}

/* A failure nobody looked at: say so (once), and let the exit status say so. */
static void report_unobserved(const char *what, const char *code, const char *detail)
{
    rt_warn("publish_async to %s failed: %s (%s), and the script never looked: no f:wait, f:on or "
            "js:on_publish_error saw it", what, code, detail);
    if (RT->exit_code == 0)
        RT->exit_code = 1;
}

static int fut_gc(lua_State *L)
{
    pa_fut *f = lua_touserdata(L, 1);
    if (f->state == FUT_ERR && !f->observed && f->what)
        report_unobserved(f->what, f->code, f->detail ? f->detail : "");
    free(f->what);
    f->what = NULL;
    if (f->e)
        f->e->fut = NULL;
    if (f->waiter)
        f->waiter->fut = NULL;
    free(f->detail);
    f->detail = NULL;
    if (f->p) {
        pa_release(f->p);
        f->p = NULL;
    }
    return 0;
}

/* ---- resolving entries ---- */

/* The upstream message linked to e hears how its output ended. */
static void upstream_done(pa_entry *e, int ok)
{
    if (!e->up)
        return;
    jl_msg_output_done(e->up, ok);
    luaL_unref(RT->L, LUA_REGISTRYINDEX, e->up_ref);
    e->up = NULL;
}

static void entry_free(pa *p, pa_entry *e)
{
    (void)p;
    upstream_done(e, 0);
    natsMsg_Destroy(e->msg);
    free(e);
}

/* Unlink e (it was already removed from the map), update the counts and
 * the window. */
static void entry_done(pa *p, pa_entry *e)
{
    list_unlink(e->held ? &p->held : &p->sent, e);
    rt_pubwin_del(&p->win, e->size);
    pending_dec(p);
}

static void entry_ok(pa *p, pa_entry *e, const char *stream, size_t slen, uint64_t seq, int dup,
                     const char *domain, size_t dlen)
{
    pa_fut *f = e->fut;
    entry_done(p, e);
    p->acked++;
    rt_metric_add(m_acked, 1);
    upstream_done(e, 1);
    if (f) {
        f->state = FUT_OK;
        f->seq = seq;
        f->duplicate = dup;
        f->stream = intern(p, stream, slen);
        f->domain = domain ? intern(p, domain, dlen) : NULL;
        fut_resolve(f);
    }
    entry_free(p, e);
}

static int retryable(const char *code)
{
    return strcmp(code, "timeout") == 0 || strcmp(code, "no_responders") == 0 ||
           strcmp(code, "disconnected") == 0;
}

static void send_entry(pa *p, pa_entry *e);

/* A failure of one attempt. Retried (held for a later send) when allowed,
 * else final: the future, on_publish_error or the log hears it. */
static void entry_fail(pa *p, pa_entry *e, const char *code, const char *detail, int err_code, int can_retry)
{
    lua_State *L = RT->L;
    pa_fut *f = e->fut;
    int told = 0, handled = 0;
    const char *subj = natsMsg_GetSubject(e->msg);
    const char *id = msg_id_of(e);
    uint64_t now = rt_mono_ms();
    /* Read before the future is resolved: its waiter runs inside
     * fut_resolve and may call jet.exit, which must not turn a failure the
     * script has just seen into one "never acknowledged". */
    int exiting = RT->exiting;

    if (can_retry && strcmp(code, "timeout") == 0 && e->tries_left > 0 && p->registered &&
        !e->held && e->wepoch && jl_conn_wbuffered(p->c, e->wepoch, e->wend)) {
        /* Its first copy still waits in the write buffer (the server is not
         * reading): a resend would only add a second copy behind it. Wait
         * one more ack timeout instead (it counts as a retry). */
        e->tries_left--;
        p->held_in_buffer++;
        list_unlink(&p->sent, e);
        e->deadline = now + e->timeout_ms;
        list_insert_by_deadline(&p->sent, e);
        rt_debug("publish_async to '%s'%s%s: no PubAck yet, still in the write buffer; waiting "
                 "(%d retries left)", subj, id ? " msg_id " : "", id ? id : "", e->tries_left);
        return;
    }
    if (can_retry && retryable(code) && e->tries_left > 0 && p->registered && p->c->state != JL_CONN_CLOSED) {
        e->tries_left--;
        p->retried++;
        rt_metric_add(m_retried, 1);
        list_unlink(e->held ? &p->held : &p->sent, e);
        e->held = 1;
        e->not_before = now + (strcmp(code, "no_responders") == 0 ? p->retry_delay_ms : 0);
        e->deadline = e->not_before + e->timeout_ms;
        list_append(&p->held, e);
        rt_debug("publish_async to '%s'%s%s: %s, retrying (%d retries left)", subj,
                 id ? " msg_id " : "", id ? id : "", code, e->tries_left);
        return;
    }
    rt_map_del(&p->map, e->token);
    entry_done(p, e);
    p->failed++;
    count_failure(code);
    if (e->up) {
        handled = 1;                   /* the upstream message is nak'd: nothing is lost */
        rt_warn("publish_async to '%s'%s%s failed: %s (%s); its input message is nak'd and comes back",
                subj, id ? " msg_id " : "", id ? id : "", code, detail);
        upstream_done(e, 0);
        if (f)
            f->observed = 1;
    }
    if (f) {
        f->state = FUT_ERR;
        f->code = code;
        f->err_code = err_code;
        f->detail = strdup(detail);
        told = fut_resolve(f);
    }
    told = told || handled;
    if (!told && p->err_ref != LUA_NOREF) {
        int len = natsMsg_GetDataLength(e->msg);
        told = 1;
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, subj);
        lua_setfield(L, -2, "subject");
        lua_pushlstring(L, natsMsg_GetData(e->msg) ? natsMsg_GetData(e->msg) : "", (size_t)len);
        lua_setfield(L, -2, "data");
        if (id) {
            lua_pushstring(L, id);
            lua_setfield(L, -2, "msg_id");
        }
        lua_pushstring(L, code);
        lua_setfield(L, -2, "error");
        lua_pushstring(L, detail);
        lua_setfield(L, -2, "detail");
        if (err_code) {
            lua_pushinteger(L, err_code);
            lua_setfield(L, -2, "err_code");
        }
        rt_co_spawn(L, 1, "js:on_publish_error callback", NULL, NULL);
    }
    if (exiting) {
        p->unacked_at_exit++;
        rt_error("publish_async to '%s' (msg_id %s) was never acknowledged: %s (%s)", subj,
                 id ? id : "none", code, detail);
        if (RT->exit_code == 0)
            RT->exit_code = 1;
    } else if (!told) {
        char what[512];
        snprintf(what, sizeof what, "'%s' (msg_id %s)", subj, id ? id : "none");
        if (f)
            f->what = strdup(what);     /* the script may still wait on it: judge at collection */
        else
            report_unobserved(what, code, detail);
    }
    entry_free(p, e);
}

/* Put e on the wire (or hold it while the connection is down). */
static void send_entry(pa *p, pa_entry *e)
{
    natsStatus s;
    uint64_t now = rt_mono_ms();

    if (p->c->state != JL_CONN_CONNECTED && p->c->state != JL_CONN_DRAINING) {
        if (!e->held) {
            e->held = 1;
            e->not_before = now;
            e->deadline = now + e->timeout_ms;
            list_append(&p->held, e);
        }
        return;
    }
    if (e->held) {
        list_unlink(&p->held, e);
        e->held = 0;
    }
    e->deadline = now + e->timeout_ms;
    list_insert_by_deadline(&p->sent, e);
    s = natsConnection_PublishMsg(p->c->nc, e->msg);
    if (s == NATS_INSUFFICIENT_BUFFER) {
        /* cnats is already reconnecting (our disconnected event is on its
         * way) and its reconnect buffer is full: hold it, send on reconnect */
        list_unlink(&p->sent, e);
        e->held = 1;
        e->not_before = now;
        list_append(&p->held, e);
        return;
    }
    if (s != NATS_OK) {
        const char *last = jl_last_error();
        char detail[300];
        snprintf(detail, sizeof detail, "%s%s%s", natsStatus_GetText(s), last && *last ? ": " : "",
                 last ? last : "");
        entry_fail(p, e, jl_status_code(s), detail, 0, 0);
        return;
    }
    e->wepoch = p->c->wt.epoch;
    e->wend = jl_conn_wpos(p->c);
    jl_conn_write_some(p->c, e->size);
}

static void send_held(pa *p, uint64_t now)
{
    pa_entry *e = p->held.head;
    while (e && (p->c->state == JL_CONN_CONNECTED || p->c->state == JL_CONN_DRAINING)) {
        pa_entry *next = e->next;
        if (e->not_before <= now)
            send_entry(p, e);
        e = next;
    }
}

static void sweep(uv_timer_t *t)
{
    pa *p = t->data;
    uint64_t now = rt_mono_ms();
    pa_entry *e;
    int before = p->pending;

    while ((e = p->sent.head) != NULL && e->deadline <= now) {
        if (e->wepoch && jl_conn_wbuffered(p->c, e->wepoch, e->wend))
            entry_fail(p, e, "timeout", "no PubAck within the ack timeout: the message still waits in the "
                       "connection's write buffer (the server is not reading it) and may be stored once it "
                       "moves; publish it again with the same msg_id to be sure", 0, 1);
        else
            entry_fail(p, e, "timeout", "no PubAck within the ack timeout (the message was sent: the server "
                       "may have stored it; publish it again with the same msg_id to be sure)", 0, 1);
    }
    for (e = p->held.head; e;) {
        pa_entry *next = e->next;
        if (e->deadline <= now && e->not_before <= now)
            entry_fail(p, e, "timeout", e->wepoch
                       ? "no PubAck within the ack timeout while the connection was down (an earlier attempt "
                         "may have been stored: publish it again with the same msg_id to be sure)"
                       : "no PubAck within the ack timeout: the connection was down and the message was "
                         "never sent (it is not stored)", 0, 1);
        e = next;
    }
    send_held(p, now);
    if (p->pending < before || p->pending == 0)
        settle(p);
}

/* ---- the ack path ---- */

/* Find "key": in a flat JSON object and return a pointer after the colon. */
static const char *json_key(const char *d, const char *key)
{
    const char *at = strstr(d, key);
    if (!at)
        return NULL;
    at += strlen(key);
    while (*at == ' ')
        at++;
    return at;
}

static size_t json_str(const char *at, const char **start)
{
    const char *q;
    if (!at || *at != '"')
        return 0;
    *start = ++at;
    for (q = at; *q && *q != '"'; q++)
        if (*q == '\\' && q[1])
            q++;
    return (size_t)(q - at);
}

static void handle_ack(pa *p, natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    const char *d, *at, *s = NULL, *dom = NULL;
    uint64_t tok;
    size_t slen, dlen = 0;
    pa_entry *e;

    if (strncmp(subj, p->prefix, p->prefix_len) != 0)
        return;
    tok = strtoull(subj + p->prefix_len, NULL, 10);
    e = rt_map_get(&p->map, tok);
    if (!e)
        return;                /* a late ack: the entry timed out or failed */
    if (natsMsg_IsNoResponders(m)) {
        entry_fail(p, e, "no_responders", "no stream is listening on this subject", 0, 1);
        return;
    }
    d = natsMsg_GetData(m);
    if (!d)
        d = "";
    if ((at = json_key(d, "\"error\":")) != NULL) {
        const char *desc = NULL, *ec;
        char code[64] = "api_error", text[512];
        int err_code = 0;
        size_t n;
        if ((ec = json_key(at, "\"err_code\":")) != NULL)
            err_code = atoi(ec);
        n = json_str(json_key(at, "\"description\":"), &desc);
        snprintf(text, sizeof text, "%.*s (err_code %d)", (int)n, desc ? desc : "", err_code);
        lua_rawgeti(RT->L, LUA_REGISTRYINDEX, p->codes_ref);
        lua_rawgeti(RT->L, -1, err_code);
        if (lua_type(RT->L, -1) == LUA_TSTRING)
            snprintf(code, sizeof code, "%s", lua_tostring(RT->L, -1));
        lua_pop(RT->L, 2);
        /* fut->code must outlive this call: intern the code */
        entry_fail(p, e, intern(p, code, strlen(code)), text, err_code, 0);
        return;
    }
    slen = json_str(json_key(d, "\"stream\":"), &s);
    at = json_key(d, "\"seq\":");
    if (!s || !at) {
        entry_fail(p, e, "bad_response", d, 0, 0);
        return;
    }
    if ((at = json_key(d, "\"domain\":")) != NULL)
        dlen = json_str(at, &dom);
    rt_map_del(&p->map, tok);
    entry_ok(p, e, s, slen, strtoull(json_key(d, "\"seq\":"), NULL, 10),
             json_key(d, "\"duplicate\":true") != NULL || json_key(d, "\"duplicate\": true") != NULL,
             dom, dlen);
}

/* Loop thread: one PubAck (or status) from cnats' delivery thread. */
static void pa_deliver(void *a, void *b)
{
    pa *p = a;
    natsMsg *m = b;
    int before = p->pending;
    if (!p->finished)
        handle_ack(p, m);
    natsMsg_Destroy(m);
    if (p->pending < before)
        settle(p);
}

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    if (rt_post_try(pa_deliver, closure, m) != 0)
        natsMsg_Destroy(m);
}

static void leave(pa *p)
{
    jl_conn_client_remove(p->c, &p->client);
    pa_release(p);
}

/* Loop thread: cnats will deliver nothing more on the ack subscription. */
static void pa_sub_complete(void *a, void *b)
{
    pa *p = a;
    natsSubscription_Destroy(p->sub);
    p->sub = NULL;
    p->sub_done = 1;
    if (p->finished)
        leave(p);
}

static void on_sub_complete(void *closure)
{
    rt_post(pa_sub_complete, closure, NULL);
}

static void fail_all(pa *p, pa_list *l, const char *code, const char *detail, int can_retry)
{
    /* collect first: a failure may re-queue the entry in the held list */
    pa_entry *e;
    int n = 0, i = 0;
    pa_entry **v;
    for (e = l->head; e; e = e->next)
        n++;
    if (n == 0)
        return;
    v = malloc((size_t)n * sizeof *v);
    for (e = l->head; e; e = e->next)
        v[i++] = e;
    for (i = 0; i < n; i++)
        entry_fail(p, v[i], code, detail, 0, can_retry);
    free(v);
}

static void pa_event(jl_client *k, int ev)
{
    pa *p = (pa *)k;
    if (ev == JL_EV_DISCONNECTED) {
        /* acks of what is in flight are lost with the connection (as nats.go) */
        fail_all(p, &p->sent, "disconnected", "the connection was lost before the PubAck", 1);
    } else if (ev == JL_EV_RECONNECTED) {
        send_held(p, rt_mono_ms());
    } else if (ev == JL_EV_CLOSED) {
        fail_all(p, &p->sent, "closed", "the connection closed before the PubAck", 0);
        fail_all(p, &p->held, "closed", "the connection closed before the message was sent", 0);
        pa_finish(p);
        return;
    } else {
        return;
    }
    settle(p);
}

/* The server refused a publish (lperm.c): fail what it names at once,
 * instead of at its ack timeout, and never retry it. */
static void pa_denied(jl_client *k, const rt_perm *perm, const char *text)
{
    pa *p = (pa *)k;
    int before = p->pending;
    if (perm->op == RT_PERM_REPLY) {
        pa_entry *e;
        if (strncmp(perm->subject, p->prefix, p->prefix_len) != 0)
            return;
        e = rt_map_get(&p->map, strtoull(perm->subject + p->prefix_len, NULL, 10));
        if (e && !e->held)
            entry_fail(p, e, "permission_denied", text, 0, 0);
    } else {
        pa_entry *e, **v;
        int n = 0, i = 0;
        for (e = p->sent.head; e; e = e->next)
            n += rt_perm_matches(perm, natsMsg_GetSubject(e->msg));
        if (n == 0)
            return;
        v = malloc((size_t)n * sizeof *v);
        for (e = p->sent.head; e && i < n; e = e->next)
            if (rt_perm_matches(perm, natsMsg_GetSubject(e->msg)))
                v[i++] = e;
        for (i = 0; i < n; i++)
            entry_fail(p, v[i], "permission_denied", text, 0, 0);
        free(v);
    }
    if (p->pending < before)
        settle(p);
}

/* The connection drains: wait for every pending ack, then let it close. */
static void pa_drain(jl_client *k)
{
    pa *p = (pa *)k;
    if (p->draining)
        return;
    p->draining = 1;
    if (p->pending == 0)
        pa_finish(p);
    else
        rt_info("waiting for %d pending async publish ack(s)", p->pending);
}

/* Stop: fail what is left, end the ack subscription; the connection is
 * left once cnats completed it (no late delivery can then find us gone). */
static void pa_finish(pa *p)
{
    if (!p->registered)
        return;
    p->registered = 0;
    if (p->pending > 0) {   /* not reached through CLOSED: fail what is left */
        fail_all(p, &p->sent, "closed", "the publisher stopped before the PubAck", 0);
        fail_all(p, &p->held, "closed", "the publisher stopped before the message was sent", 0);
    }
    if (p->unacked_at_exit)
        rt_error("%llu async publish(es) were never acknowledged", (unsigned long long)p->unacked_at_exit);
    wake(p, W_SLOT);
    wake(p, W_COMPLETE);
    uv_timer_stop(p->sweep);
    if (!uv_is_closing((uv_handle_t *)p->sweep))
        uv_close((uv_handle_t *)p->sweep, timer_free);
    p->sweep = NULL;
    p->finished = 1;
    if (p->sub_done)
        leave(p);
    else if (natsSubscription_Unsubscribe(p->sub) != NATS_OK)
        rt_debug("publish_async: the ack subscription was already closed");
}

/* ---- the publisher object ---- */

static void pa_release(pa *p)
{
    lua_State *L = RT->L;
    if (--p->refs > 0)
        return;
    if (L) {
        luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, p->codes_ref);
    }
    while (p->strs) {
        pa_str *x = p->strs;
        p->strs = x->next;
        free(x);
    }
    if (p->sweep && !uv_is_closing((uv_handle_t *)p->sweep))
        uv_close((uv_handle_t *)p->sweep, timer_free);
    rt_map_free(&p->map);
    jl_conn_release(p->c);
    free(p);
}

typedef struct { pa *p; } pa_ud;

static pa *check_pa(lua_State *L, const char *fname)
{
    pa_ud *u = luaL_testudata(L, 1, PA_MT);
    if (!u || !u->p)
        jl_argerror(L, fname, "self", "publisher expected, got %s", jl_typename(L, 1));
    return u->p;
}

/* jet._js_publisher(nc, max_pending, ack_timeout, retries, retry_delay, codes,
 * max_pending_bytes) -> publisher, or nil, "closed", detail */
static int pa_new(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "nc:jetstream");
    int maxp = (int)luaL_checkinteger(L, 2);
    double timeout = luaL_checknumber(L, 3);
    int retry = (int)luaL_checkinteger(L, 4);
    double delay = luaL_checknumber(L, 5);
    double maxb = luaL_checknumber(L, 7);
    char subj[96];
    pa_ud *u;
    pa *p;

    luaL_checktype(L, 6, LUA_TTABLE);
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "js:publish_async");
    jl_conn_check_open(L, c, "js:publish_async");
    metrics_init();
    p = calloc(1, sizeof *p);
    p->c = c;
    p->max_pending = maxp;
    rt_pubwin_init(&p->win, maxp, maxb >= 1 ? (uint64_t)maxb : 1);
    p->timeout_ms = (uint32_t)(timeout * 1000.0);
    p->retry = retry;
    p->retry_delay_ms = (uint32_t)(delay * 1000.0);
    p->err_ref = LUA_NOREF;
    lua_pushvalue(L, 6);
    p->codes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* the map grows by itself: start small however large the window */
    if (rt_map_init(&p->map, (size_t)(maxp < 4096 ? maxp : 4096) * 2) != 0) {
        free(p);
        return luaL_error(L, "js:publish_async: out of memory");
    }
    if ((p->prefix_len = jl_inbox_prefix(p->prefix, sizeof p->prefix)) == 0) {
        rt_map_free(&p->map);
        free(p);
        return luaL_error(L, "js:publish_async: out of memory");
    }
    /* the NUID between "_INBOX." and the final '.' */
    snprintf(p->idbase, sizeof p->idbase, "%.*s", (int)(p->prefix_len - 8), p->prefix + 7);
    snprintf(subj, sizeof subj, "%s*", p->prefix);
    if (natsConnection_Subscribe(&p->sub, c->nc, subj, on_ack, p) != NATS_OK) {
        luaL_unref(L, LUA_REGISTRYINDEX, p->codes_ref);
        rt_map_free(&p->map);
        free(p);
        return jl_fail(L, "closed", "js:publish_async: cannot subscribe for acks");
    }
    natsSubscription_SetPendingLimits(p->sub, -1, -1);
    natsSubscription_SetOnCompleteCB(p->sub, on_sub_complete, p);
    p->sweep = malloc(sizeof *p->sweep);
    uv_timer_init(RT->loop, p->sweep);
    p->sweep->data = p;
    uv_unref((uv_handle_t *)p->sweep);
    p->client.event = pa_event;
    p->client.drain = pa_drain;
    p->client.denied = pa_denied;
    jl_conn_retain(c);
    jl_conn_client_add(c, &p->client);
    p->registered = 1;
    p->refs = 2;               /* the userdata and the registration */
    u = lua_newuserdata(L, sizeof *u);
    u->p = p;
    luaL_getmetatable(L, PA_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* p:publish(subject, data, headers|nil, msg_id|nil, timeout|nil, retries|nil)
 * -> future, or false when the window is full (the caller waits in
 * p:wait_slot() and tries again). */
static int pa_publish(lua_State *L)
{
    static const char *const fname = "js:publish_async";
    pa *p = check_pa(L, fname);
    size_t len = 0, slen = 0;
    const char *subj = jl_check_subject(L, 2, fname, 0, &slen);
    const char *data = "";
    const char *id = NULL;
    char reply[96];
    int hidx = lua_istable(L, 4) ? 4 : 0;
    int tries = p->retry;
    double timeout = p->timeout_ms / 1000.0;
    uint64_t size;
    pa_entry *e;
    pa_fut *f;
    natsMsg *m = NULL;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, fname, "data", &len);
    if (!lua_isnoneornil(L, 5))
        id = lua_tostring(L, 5);
    if (!lua_isnoneornil(L, 6))
        timeout = lua_tonumber(L, 6);
    if (!lua_isnoneornil(L, 7))
        tries = (int)lua_tointeger(L, 7);
    jl_check_pub_line(L, fname, "subject", slen, p->prefix_len + 20, hidx || id || tries > 0, len);
    if (jl_conn_is_closed(p->c))
        return jl_conn_closed_result(L, fname);
    jl_conn_check_open(L, p->c, fname);
    if (!p->registered)
        return jl_fail(L, "draining", "js:publish_async: the connection is draining: no new publishes");
    /* its bytes in the window: what cnats will buffer for it, near enough */
    size = slen + p->prefix_len + 20 + len + (id ? strlen(id) + 16 : 0) + (tries > 0 ? 64 : 0);
    if (hidx) {
        lua_pushnil(L);
        while (lua_next(L, hidx) != 0) {
            size += (lua_type(L, -2) == LUA_TSTRING ? lua_objlen(L, -2) : 0) + 4 +
                    (lua_type(L, -1) == LUA_TSTRING ? lua_objlen(L, -1) : 0);
            lua_pop(L, 1);
        }
    }
    if (!rt_pubwin_admit(&p->win, size)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    snprintf(reply, sizeof reply, "%s%llu", p->prefix, (unsigned long long)(p->next_token + 1));
    s = jl_msg_build(L, &m, subj, reply, data, len, hidx, fname);
    if (s != NATS_OK)
        return jl_push_status(L, s, fname);
    if (id) {
        natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    } else if (tries > 0 && !(hidx && natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK)) {
        /* a retry must never store a second copy: give it an id */
        char gen[64];
        snprintf(gen, sizeof gen, "%s-%llu", p->idbase, (unsigned long long)++p->idseq);
        natsMsgHeader_Set(m, "Nats-Msg-Id", gen);
    }
    e = calloc(1, sizeof *e);
    e->token = ++p->next_token;
    e->msg = m;
    e->size = size;
    rt_pubwin_add(&p->win, size);
    e->up_ref = LUA_NOREF;
    if (!lua_isnoneornil(L, 8)) {
        e->up = jl_msg_check_ud(L, 8, fname);
        jl_msg_output_add(e->up);
        lua_pushvalue(L, 8);
        e->up_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    e->timeout_ms = (uint32_t)(timeout * 1000.0);
    e->tries_left = tries;
    rt_map_put(&p->map, e->token, e);
    p->published++;
    rt_metric_add(m_published, 1);
    pending_inc(p);
    if (e->up) {
        /* linked to a consumed message, which carries the outcome: no
         * future (one userdata and one collection less per message) */
        lua_pushboolean(L, 1);
        send_entry(p, e);
        if (p->pending == 0 && p->draining)
            settle(p);
        return 1;
    }
    f = lua_newuserdata(L, sizeof *f);
    memset(f, 0, sizeof *f);
    f->p = p;
    f->e = e;
    f->self_ref = LUA_NOREF;
    f->cb_ref = LUA_NOREF;
    p->refs++;
    luaL_getmetatable(L, FUT_MT);
    lua_setmetatable(L, -2);
    e->fut = f;
    send_entry(p, e);          /* may fail at once: the future then says so */
    if (f->state != FUT_PENDING && p->pending == 0 && p->draining)
        settle(p);
    return 1;
}

static void slot_cancel(rt_co *co, void *op) { wait_end(op); }

/* p:wait_slot(): yield until the window has room (or the publisher ends) */
static int pa_wait_slot(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async");
    rt_co *co = rt_co_current(L, "js:publish_async");
    if (!rt_pubwin_full(&p->win) || !p->registered)
        return 0;
    return rt_co_wait(co, slot_cancel, wait_add(p, co, W_SLOT, -1));
}

/* p:complete([timeout]) -> number still pending */
static int pa_complete(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async_complete");
    double timeout = -1;
    rt_co *co;
    if (!lua_isnoneornil(L, 2)) {
        timeout = jl_check_number(L, 2, "js:publish_async_complete", "timeout");
        if (timeout < 0)
            jl_argerror(L, "js:publish_async_complete", "timeout", "must be >= 0 seconds");
    }
    if (p->pending == 0 || timeout == 0) {
        lua_pushinteger(L, p->pending);
        return 1;
    }
    co = rt_co_current(L, "js:publish_async_complete");
    return rt_co_wait(co, wait_cancel, wait_add(p, co, W_COMPLETE, timeout));
}

static int pa_pending(lua_State *L)
{
    lua_pushinteger(L, check_pa(L, "js:publish_async_pending")->pending);
    return 1;
}

static int pa_on_error(lua_State *L)
{
    pa *p = check_pa(L, "js:on_publish_error");
    if (!lua_isnil(L, 2))
        jl_check_function(L, 2, "js:on_publish_error", "fn");
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    lua_pushvalue(L, 2);
    p->err_ref = lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int pa_stats(lua_State *L)
{
    pa *p = check_pa(L, "js:publish_async_stats");
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, (lua_Number)p->published); lua_setfield(L, -2, "published");
    lua_pushnumber(L, (lua_Number)p->acked);     lua_setfield(L, -2, "acked");
    lua_pushnumber(L, (lua_Number)p->failed);    lua_setfield(L, -2, "failed");
    lua_pushnumber(L, (lua_Number)p->retried);   lua_setfield(L, -2, "retried");
    lua_pushinteger(L, p->pending);              lua_setfield(L, -2, "pending");
    lua_pushinteger(L, p->max_pending);          lua_setfield(L, -2, "max_pending");
    lua_pushnumber(L, (lua_Number)p->win.bytes); lua_setfield(L, -2, "pending_bytes");
    lua_pushnumber(L, (lua_Number)p->win.max_bytes); lua_setfield(L, -2, "max_pending_bytes");
    lua_pushnumber(L, (lua_Number)p->held_in_buffer); lua_setfield(L, -2, "buffer_waits");
    return 1;
}

static int pa_gc(lua_State *L)
{
    pa_ud *u = lua_touserdata(L, 1);
    if (u->p) {
        pa_release(u->p);
        u->p = NULL;
    }
    return 0;
}

void jl_inject_pubasync(lua_State *L)
{
    static const luaL_Reg pa_methods[] = {
        {"publish", pa_publish}, {"wait_slot", pa_wait_slot}, {"complete", pa_complete},
        {"pending", pa_pending}, {"on_error", pa_on_error},   {"stats", pa_stats}, {NULL, NULL}};
    static const luaL_Reg pa_meta[] = {{"__gc", pa_gc}, {NULL, NULL}};
    static const luaL_Reg fut_methods[] = {
        {"wait", fut_wait}, {"on", fut_on}, {"status", fut_status}, {NULL, NULL}};
    static const luaL_Reg fut_meta[] = {{"__gc", fut_gc}, {NULL, NULL}};

    jl_newclass(L, PA_MT, pa_methods, pa_meta);
    jl_newclass(L, FUT_MT, fut_methods, fut_meta);
    lua_pushcfunction(L, pa_new);
    lua_setfield(L, -2, "_js_publisher");
}
