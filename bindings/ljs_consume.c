/*
 * ljs_consume.c - js:consume, and the handle every pull mode returns
 * (jetlua/pull.lua checks the arguments and the consumer, then calls
 * jet._js_pull here; the engine is ljs_pull.c, see ljs_pull.h).
 *
 * Consume runs a handler per message in a pooled coroutine, at most
 * `concurrency` at once, with auto ack: return -> +ACK, raise -> -NAK with
 * the default redelivery delay (1 s, 5 s, 15 s, 30 s by delivery count).
 * The handle's methods (stop, drain, closed, stats, _reconfigure) work in
 * every mode; it:next() and f:fetch() are in ljs_messages.c.
 */
#include "ljs_pull.h"
#include "rt_mem.h"

#include <stdlib.h>
#include <string.h>

typedef jl_pull_ud pull_ud;

static rt_series *m_handler_errors;

/* ---- options ---- */

static double opt_num(lua_State *L, int t, const char *k, double def)
{
    double v;
    lua_getfield(L, t, k);
    v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static uint64_t opt_ms(lua_State *L, int t, const char *k, double def_s)
{
    return (uint64_t)(opt_num(L, t, k, def_s) * 1000.0);
}

/* What the engine reads from the options table at t (checked by pull.lua),
 * at start and on a reload. The request limits default to what the engine
 * has (a 409 or a consumer info may have updated them). May raise (a table
 * with metamethods): call it before the engine holds anything. */
typedef struct pull_cfg {
    rt_pull_opts o;
    int auto_ack, fetch_n;
} pull_cfg;

static void read_options(lua_State *L, int t, const rt_pull *w, pull_cfg *cfg)
{
    rt_pull_opts *o = &cfg->o;
    memset(cfg, 0, sizeof *cfg);
    o->max_msgs = (int64_t)opt_num(L, t, "max_messages", 4000);
    o->max_bytes = (int64_t)opt_num(L, t, "max_bytes", 0);
    o->thr_msgs = (int64_t)opt_num(L, t, "threshold_messages", (double)(o->max_msgs / 2));
    o->thr_bytes = (int64_t)opt_num(L, t, "threshold_bytes", (double)(o->max_bytes / 2));
    o->expires_ms = opt_ms(L, t, "expires", 30);
    o->hb_ms = opt_ms(L, t, "heartbeat", 0);
    o->wpi_ms = opt_ms(L, t, "in_progress", 0);
    o->ack_wait_ms = opt_ms(L, t, "ack_wait", 0);
    o->concurrency = (int)opt_num(L, t, "concurrency", 1);
    o->lim_batch = (int64_t)opt_num(L, t, "max_request_batch", (double)w->lim_batch);
    o->lim_bytes = (int64_t)opt_num(L, t, "max_request_max_bytes", (double)w->lim_bytes);
    o->lim_expires_ms = opt_ms(L, t, "max_request_expires", w->lim_expires_ms / 1000.0);
    cfg->fetch_n = (int)opt_num(L, t, "batch", 1);
    lua_getfield(L, t, "auto_ack");
    cfg->auto_ack = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_getfield(L, t, "no_wait");
    o->no_wait = lua_toboolean(L, -1);
    lua_pop(L, 2);
}

static void apply_options(jl_pull *p, const pull_cfg *cfg)
{
    rt_pull_configure(&p->w, &cfg->o);
    p->auto_ack = cfg->auto_ack;
    p->fetch_n = cfg->fetch_n;
}

/* Slots are allocated one by one (a running handler holds a pointer to
 * its slot), so a reload can raise the concurrency while handlers run. */
static void grow_slots(jl_pull *p)
{
    int n = p->w.concurrency;
    if (p->nslots >= n)
        return;
    p->slots = rt_xrealloc(p->slots, sizeof *p->slots * (size_t)n);
    for (int i = p->nslots; i < n; i++) {
        p->slots[i] = rt_xcalloc(1, sizeof **p->slots);
        p->slots[i]->p = p;
        p->slots[i]->idx = i + 1;
    }
    p->nslots = n;
}

static int ref_function(lua_State *L, int idx)
{
    if (!lua_isfunction(L, idx))
        return LUA_NOREF;
    lua_pushvalue(L, idx);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* jet._js_pull(nc, next_subject, mode, opts, handler|nil, on_error|nil, what)
 * -> handle | nil, code, detail. opts (checked by pull.lua): max_messages,
 * max_bytes, threshold_messages, threshold_bytes, expires, heartbeat,
 * concurrency, auto_ack, in_progress, ack_wait, no_wait, batch (fetch), the
 * consumer's max_request_*, num_pending, num_ack_pending, info_subject,
 * advisory_subject. */
static int pull_new(lua_State *L)
{
    jl_conn *c = jl_conn_check(L, 1, "js:consume");
    const char *subj = luaL_checkstring(L, 2);
    const char *mode = luaL_checkstring(L, 3);
    const char *what = luaL_optstring(L, 7, "consumer");
    const char *info = NULL, *adv = NULL, *code, *detail;
    rt_pull_mode m;
    rt_pull none;
    pull_cfg cfg;
    int64_t num_pending, num_ack_pending;
    pull_ud *u;
    jl_pull *p;

    luaL_checktype(L, 4, LUA_TTABLE);
    jl_conn_check_open(L, c, "js:consume");
    if (!m_handler_errors)
        m_handler_errors = rt_metric_simple("jetlua_handler_errors_total", RT_COUNTER, "handlers that raised an error");
    m = strcmp(mode, "consume") == 0 ? RT_PULL_CONSUME : strcmp(mode, "messages") == 0 ? RT_PULL_MESSAGES
                                                                                      : RT_PULL_FETCH;
    if (m == RT_PULL_CONSUME)
        jl_check_function(L, 5, "js:consume", "handler");
    /* Everything that may raise comes first: once the engine holds its own
     * userdata (self_ref), a raise would leave it pinned for good. */
    lua_settop(L, 7);
    memset(&none, 0, sizeof none);
    read_options(L, 4, &none, &cfg);
    num_pending = (int64_t)opt_num(L, 4, "num_pending", -1);
    num_ack_pending = (int64_t)opt_num(L, 4, "num_ack_pending", -1);
    if (m != RT_PULL_FETCH) {
        lua_getfield(L, 4, "info_subject");            /* kept on the stack (8, 9) while used */
        lua_getfield(L, 4, "advisory_subject");
        info = lua_tostring(L, 8);
        adv = lua_tostring(L, 9);
    }
    u = lua_newuserdata(L, sizeof *u);
    u->p = NULL;
    luaL_getmetatable(L, JL_PULL_MT);
    lua_setmetatable(L, -2);

    /* From here __gc frees the engine; after self_ref nothing raises. */
    p = u->p = jl_pull_new(c, m, m == RT_PULL_CONSUME ? &jl_pull_consume_ops : &jl_pull_messages_ops, subj, what);
    apply_options(p, &cfg);
    p->num_pending = num_pending;
    p->num_ack_pending = num_ack_pending;
    if (m == RT_PULL_CONSUME) {
        grow_slots(p);
        p->handler_ref = ref_function(L, 5);
    }
    p->err_ref = ref_function(L, 6);
    lua_pushvalue(L, -1);
    p->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (jl_pull_start(p, info, adv, &code, &detail) != 0)
        return jl_fail(L, code, detail);
    return 1;
}

/* ---- the handle ---- */

static int pull_stop(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "consumer:stop");
    rt_health_remove(p->health);            /* ended on purpose: no longer counted */
    p->health = NULL;
    jl_pull_close(p, 1, "closed");
    lua_pushboolean(L, 1);
    return 1;
}

/* cppcheck-suppress constParameter ; the signature is the callback type's */
static void drain_cancel(rt_co *co, void *op)
{
    jl_pull *p = op;
    if (p->drain_co == co)
        p->drain_co = NULL;
}

/* h:drain(): stop pulling, finish what arrived; yields until done when
 * called from a coroutine */
static int pull_drain(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "consumer:drain");
    rt_co *co = rt_co_lookup(L);
    rt_health_remove(p->health);
    p->health = NULL;
    jl_pull_start_drain(p);
    /* an iterator's buffered messages are handed out by it:next() (likely
     * called by this very coroutine): do not wait for them */
    if (p->finalized || !co || p->drain_co || p->w.mode == RT_PULL_MESSAGES) {
        lua_pushboolean(L, 1);
        return 1;
    }
    p->drain_co = co;
    return rt_co_wait(co, drain_cancel, p);
}

