/*
 * lmsg.c - message objects: msg.subject, msg.reply, msg.data, msg.headers,
 * msg:header(name), msg:header_values(name), msg:respond(data, opts).
 *
 * The userdata owns the natsMsg until it is collected. Fields are read
 * lazily from the natsMsg, so a handler that only counts messages never
 * copies a payload into a Lua string.
 */
#include "jl.h"
#include "lconn.h"

#include <stdlib.h>
#include <string.h>

#define MSG_MT "jetlua.msg"

typedef struct lmsg {
    natsMsg *m;
    jl_conn *c;
} lmsg;

static int methods_ref = LUA_NOREF;
static int mt_ref = LUA_NOREF;      /* the metatable, by integer ref: no string lookup per message */

void jl_msg_push(lua_State *L, natsMsg *m, jl_conn *c)
{
    lmsg *u = lua_newuserdata(L, sizeof *u);
    u->m = m;
    u->c = c;
    if (c)
        jl_conn_retain(c);
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
    lua_setmetatable(L, -2);
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
        natsMsg_Destroy(u->m);
        u->m = NULL;
    }
    if (u->c) {
        jl_conn_release(u->c);
        u->c = NULL;
    }
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
    static const luaL_Reg methods[] = {
        {"header", msg_header}, {"header_values", msg_header_values},
        {"respond", msg_respond}, {NULL, NULL}};
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
