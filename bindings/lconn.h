/*
 * lconn.h - the connection's life (lconn.c): references, state checks, its
 * clients, events, drain and close. The struct is in jl_conn.h; the write
 * buffer in lwire.h; jet.connect in lconnect.c; the request mux every
 * request waits on (a client like any other) in lmux.h.
 */
#ifndef JETLUA_LCONN_H
#define JETLUA_LCONN_H

#include <lauxlib.h>

#include "jl_conn.h"

/* Count c among the open connections (and /readyz) until closed. */
void jl_conn_track(jl_conn *c);

void jl_conn_retain(jl_conn *c);
/* After the closed event, the shutdown hook is done only once every
 * client (the request mux too) has been completed by cnats and removed
 * itself (so no late event can arrive after the inbox closes). Call when
 * one of those changes. */
void jl_conn_maybe_done(jl_conn *c);
void jl_conn_release(jl_conn *c);

/* Add/remove a client (see jl_client). Removing may finish a drain. */
void jl_conn_client_add(jl_conn *c, jl_client *k);
void jl_conn_client_remove(jl_conn *c, jl_client *k);
/* Loop thread, after each read event of c (rt_natsuv's hook: arg is c)
 * and when it closes: every client hands its queued messages on. */
void jl_conn_after_read(void *c);

/* Run the script's nc:on(event) callback, if any, in its own coroutine:
 * fn(nc, info) -- or for "error", fn(nc, code, detail, subject). */
void jl_conn_fire_event(jl_conn *c, int ev, const char *info);
void jl_conn_fire_error(jl_conn *c, const char *code, const char *detail, const char *subject);

/* Messages cnats queued on sub (1: it cannot say, e.g. closed). */
int jl_sub_pending(natsSubscription *sub);
/* Read a synchronous reply subscription dry, on the loop (the fast paths of
 * the async publisher and the request mux): fn(arg, m) for each message (fn
 * owns m) until it returns nonzero. *subp is read again after each call (fn
 * may end the subscription). Returns the 503s cnats swallowed there: they
 * name no message. */
int jl_fast_sub_drain(natsSubscription *const *subp, int (*fn)(void *arg, natsMsg *m), void *arg);

/* A fresh "_INBOX.<nuid>." prefix for a wildcard reply subscription: its
 * length, or 0 on failure. */
size_t jl_inbox_prefix(char *buf, size_t size);

/* The checks every method makes, inline: nc:publish runs them per message
 * (as calls into lconn.c they cost 1 % of its instructions). The raising
 * halves are out of line. */
int jl_conn_bad_self(lua_State *L, int idx, const char *fname) __attribute__((noreturn));
int jl_conn_not_open(lua_State *L, jl_conn *c, const char *fname) __attribute__((noreturn));

/* The connection behind the nc userdata at idx; raises if it is not one. */
static inline jl_conn *jl_conn_check(lua_State *L, int idx, const char *fname)
{
    conn_ud *u = luaL_testudata(L, idx, CONN_MT);
    if (!u)
        jl_conn_bad_self(L, idx, fname);
    return u->c;
}

/* Raise "<fname>: the connection is closed" unless it is usable. dropping:
 * nc:close() was called; the closed event may not have come back yet, but
 * the connection is closed for the script from then on. */
static inline void jl_conn_check_open(lua_State *L, jl_conn *c, const char *fname)
{
    if (c->state == JL_CONN_CLOSED || c->dropping || c->state == JL_CONN_CONNECTING || !c->nc)
        jl_conn_not_open(L, c, fname);
}

/* 1 when the connection is closed for the script (closed, nc:close()
 * called, or never connected): I/O calls then return nil, "closed". */
static inline int jl_conn_is_closed(jl_conn *c)
{
    return c->state == JL_CONN_CLOSED || c->dropping || !c->nc;
}

/* Push nil, "closed", "<fname>: the connection is closed"; returns 3. */
int  jl_conn_closed_result(lua_State *L, const char *fname);

/* Add methods to the connection class (nc:publish, nc:subscribe live in
 * their own files); after jl_inject_conn made the class. */
void jl_conn_add_methods(lua_State *L, const luaL_Reg *methods);

/* For jet.connect (lconnect.c): the shutdown hook and cnats' connection
 * event callbacks (any thread: they only post to the loop). */
void jl_conn_hook_begin(rt_hook *h);
void jl_conn_hook_force(rt_hook *h);
void jl_conn_on_disconnected(natsConnection *nc, void *cl);
void jl_conn_on_reconnected(natsConnection *nc, void *cl);
void jl_conn_on_closed(natsConnection *nc, void *cl);

#endif