/* h:_reconfigure(opts, handler, on_error|nil): a hot reload keeps the
 * consumer and swaps its code and options; running handlers finish on the
 * code that received their message. */
static int pull_reconfigure(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "consumer:_reconfigure");
    pull_cfg cfg;
    luaL_checktype(L, 2, LUA_TTABLE);
    if (p->w.mode != RT_PULL_CONSUME)
        return luaL_error(L, "consumer:_reconfigure: not a consume handle");
    jl_check_function(L, 3, "consumer:_reconfigure", "handler");
    read_options(L, 2, &p->w, &cfg);
    apply_options(p, &cfg);
    grow_slots(p);
    luaL_unref(L, LUA_REGISTRYINDEX, p->handler_ref);
    p->handler_ref = ref_function(L, 3);
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    p->err_ref = ref_function(L, 4);
    jl_pull_tick_sync(p, 1);
    jl_pull_pump(p);
    return 0;
}

/* Ended: finalized, or an iterator stopped with nothing left to hand out
 * (its waiter may be resumed from inside the engine, before finalizing) */
static int ended(jl_pull *p)
{
    return p->finalized || (p->w.mode == RT_PULL_MESSAGES && p->state == JL_PULL_STOPPING && p->qlen == 0);
}

static int pull_closed(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "consumer:closed");
    lua_pushboolean(L, ended(p));
    return 1;
}

