/*
 * jl_check.c - what every bindings file uses to refuse misuse: errors that
 * name the script's line, argument and option checks, subjects and the
 * server's protocol-line limit, and metatables (classes).
 *
 * The module table (jet) and the list of bindings are in jl_open.c.
 */
#include "jl.h"
#include "rt_proto.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* "@<lua dir>/jetlua/": the chunk names of jetlua's own Lua files */
static char own_prefix[1024];

void jl_set_lua_dir(const char *dir)
{
    snprintf(own_prefix, sizeof own_prefix, "@%s/jetlua/", dir);
}

static int own_source(const char *src)
{
    return strncmp(src, "=jetlua.", 8) == 0 ||
           (own_prefix[0] && strncmp(src, own_prefix, strlen(own_prefix)) == 0);
}

/* Push "file:line: " of the first Lua frame (from the caller up) outside jetlua, or "". */
static void user_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar))
            break;
        if (ar.currentline > 0 && !own_source(ar.source)) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* LuaJIT's lua_error is not declared noreturn, but never returns: it
 * unwinds to the enclosing pcall/resume. abort() tells the compiler (and
 * cppcheck) so, and would stop a broken build rather than run on. */
int jl_error(lua_State *L, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    user_where(L);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    lua_error(L);
    /* cppcheck-suppress unreachableCode ; for compilers that do not know lua_error never returns */
    abort();
}

int jl_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jl_error(L, "%s: bad argument '%s': %s", fname, arg, msg);
}

const char *jl_typename(lua_State *L, int idx)
{
    return lua_isnone(L, idx) ? "nil" : luaL_typename(L, idx);
}

__attribute__((noreturn))
static void type_error(lua_State *L, int idx, const char *fname, const char *arg, const char *want)
{
    /* "no value" (argument absent) reads as nil to a Lua user */
    jl_argerror(L, fname, arg, "%s expected, got %s", want, jl_typename(L, idx));
}

const char *jl_check_string(lua_State *L, int idx, const char *fname, const char *arg, size_t *len)
{
    /* Numbers are not silently turned into strings: a subject or payload
     * given as a number is almost always a mistake in argument order. */
    if (lua_type(L, idx) != LUA_TSTRING)
        type_error(L, idx, fname, arg, "string");
    return lua_tolstring(L, idx, len);
}

double jl_check_number(lua_State *L, int idx, const char *fname, const char *arg)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        type_error(L, idx, fname, arg, "number");
    return lua_tonumber(L, idx);
}

void jl_check_function(lua_State *L, int idx, const char *fname, const char *arg)
{
    if (lua_type(L, idx) != LUA_TFUNCTION)
        type_error(L, idx, fname, arg, "function");
}

int jl_opt_table(lua_State *L, int idx, const char *fname, const char *arg)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNONE || t == LUA_TNIL)
        return 0;
    if (t != LUA_TTABLE)
        type_error(L, idx, fname, arg, "table");
    return 1;
}

void jl_check_keys(lua_State *L, int idx, const char *fname, const char *const allowed[])
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            for (int i = 0; allowed[i]; i++)
                if (strcmp(k, allowed[i]) == 0) {
                    ok = 1;
                    break;
                }
            if (!ok)
                jl_error(L, "%s: unknown option '%s'", fname, k);
        } else {
            jl_error(L, "%s: option keys must be strings, got a %s key",
                     fname, luaL_typename(L, -2));
        }
        lua_pop(L, 1);
    }
}

const char *jl_field_string(lua_State *L, int idx, const char *field, const char *fname, const char *def)
{
    return jl_field_string_as(L, idx, field, field, fname, def);
}

const char *jl_field_string_as(lua_State *L, int idx, const char *field, const char *label,
                               const char *fname, const char *def)
{
    const char *s;
    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        jl_argerror(L, fname, label, "string expected, got %s", luaL_typename(L, -1));
    s = lua_tostring(L, -1);
    lua_pop(L, 1);   /* the string stays alive: it is referenced by the table */
    return s;
}

