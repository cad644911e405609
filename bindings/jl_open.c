/*
 * jl_open.c - the `jetlua` module: package paths, the scheduler, and the
 * jet table every bindings file adds its functions to. The only file that
 * knows every binding.
 */
#include "jl.h"
#include "jl_open.h"
#include "rt_paths.h"

#include <lualib.h>
#include <stdio.h>

/* Each bindings file exports one injector: it adds its functions to the
 * table on top of the stack (jet), or methods to a class made before it. */
void jl_inject_core(lua_State *L);      /* ljet.c: log, now, exit, spawn, json, version */
void jl_inject_timer(lua_State *L);     /* ltimer.c: sleep, timer, every */
void jl_inject_msg(lua_State *L);       /* lmsg.c: message objects */
void jl_inject_conn(lua_State *L);      /* lconn.c: the connection class */
void jl_inject_publish(lua_State *L);   /* lpublish.c: nc:publish (needs the class) */
void jl_inject_sub(lua_State *L);       /* lsub.c: nc:subscribe (needs the class) */
void jl_inject_connect(lua_State *L);   /* lconnect.c: jet.connect */
void jl_inject_process(lua_State *L);   /* lprocess.c: jet.process, for tools and tests */
void jl_inject_pubasync(lua_State *L);  /* lpubasync.c: the engine of js:publish_async */
void jl_inject_pull(lua_State *L);      /* ljs_consume.c: jet._js_pull, js:consume/messages/fetch */
void jl_inject_metrics(lua_State *L);   /* lmetrics.c: jet.metrics */
void jl_inject_reload(lua_State *L);    /* lreload.c: --watch and SIGHUP for jetlua/reload.lua */

static int open_jetlua(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "jetlua.module");
    return 1;
}

#include "jetlua_lazy.lua.h" /* lazy_src[]: bindings/embedded/jetlua_lazy.lua */

void jl_open(lua_State *L)
{
    const char *dir = rt_lua_dir(NULL);   /* main.c refuses to start without it */
    char buf[2048];

    luaL_openlibs(L);
    if (dir)
        jl_set_lua_dir(dir);     /* for jl_error: which chunks are jetlua's own */

    /* package.path: jetlua's Lua half (rt_paths.h) first, then the defaults;
     * main.c puts the script's own dir in front. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    if (dir)
        snprintf(buf, sizeof buf, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    else
        snprintf(buf, sizeof buf, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "path");
    /* lua-cjson from Debian lives in the multiarch Lua 5.1 dir */
    lua_getfield(L, -1, "cpath");
    snprintf(buf, sizeof buf, "%s;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/lib/aarch64-linux-gnu/lua/5.1/?.so",
             lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    rt_sched_init(L);

    lua_newtable(L);                   /* jet */
    jl_inject_core(L);
    jl_inject_timer(L);
    jl_inject_msg(L);
    jl_inject_conn(L);                 /* the connection class, then its methods from: */
    jl_inject_publish(L);
    jl_inject_sub(L);
    jl_inject_connect(L);
    jl_inject_process(L);
    jl_inject_pubasync(L);
    jl_inject_pull(L);
    jl_inject_metrics(L);
    jl_inject_reload(L);
    /* the parts written in Lua load on first use: jet.retry, jet.fail, jet.idempotent, jet.pipeline,
     * jet.micro */
    if (luaL_loadbuffer(L, lazy_src, sizeof lazy_src - 1, "=jetlua.lazy") != 0)
        rt_error("jetlua module: %s", lua_tostring(L, -1));
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        rt_error("jetlua module: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "jetlua.module");

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, open_jetlua);
    lua_setfield(L, -2, "jetlua");
    lua_pop(L, 2);
}
