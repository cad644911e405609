/*
 * jl.h - the helpers every bindings file uses (jl_check.c, jl_result.c).
 *
 * One Lua-facing area per bindings file; each exports one injector that
 * jl_open.c, the module's registry, calls.
 *
 * Error split (see README "Errors"): misuse raises a Lua error naming the
 * function and the argument; I/O outcomes return nil, "code", "detail".
 */
#ifndef JETLUA_JL_H
#define JETLUA_JL_H

#include <lua.h>
#include <lauxlib.h>
#include <nats/nats.h>
#include <stddef.h>

#include "rt.h"
#include "rt_sched.h"

/* Raise "<fname>: bad argument '<arg>': <message>". Never returns (the
 * int return type lets a C function end with `return jl_argerror(...)`). */
int jl_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Raise a misuse error, prefixed with the script's "file:line: ": the first
 * Lua frame that is not one of jetlua's own Lua files (bindings/lua/jetlua,
 * the scheduler's trampolines), so an error raised through a jetlua wrapper
 * (reload.lua's nc:subscribe, js.lua's calls) still points at the caller.
 * Never returns. jl_argerror and jl_check_keys use it. */
int jl_error(lua_State *L, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

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

/* Control-line limits: raise "<fname>: bad argument '<arg>': ..." when a
 * PUB/HPUB line of these parts (hdr: 1 if headers are sent) or a SUB line
 * would pass the server's max_control_line (the server would close the
 * connection for good: -ERR 'Maximum Control Line Exceeded'). */
void jl_check_pub_line(lua_State *L, const char *fname, const char *arg, size_t subj, size_t reply,
                       int hdr, size_t data_len);
void jl_check_sub_line(lua_State *L, const char *fname, size_t subj, size_t queue);

/* Metatable helpers: create (or fetch) the metatable `name` with methods. */
void jl_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);

/* ---- results (jl_result.c) ---- */

/* Push nil, code, detail; returns 3 (for `return jl_fail(...)`). */
int jl_fail(lua_State *L, const char *code, const char *detail);

/* The stable code of a cnats status: "timeout", "closed", "no_responders",
 * "permission_denied", ... ("nats_error" for the rest). */
const char *jl_status_code(natsStatus s);
/* cnats' last error text on this thread, without its "(file.c:N): "
 * prefix; "" when none. */
const char *jl_last_error(void);
/* Push a status as (nil, code, "<what>: detail"); returns 3. */
int jl_push_status(lua_State *L, natsStatus s, const char *what);

#endif
