/*
 * lpublish.c - publishing on a core connection: nc:publish, and the message
 * building every publish with headers shares (jl_msg_build).
 *
 * A publish only appends to cnats' write buffer; lwire.c writes it out
 * (every 64 publishes, before each poll) and makes nc:publish wait while
 * the buffer is over max_buffered.
 */
#include "jl.h"
#include "lconn.h"
#include "lpublish.h"
#include "lwire.h"

#include <string.h>

/* Adds the value at vidx; on a wrong type destroys m first, then raises
 * (a raise must not leak the message). */
static void add_header_value(lua_State *L, natsMsg *m, const char *key, int vidx, const char *fname)
{
    if (lua_type(L, vidx) != LUA_TSTRING) {
        const char *t = luaL_typename(L, vidx);
        natsMsg_Destroy(m);
        jl_argerror(L, fname, "headers", "value of '%s' must be a string or a list of strings, got %s", key, t);
    }
    natsMsgHeader_Add(m, key, lua_tostring(L, vidx));
}

natsStatus jl_msg_build(lua_State *L, natsMsg **out, const char *subj, const char *reply,
                        const char *data, size_t len, int hidx, const char *fname)
{
    natsMsg *m = NULL;
    natsStatus s;

    *out = NULL;
    if (hidx && lua_type(L, hidx) != LUA_TTABLE)
        jl_argerror(L, fname, "headers", "table expected, got %s", luaL_typename(L, hidx));
    s = natsMsg_Create(&m, subj, reply, data, (int)len);
    if (s != NATS_OK || !hidx) {
        *out = m;
        return s;
    }
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        const char *key;
        if (lua_type(L, -2) != LUA_TSTRING) {
            natsMsg_Destroy(m);
            jl_argerror(L, fname, "headers", "header names must be strings");
        }
        key = lua_tostring(L, -2);
        if (!*key || strpbrk(key, " \t\r\n:")) {
            natsMsg_Destroy(m);
            jl_argerror(L, fname, "headers", "invalid header name '%s'", key);
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            int n = (int)lua_objlen(L, -1);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                add_header_value(L, m, key, lua_gettop(L), fname);
                lua_pop(L, 1);
            }
        } else {
            add_header_value(L, m, key, lua_gettop(L), fname);
        }
        lua_pop(L, 1);
    }
    *out = m;
    return NATS_OK;
}

natsStatus jl_conn_publish(lua_State *L, jl_conn *c, const char *subj, const char *reply,
                           const char *data, size_t len, int hidx, const char *fname)
{
    natsMsg *m = NULL;
    natsStatus s;

    if (!hidx) {
        if (reply)
            s = natsConnection_PublishRequest(c->nc, subj, reply, data, (int)len);
        else
            s = natsConnection_Publish(c->nc, subj, data, (int)len);
        jl_conn_write_some(c, len);
        return s;
    }
    s = jl_msg_build(L, &m, subj, reply, data, len, hidx, fname);
    if (s != NATS_OK)
        return s;
    s = natsConnection_PublishMsg(c->nc, m);
    natsMsg_Destroy(m);
    jl_conn_write_some(c, len);
    return s;
}

/* nc:publish(subject, data, {headers=, reply=}) */
static int nc_publish(lua_State *L)
{
    static const char *const keys[] = {"headers", "reply", NULL};
    jl_conn *c = jl_conn_check(L, 1, "nc:publish");
    size_t len = 0, slen = 0;
    const char *subj = jl_check_subject(L, 2, "nc:publish", 0, &slen);
    const char *data = "";
    const char *reply = NULL;
    int hidx = 0;
    natsStatus s;

    if (!lua_isnoneornil(L, 3))
        data = jl_check_string(L, 3, "nc:publish", "data", &len);
    if (jl_opt_table(L, 4, "nc:publish", "opts")) {
        jl_check_keys(L, 4, "nc:publish", keys);
        reply = jl_field_string(L, 4, "reply", "nc:publish", NULL);
        if (reply && jl_subject_invalid(reply, strlen(reply), 0))
            jl_argerror(L, "nc:publish", "reply", "invalid reply subject '%s' (%s)", reply,
                        jl_subject_invalid(reply, strlen(reply), 0));
        lua_getfield(L, 4, "headers");
        if (!lua_isnil(L, -1))
            hidx = lua_gettop(L);
    }
    jl_check_pub_line(L, "nc:publish", reply && strlen(reply) > slen ? "reply" : "subject", slen,
                      reply ? strlen(reply) : 0, hidx != 0, len);
    if (jl_conn_is_closed(c))
        return jl_conn_closed_result(L, "nc:publish");
    jl_conn_check_open(L, c, "nc:publish");
    if (c->over_buffered && !rt_co_lookup(L))
        return jl_fail(L, "buffer_full", "nc:publish: the connection's write buffer is full (the server "
                                         "is not reading) and this coroutine cannot wait");
    s = jl_conn_publish(L, c, subj, reply, data, len, hidx, "nc:publish");
    if (s != NATS_OK)
        return jl_push_status(L, s, "nc:publish");
    if (c->over_buffered && c->state == JL_CONN_CONNECTED) {
        /* backpressure: this message is in the buffer; wait until it drained */
        rt_co *co;
        jl_conn_write(c);
        c->over_buffered = natsConnection_Buffered(c->nc) > c->max_buffered;
        if (c->over_buffered && (co = rt_co_lookup(L)) != NULL)
            return jl_conn_bp_wait(c, co);
    }
    lua_pushboolean(L, 1);
    return 1;
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

void jl_inject_publish(lua_State *L)
{
    static const luaL_Reg methods[] = {{"publish", nc_publish}, {NULL, NULL}};
    jl_conn_add_methods(L, methods);
    lua_pushcfunction(L, jet_check_publish);
    lua_setfield(L, -2, "_check_publish");
}
