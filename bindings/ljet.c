/*
 * ljet.c - the small `jet.*` functions: log, now, monotonic, exit, spawn,
 * json, version, worker.
 */
#include "jl.h"
#include "rt_workers.h"

#include <luajit.h>
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

/* jet.log.<level>(...): arguments joined by spaces, like print. */
static int log_at(lua_State *L, int level)
{
    int n = lua_gettop(L);
    luaL_Buffer b;

    if (level < rt_log_level)
        return 0;
    lua_getglobal(L, "tostring");
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, n + 1);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        rt_log_text(level, s, len);      /* NUL bytes and all */
    }
    return 0;
}

static int jl_log_debug(lua_State *L) { return log_at(L, RT_LOG_DEBUG); }
static int jl_log_info(lua_State *L)  { return log_at(L, RT_LOG_INFO); }
static int jl_log_warn(lua_State *L)  { return log_at(L, RT_LOG_WARN); }
static int jl_log_error(lua_State *L) { return log_at(L, RT_LOG_ERROR); }

static int jl_now(lua_State *L)
{
    lua_pushnumber(L, rt_now());
    return 1;
}

static int jl_monotonic(lua_State *L)
{
    lua_pushnumber(L, (double)uv_hrtime() / 1e9);
    return 1;
}

static void exit_cancel(rt_co *co, void *op) { (void)co; (void)op; }

/* jet.exit([code]): graceful shutdown with this exit status. The calling
 * coroutine never continues (it is abandoned like a sleeper). */
static int jl_exit(lua_State *L)
{
    int code = 0;
    rt_co *co;

    if (lua_type(L, 1) == LUA_TNUMBER)
        code = (int)lua_tointeger(L, 1);
    else if (lua_type(L, 1) == LUA_TBOOLEAN)
        code = lua_toboolean(L, 1) ? 0 : 1;
    else if (!lua_isnoneornil(L, 1))
        jl_argerror(L, "jet.exit", "code", "number or boolean expected, got %s", jl_typename(L, 1));
    rt_shutdown(code);
    co = rt_co_lookup(L);
    if (co && co->L == L && co->state == RT_CO_RUNNING) {
        co->sleeping = 1;
        return rt_co_wait(co, exit_cancel, NULL);
    }
    return 0;
}

/* jet.spawn(fn, ...): run fn(...) in a new coroutine, now, until it waits. */
static int jl_spawn(lua_State *L)
{
    jl_check_function(L, 1, "jet.spawn", "fn");
    rt_co_spawn(L, lua_gettop(L) - 1, "jet.spawn coroutine", NULL, NULL);
    return 0;
}

static int jl_version(lua_State *L)
{
    lua_newtable(L);
    lua_pushstring(L, JETLUA_VERSION);
    lua_setfield(L, -2, "jetlua");
    lua_pushstring(L, LUAJIT_VERSION);
    lua_setfield(L, -2, "luajit");
    lua_pushstring(L, uv_version_string());
    lua_setfield(L, -2, "libuv");
    lua_pushstring(L, nats_GetVersion());
    lua_setfield(L, -2, "cnats");
    return 1;
}

/* jet.worker() -> {index = i (0-based), count = N}: which of the --workers
 * processes this is ({index = 0, count = 1} without --workers). */
static int jl_worker(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, rt_worker_index);
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, rt_worker_count);
    lua_setfield(L, -2, "count");
    return 1;
}

/* jet.json.decode(text), jet.json.encode(value): cjson's (upvalue 1), with
 * errors that name the function and point at the script's line (cjson's own
 * read "bad argument #1 to '?'" and decode took a number for a string). */
static int json_decode(lua_State *L)
{
    const char *err;
    jl_check_string(L, 1, "jet.json.decode", "text", NULL);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    if (lua_pcall(L, 1, 1, 0) == 0)
        return 1;
    err = lua_tostring(L, -1);
    return jl_error(L, "jet.json.decode: %s", err ? err : "invalid JSON");
}

static int json_encode(lua_State *L)
{
    const char *err;
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    if (lua_pcall(L, 1, 1, 0) == 0)
        return 1;
    err = lua_tostring(L, -1);
    return jl_argerror(L, "jet.json.encode", "value", "%s", err ? err : "cannot be encoded");
}

/* jet.json: lua-cjson, loaded on first use so scripts that never touch
 * JSON do not need it. */
static int json_index(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != 0)
        return luaL_error(L, "jet.json needs lua-cjson: apt-get install lua-cjson (%s)", lua_tostring(L, -1));
    /* A private copy: our settings never leak into the user's own cjson. */
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    /* copy encode/decode/null into the jet.json table (arg 1) */
    lua_getfield(L, -1, "encode");
    lua_pushcclosure(L, json_encode, 1);
    lua_setfield(L, 1, "encode");
    lua_getfield(L, -1, "decode");
    lua_pushcclosure(L, json_decode, 1);
    lua_setfield(L, 1, "decode");
    lua_getfield(L, -1, "null");
    lua_setfield(L, 1, "null");
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* jet._nuid(): a unique token (cnats' NUID), for names that must not clash
 * between processes (ordered consumers, generated message ids) */
static int jl_nuid(lua_State *L)
{
    char *inbox = NULL;
    if (natsInbox_Create((natsInbox **)&inbox) != NATS_OK)
        return luaL_error(L, "jet._nuid: out of memory");
    lua_pushstring(L, inbox + 7);          /* after "_INBOX." */
    natsInbox_Destroy((natsInbox *)inbox);
    return 1;
}

void jl_inject_core(lua_State *L)
{
    static const luaL_Reg logf[] = {
        {"debug", jl_log_debug}, {"info", jl_log_info},
        {"warn", jl_log_warn},   {"error", jl_log_error}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"now", jl_now},         {"monotonic", jl_monotonic}, {"exit", jl_exit},  {"spawn", jl_spawn},
        {"version", jl_version}, {"worker", jl_worker},       {"_nuid", jl_nuid}, {NULL, NULL}};

    luaL_register(L, NULL, fns);
    /* xpcall handlers that survive a stack overflow (rt_sched.c) */
    lua_getfield(L, LUA_REGISTRYINDEX, "jetlua.onerror");
    lua_setfield(L, -2, "_onerror");
    lua_getfield(L, LUA_REGISTRYINDEX, "jetlua.capture_error");
    lua_setfield(L, -2, "_capture_error");
    lua_newtable(L);
    luaL_register(L, NULL, logf);
    lua_setfield(L, -2, "log");

    lua_newtable(L);                 /* jet.json, filled lazily */
    lua_newtable(L);
    lua_pushcfunction(L, json_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "json");
}
