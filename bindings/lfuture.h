/*
 * lfuture.h - a pending result that one coroutine can wait for, or one
 * callback hear (lfuture.c). It is resolved once: with a value (pushed by
 * the owner's push_value) or with an error (code, detail, err_code), and
 * then reads as `value` or `nil, code, detail[, err_code]` in Lua.
 *
 * Used by js:publish_async's futures (f:wait, f:on, f:status), by
 * nc:request and by msg:ack_sync: each embeds a jl_future in its own
 * struct (first member when the struct is a Lua userdata) and resolves it
 * when the reply, PubAck or failure arrives.
 *
 * Lifetime: the owner keeps the struct alive while the future is pending.
 * A waiting coroutine that is abandoned (shutdown) calls ops->abandoned,
 * where the owner may free everything. A userdata future may be anchored
 * (jl_future_anchor) so Lua keeps it while someone listens; the anchor is
 * dropped when it resolves or nobody listens any more.
 * Loop thread only.
 */
#ifndef JETLUA_LFUTURE_H
#define JETLUA_LFUTURE_H

#include <lua.h>
#include <uv.h>

#include "rt_sched.h"

enum { JL_FUT_PENDING = 0, JL_FUT_OK, JL_FUT_ERR };

typedef struct jl_future jl_future;

typedef struct jl_future_ops {
    const char *name;    /* "f:wait", "nc:request": names misuse errors */
    const char *cb_what; /* for logs of an f:on callback ("publish_async callback") */
    /* Push the value of a resolved-OK future onto L; returns the count. */
    int (*push_value)(lua_State *L, jl_future *f);
    /* The waiting coroutine was abandoned before the result came (may be
     * NULL). The future is no longer waited on when this runs. */
    void (*abandoned)(jl_future *f);
} jl_future_ops;

struct jl_future {
    const struct jl_future_ops *ops;
    int state;         /* JL_FUT_* */
    const char *code;  /* error code: a static or interned string */
    char *detail;      /* error sentence (owned) */
    int err_code;      /* JetStream err_code, 0 if none */
    rt_co *waiter;     /* one waiting coroutine, or NULL */
    uv_timer_t *timer; /* the waiter's own timeout, or NULL */
    const char *timeout_detail;
    int cb_ref;   /* one callback, or LUA_NOREF */
    int self_ref; /* anchor of a userdata future, or LUA_NOREF */
};

void jl_future_init(jl_future *f, const jl_future_ops *ops);
/* Free what the future owns (its detail); it must not be waited on. */
void jl_future_free(jl_future *f);

/* value | nil, code, detail[, err_code]; returns the count. Pending:
 * nil, "pending", "<name>: not resolved yet". */
int jl_future_push(lua_State *L, jl_future *f);

/* Yield co until f resolves (then the coroutine gets jl_future_push's
 * results), or until timeout_s (>= 0; < 0: none) passes: then it gets
 * nil, "timeout", timeout_detail and the future stays pending. A resolved
 * future returns its results at once. Raises if another coroutine waits.
 * self_idx > 0: the future is the userdata at that index, kept alive
 * (anchored) while someone listens. */
int jl_future_wait(lua_State *L, jl_future *f, rt_co *co, int self_idx, double timeout_s,
                   const char *timeout_detail);

/* Call the function at fn_idx once f resolves, in its own coroutine, with
 * jl_future_push's results (now if it already did). Replaces an earlier
 * callback. self_idx as for jl_future_wait. */
void jl_future_on(lua_State *L, jl_future *f, int fn_idx, int self_idx);

/* Resolve: the waiter resumes and the callback runs (each only if there).
 * code must outlive the future; detail is copied. Returns 1 if anyone was
 * told. A resolved future stays as it is (0). */
int jl_future_ok(jl_future *f);
int jl_future_fail(jl_future *f, const char *code, const char *detail, int err_code);

#endif
