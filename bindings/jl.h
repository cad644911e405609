/*
 * jl.h - shared helpers for the Lua bindings (one Lua-facing area per file).
 *
 * Every binding file exports one jl_inject_<area>(L) that adds its functions
 * to the `jet` table on top of the stack.
 *
 * Error split (see README "Errors"): misuse raises a Lua error naming the
 * function and the argument; I/O outcomes return nil, "code", "detail".
 */
#ifndef JETLUA_JL_H
#define JETLUA_JL_H

#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>

#include "rt.h"
#include "rt_sched.h"

/* Raise "<fname>: bad argument '<arg>': <message>". Never returns. */
int jl_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Raise a misuse error, prefixed with the script's "file:line: ": the first
 * Lua frame that is not one of jetlua's own Lua files (bindings/lua/jetlua,
 * the scheduler's trampolines), so an error raised through a jetlua wrapper
 * (reload.lua's nc:subscribe, js.lua's calls) still points at the caller.
 * Never returns. jl_argerror and jl_check_keys use it. */
int jl_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Remember where jetlua's own Lua files live ("<dir>/jetlua/"), for jl_error. */
void jl_set_lua_dir(const char *dir);

/* luaL_typename, but an absent argument reads "nil" (as a Lua user sees it). */
const char *jl_typename(lua_State *L, int idx);

/* Argument checkers: raise a jl_argerror naming fname/arg on a wrong type. */
const char *jl_check_string(lua_State *L, int idx, const char *fname, const char *arg, size_t *len);
double      jl_check_number(lua_State *L, int idx, const char *fname, const char *arg);
void        jl_check_function(lua_State *L, int idx, const char *fname, const char *arg);
/* Optional table argument: returns 0 if nil/none, 1 if a table, raises otherwise. */
int         jl_opt_table(lua_State *L, int idx, const char *fname, const char *arg);

/* Raise if the table at idx has a key not in allowed (NULL-terminated):
 * "<fname>: unknown option '<key>'". A typo must never be ignored. */
void jl_check_keys(lua_State *L, int idx, const char *fname, const char *const allowed[]);

/* Field readers for option tables at idx (absolute index). Return the
 * default when the field is nil; raise naming "<field>" on a wrong type. */
const char *jl_field_string(lua_State *L, int idx, const char *field, const char *fname, const char *def);
double      jl_field_number(lua_State *L, int idx, const char *field, const char *fname, double def);
/* Same, naming the field `label` in errors (for nested options: "tls.ca"). */
const char *jl_field_string_as(lua_State *L, int idx, const char *field, const char *label,
                               const char *fname, const char *def);
double      jl_field_number_as(lua_State *L, int idx, const char *field, const char *label,
                               const char *fname, double def);
int         jl_field_bool(lua_State *L, int idx, const char *field, const char *fname, int def);

/* Subjects. Return NULL when valid, else a short reason. */
const char *jl_subject_invalid(const char *s, size_t len, int wildcards_ok);
/* Raise "<fname>: bad argument 'subject': invalid subject 'x' (reason)". */
const char *jl_check_subject(lua_State *L, int idx, const char *fname, int wildcards_ok, size_t *len);

/* Push nil, code, detail; returns 3 (for `return jl_fail(...)`). */
int jl_fail(lua_State *L, const char *code, const char *detail);

/* Metatable helpers: create (or fetch) the metatable `name` with methods. */
void jl_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);

/* Area injectors: each adds its functions to the table at the top of the stack. */
void jl_inject_core(lua_State *L);     /* ljet.c: log, now, exit, spawn, json */
void jl_inject_timer(lua_State *L);    /* ltimer.c: sleep, timer, every */
void jl_inject_conn(lua_State *L);     /* lconn.c: connect, pub/sub, request */
void jl_inject_msg(lua_State *L);      /* lmsg.c: message objects */
void jl_inject_process(lua_State *L);
void jl_inject_pubasync(lua_State *L);
void jl_inject_pull(lua_State *L);      /* lpull.c: the engine of js:consume/messages/fetch */
void jl_inject_metrics(lua_State *L);
void jl_inject_reload(lua_State *L);   /* lreload.c: --watch and SIGHUP for jetlua/reload.lua */  /* lmetrics.c: jet.metrics */ /* ljs_publish.c: the engine of js:publish_async */  /* lprocess.c: jet.process for tools and tests */

/* Open the `jetlua` module into L (package.preload + paths). */
void jl_open(lua_State *L);

#endif