#define SETN(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))

static int pull_stats(lua_State *L)
{
    jl_pull *p = jl_pull_check(L, "consumer:stats");
    const rt_pull *w = &p->w;
    uint64_t now = jl_pull_now();
    lua_createtable(L, 0, 16);
    SETN("delivered", p->delivered);
    SETN("acked", p->st->acked);
    SETN("naked", p->st->naked);
    SETN("termed", p->st->termed);
    SETN("in_progress", p->st->in_progress);
    SETN("redelivered", p->redelivered);
    SETN("buffered", p->qlen);
    SETN("in_flight", p->running);
    SETN("outstanding", w->out_msgs);
    SETN("window", rt_pull_window(w));
    SETN("handler_ms", w->handler_us / 1000.0);
    SETN("requests", w->nreqs);
    SETN("pulls", w->pulls);
    SETN("heartbeats_missed", w->hb_missed);
    SETN("errors", p->errors);
    SETN("handler_errors", p->handler_errors);
    SETN("backoff", w->backoff_until > now ? (w->backoff_until - now) / 1000.0 : 0.0);
    SETN("max_deliveries", p->max_deliveries);
    if (p->num_pending >= 0)
        SETN("num_pending", p->num_pending);
    if (p->num_ack_pending >= 0)
        SETN("num_ack_pending", p->num_ack_pending);
    if (w->lim_batch > 0)
        SETN("max_request_batch", w->lim_batch);
    if (w->lim_expires_ms > 0)
        SETN("max_request_expires", w->lim_expires_ms / 1000.0);
    if (w->lim_bytes > 0)
        SETN("max_request_max_bytes", w->lim_bytes);
    if (p->term_code) {
        lua_pushstring(L, p->term_code);
        lua_setfield(L, -2, "error");
    }
    lua_pushboolean(L, ended(p));
    lua_setfield(L, -2, "closed");
    return 1;
}

static int pull_gc(lua_State *L)
{
    pull_ud *u = lua_touserdata(L, 1);
    jl_pull *p = u->p;
    if (!p)
        return 0;
    u->p = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, p->handler_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
    jl_pull_free(p);
    return 0;
}

/* ---- consume: the runners ----
 *
 * Up to `concurrency` runners, each a pooled coroutine running the Lua loop
 * below: take a buffered message, run the handler under xpcall, report,
 * repeat; a runner ends when nothing is buffered. One coroutine resume per
 * burst instead of one per message. A handler that yields (I/O, sleep)
 * suspends its runner only; the others go on. The handler is fetched per
 * message, so a hot reload's new handler takes the next message. */

static int runner_ref = LUA_NOREF;

/* A handler wrapped by a retry policy (jetlua/retry.lua) catches its own
 * errors, carries out the policy and returns (FAILED, traceback, what it
 * did): `done` counts and logs those like the errors it catches itself. */
static char failed_key;

#include "consume_runner.lua.h" /* RUNNER[]: bindings/embedded/consume_runner.lua */

/* engine:_take/_done are the runner's (internal): refuse anything else */
static jl_pull_slot *slot_arg(lua_State *L, jl_pull *p, const char *fname)
{
    int idx = (int)luaL_checkinteger(L, 2);
    if (p->w.mode != RT_PULL_CONSUME)
        luaL_error(L, "%s: not a js:consume handle (internal)", fname);
    if (idx < 1 || idx > p->nslots)
        luaL_error(L, "%s: bad runner slot %d (internal)", fname, idx);
    return p->slots[idx - 1];
}

/* The next buffered message for slot s: pushes msg, handler (2), or
 * nothing (0: the runner ends). */