double jl_field_number(lua_State *L, int idx, const char *field, const char *fname, double def)
{
    return jl_field_number_as(L, idx, field, field, fname, def);
}

double jl_field_number_as(lua_State *L, int idx, const char *field, const char *label,
                          const char *fname, double def)
{
    double v;
    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        jl_argerror(L, fname, label, "number expected, got %s", luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int jl_field_bool(lua_State *L, int idx, const char *field, const char *fname, int def)
{
    int v;
    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        jl_argerror(L, fname, field, "boolean expected, got %s", luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* NATS subject rules: non-empty dot-separated tokens, no whitespace or
 * control characters; `*` must be a whole token and `>` a whole last token,
 * and neither is allowed where the subject names one destination. */
const char *jl_subject_invalid(const char *s, size_t len, int wildcards_ok)
{
    size_t tok_start = 0;

    if (len == 0)
        return "empty subject";
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            size_t tl = i - tok_start;
            const char *t = s + tok_start;
            if (tl == 0)
                return "empty token";
            if (tl == 1 && (t[0] == '*' || t[0] == '>')) {
                if (!wildcards_ok)
                    return "wildcards are not allowed here";
                if (t[0] == '>' && i != len)
                    return "'>' must be the last token";
            } else {
                for (size_t j = 0; j < tl; j++)
                    if (t[j] == '*' || t[j] == '>')
                        return "a wildcard must be a whole token";
            }
            tok_start = i + 1;
            continue;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f)
            return "whitespace or control character";
    }
    return NULL;
}

const char *jl_check_subject(lua_State *L, int idx, const char *fname, int wildcards_ok, size_t *lenp)
{
    size_t len;
    const char *s = jl_check_string(L, idx, fname, "subject", &len);
    const char *why = jl_subject_invalid(s, len, wildcards_ok);
    if (why)
        jl_argerror(L, fname, "subject", "invalid subject '%s' (%s)", s, why);
    if (lenp)
        *lenp = len;
    return s;
}

/* ---- the server's protocol-line limit ---- */

void jl_check_pub_line(lua_State *L, const char *fname, const char *arg, size_t subj, size_t reply,
                       int hdr, size_t data_len)
{
    /* with headers the header block's size is not known yet: count its
     * digits as the most it can have (10), so the check is never short */
    size_t line = rt_proto_pub_line(subj, reply, hdr ? 1000000000u : 0, data_len);
    int is_reply = strcmp(arg, "reply") == 0;
    if (line <= RT_PROTO_MAX_CONTROL_LINE)
        return;
    jl_argerror(L, fname, arg, "a %s of %zu bytes makes the %s protocol line %zu bytes, over the server's "
                "max_control_line of %d (the server would close the connection)",
                is_reply ? "reply subject" : "subject", is_reply && reply ? reply : subj,
                hdr ? "HPUB" : "PUB", line, RT_PROTO_MAX_CONTROL_LINE);
}

void jl_check_sub_line(lua_State *L, const char *fname, size_t subj, size_t queue)
{
    size_t line = rt_proto_sub_line(subj, queue, 4294967295u);
    if (line <= RT_PROTO_MAX_CONTROL_LINE)
        return;
    jl_argerror(L, fname, queue > subj ? "queue" : "subject",
                "a subject of %zu bytes%s makes the SUB protocol line %zu bytes, over the server's "
                "max_control_line of %d (the server would close the connection)", subj,
                queue ? " with its queue name" : "", line, RT_PROTO_MAX_CONTROL_LINE);
}

/* ---- classes ---- */

void jl_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta)
{
    if (luaL_newmetatable(L, name)) {
        if (meta)
            luaL_register(L, NULL, meta);
        if (methods) {
            lua_newtable(L);
            luaL_register(L, NULL, methods);
            lua_setfield(L, -2, "__index");
        }
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}
