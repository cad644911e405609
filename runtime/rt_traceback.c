/*
 * rt_traceback.c - the tracebacks of failed jobs.
 *
 * Why not debug.traceback as the xpcall handler: when a script recurses
 * without end, LuaJIT 2.1-20230119 (Debian's libluajit2) raises "stack
 * overflow" and runs the handler with only a few spare stack slots.
 *  - In interpreted code anything that needs more (debug.traceback collects
 *    up to 15 pieces on the stack and pushes every function it looks at;
 *    even s:find in a Lua handler) overflows again inside the handler.
 *  - When the recursion was JIT-compiled, the overflow is found while a
 *    trace exit restores its frames; the stack is then relimited and no Lua
 *    or C function can even be entered as the handler (only builtins run).
 * Either way LuaJIT replaces the error with "error in error handling": no
 * message, no file:line. (Upstream reworked this later: LuaJIT defe61a5,
 * "Rework stack overflow handling".)
 *
 * So (rt_sched.c) the handler is a coroutine.wrap function, a builtin that
 * runs the body on the helper coroutine's own stack, and the body calls
 * the C function below, which reads the failed job's stack from outside.
 * It builds the whole traceback in a C buffer: lua_getstack /
 * lua_getinfo("Sln") push nothing, one string is pushed at the end. Deep
 * stacks are shown as luaL_traceback shows them (the first 12 levels,
 * "...", the last 10), counted with LuaJIT's negative-level lua_getstack in
 * one pass, so 65,000 levels cost milliseconds, not a quadratic walk.
 */
#include "rt_traceback.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#define TOP_LEVELS    12
#define BOTTOM_LEVELS 10

/* The error value as text, like tostring() (with __tostring, safely). */
static const char *message(lua_State *L, size_t *len)
{
    int t = lua_type(L, 1);

    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        return lua_tolstring(L, 1, len);
    if (luaL_getmetafield(L, 1, "__tostring")) {
        lua_pushvalue(L, 1);
        if (lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TSTRING)
            return lua_tolstring(L, -1, len);
        lua_pop(L, 1);
    }
    if (t == LUA_TNIL)
        lua_pushliteral(L, "nil");
    else if (t == LUA_TBOOLEAN)
        lua_pushstring(L, lua_toboolean(L, 1) ? "true" : "false");
    else
        lua_pushfstring(L, "%s: %p", lua_typename(L, t), lua_topointer(L, 1));
    return lua_tolstring(L, -1, len);
}

/* Levels on L's stack (LuaJIT: a failed lua_getstack leaves the count in i_ci). */
static int stack_depth(lua_State *L)
{
    lua_Debug ar;
    if (lua_getstack(L, -1, &ar))
        return 0;           /* not LuaJIT's behaviour: show what the top walk finds */
    return ar.i_ci;
}

/* Append one frame, as luaL_traceback writes it; returns 0 past the last
 * level and at the xpcall that installed this handler (the job's own
 * frames end there). */
static int frame(lua_State *L, int level, char *buf, size_t cap, size_t *n)
{
    lua_Debug ar;
    char where[LUA_IDSIZE + 16];
    int w;

    if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "Sln", &ar))
        return 0;
    if (*ar.what == 'C' && ar.name && strcmp(ar.name, "xpcall") == 0)
        return 0;
    if (ar.currentline > 0)
        snprintf(where, sizeof where, "%s:%d:", ar.short_src, ar.currentline);
    else
        snprintf(where, sizeof where, "%s:", ar.short_src);
    if (*ar.namewhat)
        w = snprintf(buf + *n, cap - *n, "\n\t%s in function '%s'", where, ar.name);
    else if (*ar.what == 'm')
        w = snprintf(buf + *n, cap - *n, "\n\t%s in main chunk", where);
    else if (*ar.what == 'C')
        w = snprintf(buf + *n, cap - *n, "\n\t%s in ?", where);
    else
        w = snprintf(buf + *n, cap - *n, "\n\t%s in function <%s:%d>", where, ar.short_src, ar.linedefined);
    if (w > 0)
        *n = *n + (size_t)w < cap ? *n + (size_t)w : cap - 1;
    return 1;
}

/* "stack overflow" raised inside a C function (string.gsub calling back
 * into Lua, ...) carries no position: give it the innermost Lua frame's,
 * as LuaJIT does when a Lua function overflows (where stays "" if none). */
static void overflow_where(lua_State *T, char *where, size_t cap)
{
    lua_Debug ar;
    for (int level = 0; level < 64 && lua_getstack(T, level, &ar); level++) {
        if (lua_getinfo(T, "Sl", &ar) && *ar.what != 'C' && ar.currentline > 0) {
            snprintf(where, cap, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
}

void rt_traceback_push(lua_State *L, lua_State *T)
{
    char buf[4096], where[LUA_IDSIZE + 32] = "";
    size_t n, len;
    const char *msg = message(L, &len);
    int depth = stack_depth(T);
    int level;

    n = (size_t)snprintf(buf, sizeof buf, "\nstack traceback:");
    for (level = 1; level <= TOP_LEVELS; level++)
        if (!frame(T, level, buf, sizeof buf, &n))
            goto done;
    if (depth > TOP_LEVELS + BOTTOM_LEVELS + 1) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\n\t...");
        level = depth - BOTTOM_LEVELS;
    }
    for (; frame(T, level, buf, sizeof buf, &n); level++)
        ;
done:
    if (len == 14 && memcmp(msg, "stack overflow", 14) == 0)
        overflow_where(T, where, sizeof where);
    lua_pushstring(L, where);
    lua_pushlstring(L, msg, len);
    lua_pushlstring(L, buf, n);
    lua_concat(L, 3);
}