static int take(lua_State *L, jl_pull *p, jl_pull_slot *s)
{
    natsMsg *m;
    if (!s->busy || p->qlen == 0 || s->idx > p->w.concurrency ||
        (p->state != JL_PULL_ACTIVE && p->state != JL_PULL_DRAINING))
        return 0;
    m = jl_pull_q_pop(p);
    s->last_wpi = jl_pull_now();
    s->started_ns = uv_hrtime();            /* every run: the handler_seconds histogram */
    s->u = jl_msg_push_ud(L, m, p->c);
    jl_msg_set_stats(s->u, p->st);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->handler_ref);
    if (p->qlen == 0)
        jl_pull_maybe_pull(p);               /* ask again as soon as there is room */
    return 2;
}

/* engine:_take(idx) -> msg, handler | nil (the runner ends) */
static int pull_take(lua_State *L)
{
    jl_pull *p = ((pull_ud *)luaL_checkudata(L, 1, JL_PULL_MT))->p;
    if (!p)
        return 0;
    return take(L, p, slot_arg(L, p, "consumer:_take"));
}

/* A handler failed (raised, or its retry policy handled the error: then
 * note says what the policy did). Count it; without a policy, nak with the
 * default back-off (1 s, 5 s, 15 s, 30 s by delivery) so a poison message
 * does not spin; log it once per window (rt_error_repeat). */
static void handler_failed(lua_State *L, jl_pull *p, jl_pull_slot *s, const char *err, const char *note)
{
    natsMsg *m = lua_touserdata(L, 3) ? jl_msg_check(L, 3, "consumer:_done") : NULL;
    jl_ack_meta am;
    long seq = 0, nd = 0;
    char line[400], act[96] = "";

    p->handler_errors++;
    rt_metric_add(m_handler_errors, 1);
    rt_metric_add(p->mc_errors, 1);
    if (m && jl_ack_parse(natsMsg_GetReply(m), &am) == 0) {
        seq = strtol(am.f[JL_ACK_STREAM_SEQ], NULL, 10);
        nd = strtol(am.f[JL_ACK_DELIVERED], NULL, 10);
    }
    if (note) {
        snprintf(act, sizeof act, " -> %s", note);
    } else if (s->u && p->auto_ack && !jl_msg_acked(s->u) && p->c->state != JL_CONN_CLOSED) {
        uint64_t ms = rt_pull_redelivery_ms(nd);
        char nak[64];
        snprintf(nak, sizeof nak, "-NAK {\"delay\":%llu}", (unsigned long long)ms * 1000000ULL);
        if (jl_msg_send_ack(s->u, nak) == 0)
            snprintf(act, sizeof act, " -> nak, redelivery in %llu s", (unsigned long long)ms / 1000);
    }
    snprintf(line, sizeof line, "%s seq %ld (delivery %ld)%s", p->where, seq, nd, act);
    rt_error_repeat(p->where, line, err ? err : "(an error that is not a string)");
}

/* The handler of slot s returned (stack: engine, idx, msg, ok, err, tb,
 * note): auto ack or nak, counts, refill. */
static void done(lua_State *L, jl_pull *p, jl_pull_slot *s)
{
    int ok = lua_toboolean(L, 4);
    double us = -1;
    if (!s->busy)
        return;
    if (!ok)
        handler_failed(L, p, s, lua_tostring(L, 5), NULL);
    else if (lua_touserdata(L, 5) == &failed_key)
        handler_failed(L, p, s, lua_tostring(L, 6), lua_tostring(L, 7) ? lua_tostring(L, 7) : "handled");
    if (s->started_ns) {
        us = (double)(uv_hrtime() - s->started_ns) / 1000.0;
        rt_metric_observe(p->mc_seconds, us / 1e6);
    }
    rt_pull_handled(&p->w, us);              /* the window learns the handlers' pace */
    /* auto-ack, unless the handler handed the ack to publishes (publish_async{ack = msg}) */
    if (ok && s->u && p->auto_ack && !jl_msg_acked(s->u) && !jl_msg_handed_off(s->u) &&
        p->c->state != JL_CONN_CLOSED)
        jl_msg_send_ack(s->u, "+ACK");
    s->u = NULL;
    if (p->qlen <= 1) {
        jl_pull_maybe_pull(p);
        jl_pull_gauges(p);
    }
}

/* engine:_done(idx, msg, ok, err, tb, note) */
static int pull_done(lua_State *L)
{
    jl_pull *p = ((pull_ud *)luaL_checkudata(L, 1, JL_PULL_MT))->p;
    if (!p)
        return 0;
    done(L, p, slot_arg(L, p, "consumer:_done"));
    return 0;
}

/* engine:_step(idx [, msg, ok, err, tb, note]) -> msg, handler | nil: the
 * runner's one call per message (_done of the last, then _take). */
static int pull_step(lua_State *L)
{
    jl_pull *p = ((pull_ud *)luaL_checkudata(L, 1, JL_PULL_MT))->p;
    jl_pull_slot *s;
    if (!p)
        return 0;
    s = slot_arg(L, p, "consumer:_step");
    if (lua_gettop(L) >= 3) {
        lua_settop(L, 7);
        done(L, p, s);
        if (p->finalized)
            return 0;
    }
    return take(L, p, s);
}

static void runner_done(rt_co *co, int ok, void *data)
{
    jl_pull_slot *s = data;
    jl_pull *p = s->p;
    (void)co;
    (void)ok;                                /* handler errors were caught and reported by _done */
    s->busy = 0;
    s->u = NULL;
    p->running--;
    if (!p->dispatching) {
        jl_pull_dispatch(p);
        jl_pull_maybe_pull(p);
        jl_pull_gauges(p);
        jl_pull_maybe_finalize(p);
    }
}

static void consume_dispatch(jl_pull *p)
{
    lua_State *L = RT->L;
    if (p->w.mode != RT_PULL_CONSUME || p->dispatching)
        return;
    if (runner_ref == LUA_NOREF) {
        if (luaL_loadbuffer(L, RUNNER, sizeof RUNNER - 1, "=jetlua.consume") != 0) {
            rt_error("consumer runner: %s", lua_tostring(L, -1));
            lua_pop(L, 1);
            return;
        }
        runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    p->dispatching = 1;
    while (p->qlen > 0 && p->running < p->w.concurrency &&
           (p->state == JL_PULL_ACTIVE || p->state == JL_PULL_DRAINING)) {
        jl_pull_slot *s = NULL;
        for (int i = 0; i < p->w.concurrency; i++)
            if (!p->slots[i]->busy) {
                s = p->slots[i];
                break;
            }
        if (!s)
            break;                           /* not reached: running < concurrency leaves one free */
        s->busy = 1;
        p->running++;
        lua_rawgeti(L, LUA_REGISTRYINDEX, runner_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref);
        lua_pushinteger(L, s->idx);
        rt_co_spawn(L, 2, p->what, runner_done, s);
    }
    p->dispatching = 0;
}

static void consume_keepalive(jl_pull *p, uint64_t now)
{
    if (!p->w.wpi_ms || p->w.mode != RT_PULL_CONSUME)
        return;
    for (int i = 0; i < p->nslots; i++) {
        jl_pull_slot *s = p->slots[i];
        if (s->busy && s->u && now - s->last_wpi >= p->w.wpi_ms && !jl_msg_acked(s->u)) {
            s->last_wpi = now;
            jl_msg_send_ack(s->u, "+WPI");
        }
    }
}

const jl_pull_ops jl_pull_consume_ops = {consume_dispatch, consume_keepalive, NULL, NULL};

/* jet._redelivery_delay(n) -> seconds: the default back-off after a failed
 * n-th delivery (retry.lua's "nak" without a delay uses it too) */
static int pull_redelivery_delay(lua_State *L)
{
    lua_pushnumber(L, rt_pull_redelivery_ms((long)luaL_checknumber(L, 1)) / 1000.0);
    return 1;
}

void jl_inject_pull(lua_State *L)
{
    static const luaL_Reg methods[] = {{"next", jl_pull_lua_next},
                                       {"fetch", jl_pull_lua_fetch},
                                       {"stop", pull_stop},
                                       {"drain", pull_drain},
                                       {"closed", pull_closed},
                                       {"stats", pull_stats},
                                       {"_reconfigure", pull_reconfigure},
                                       {"_take", pull_take},
                                       {"_done", pull_done},
                                       {"_step", pull_step},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", pull_gc}, {"__call", jl_pull_lua_call}, {NULL, NULL}};
    jl_newclass(L, JL_PULL_MT, methods, meta);
    lua_pushcfunction(L, pull_new);
    lua_setfield(L, -2, "_js_pull");
    lua_pushlightuserdata(L, &failed_key);
    lua_setfield(L, -2, "_handler_failed");
    lua_pushcfunction(L, pull_redelivery_delay);
    lua_setfield(L, -2, "_redelivery_delay");
}
