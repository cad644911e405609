/*
 * lmetrics.c - jet.metrics: script metrics next to jetlua's own, served by
 * --metrics HOST:PORT in the Prometheus text format.
 *
 *   local c = jet.metrics.counter("orders_total", {kind = "new"}, "orders seen")
 *   c:inc()            c:inc(3)          c:value()
 *   local g = jet.metrics.gauge("queue_depth")          g:set(7)  g:inc()  g:dec(2)
 *   local h = jet.metrics.histogram("work_seconds", nil, {buckets = {0.01, 0.1, 1}, help = "..."})
 *   h:observe(0.03)    h:count()         h:sum()
 *
 * The same name and labels always give the same series.
 */
#include "jl.h"
#include "rt_mem.h"
#include "rt_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_MT "jetlua.metric"

typedef struct { rt_series *s; int type; } series_ud;

static const char *const fnames[] = {"jet.metrics.counter", "jet.metrics.gauge", "jet.metrics.histogram"};

#define MAX_LABELS 16
#define MAX_LABELS_LEN 16384   /* rendered; a bound against mistakes, never a silent cut */

/* A string argument that must not hide a NUL byte (the text format and our
 * C strings would disagree about where it ends). */
static const char *check_text(lua_State *L, int idx, const char *fname, const char *arg, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (strlen(s) != len)
        jl_argerror(L, fname, arg, "%s must not contain a NUL byte", what);
    return s;
}

/* labels table -> rendered (malloc'd, caller frees), sorted by name so
 * {a=,b=} and {b=,a=} match. Names and string values stay anchored by the
 * table; numbers are formatted into numbuf. */
static char *render_labels(lua_State *L, int idx, const char *fname, int type)
{
    const char *names[MAX_LABELS], *values[MAX_LABELS];
    char numbuf[MAX_LABELS][40];
    char *out;
    int n = 0;
    if (lua_isnoneornil(L, idx))
        return rt_xstrdup("");
    if (lua_type(L, idx) != LUA_TTABLE)
        jl_argerror(L, fname, "labels", "table expected, got %s", jl_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *why;
        if (lua_type(L, -2) != LUA_TSTRING)
            jl_argerror(L, fname, "labels", "label names must be strings");
        if (n == MAX_LABELS)
            jl_argerror(L, fname, "labels", "at most %d labels", MAX_LABELS);
        names[n] = check_text(L, -2, fname, "labels", "a label name");
        if ((why = rt_metric_label_invalid(names[n])) != NULL)
            jl_argerror(L, fname, "labels", "invalid label name '%s' (%s)", names[n], why);
        if (type == RT_HISTOGRAM && strcmp(names[n], "le") == 0)
            jl_argerror(L, fname, "labels", "the label 'le' is reserved for histogram buckets");
        if (lua_type(L, -1) == LUA_TSTRING) {
            values[n] = check_text(L, -1, fname, "labels", "a label value");
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            rt_metric_format_value(numbuf[n], sizeof numbuf[n], lua_tonumber(L, -1));
            values[n] = numbuf[n];
        } else {
            jl_argerror(L, fname, "labels", "value of '%s' must be a string or number, got %s", names[n],
                        luaL_typename(L, -1));
        }
        n++;
        lua_pop(L, 1);
    }
    for (int i = 1; i < n; i++)              /* insertion sort by name */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j]; names[j] = names[j - 1]; names[j - 1] = t;
            t = values[j]; values[j] = values[j - 1]; values[j - 1] = t;
        }
    out = rt_metric_labels_dup(names, values, n);
    if (strlen(out) > MAX_LABELS_LEN) {
        size_t len = strlen(out);
        free(out);
        jl_argerror(L, fname, "labels", "the label set is too long (%zu bytes rendered, at most %d)", len,
                    MAX_LABELS_LEN);
    }
    return out;
}

static int make(lua_State *L, int type)
{
    const char *fname = fnames[type];
    const char *name = jl_check_string(L, 1, fname, "name", NULL);
    const char *help = NULL, *why, *err = NULL;
    char *labels;
    double bounds[64];
    int nb = 0;
    rt_series *s;
    series_ud *u;

    check_text(L, 1, fname, "name", "a metric name");
    if ((why = rt_metric_name_invalid(name)) != NULL)
        jl_argerror(L, fname, "name", "invalid metric name '%s' (%s)", name, why);
    lua_settop(L, 3);
    if (type == RT_HISTOGRAM && lua_istable(L, 3)) {
        static const char *const keys[] = {"help", "buckets", NULL};
        jl_check_keys(L, 3, fname, keys);
        help = jl_field_string(L, 3, "help", fname, NULL);
        lua_getfield(L, 3, "buckets");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1))
                jl_argerror(L, fname, "buckets", "list of numbers expected, got %s", luaL_typename(L, -1));
            nb = (int)lua_objlen(L, -1);
            if (nb < 1 || nb > 64)
                jl_argerror(L, fname, "buckets", "1 to 64 upper bounds expected, got %d", nb);
            for (int i = 0; i < nb; i++) {
                lua_rawgeti(L, -1, i + 1);
                if (!lua_isnumber(L, -1))
                    jl_argerror(L, fname, "buckets", "bound %d is not a number", i + 1);
                bounds[i] = lua_tonumber(L, -1);
                lua_pop(L, 1);
                if (!isfinite(bounds[i]))
                    jl_argerror(L, fname, "buckets", "bound %d must be finite (+Inf is always the last bucket)",
                                i + 1);
                if (i > 0 && !(bounds[i] > bounds[i - 1]))
                    jl_argerror(L, fname, "buckets", "bounds must be ascending");
            }
        }
        lua_pop(L, 1);
    } else if (!lua_isnoneornil(L, 3)) {
        jl_check_string(L, 3, fname, "help", NULL);
        help = check_text(L, 3, fname, "help", "the help text");
    }
    if (help && strlen(help) > 4096)
        jl_argerror(L, fname, "help", "at most 4096 bytes");
    labels = render_labels(L, 2, fname, type);
    s = rt_metric(name, type, help, labels, bounds, nb, &err);
    free(labels);
    if (!s)
        return luaL_error(L, "%s: %s", fname, err);
    u = lua_newuserdata(L, sizeof *u);
    u->s = s;
    u->type = type;
    luaL_getmetatable(L, SERIES_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int m_counter(lua_State *L)   { return make(L, RT_COUNTER); }
static int m_gauge(lua_State *L)     { return make(L, RT_GAUGE); }
static int m_histogram(lua_State *L) { return make(L, RT_HISTOGRAM); }

static series_ud *check(lua_State *L, const char *fname, int want)
{
    series_ud *u = luaL_testudata(L, 1, SERIES_MT);
    if (!u)
        jl_argerror(L, fname, "self", "metric expected, got %s", jl_typename(L, 1));
    if (want >= 0 && u->type != want)
        luaL_error(L, "%s: not available on a %s", fname,
                   u->type == RT_COUNTER ? "counter" : u->type == RT_GAUGE ? "gauge" : "histogram");
    return u;
}

static double opt_amount(lua_State *L, const char *fname)
{
    return lua_isnoneornil(L, 2) ? 1.0 : jl_check_number(L, 2, fname, "n");
}

static int s_inc(lua_State *L)
{
    series_ud *u = check(L, "metric:inc", -1);
    double n = opt_amount(L, "metric:inc");
    if (u->type == RT_HISTOGRAM)
        return luaL_error(L, "metric:inc: not available on a histogram (use :observe)");
    if (u->type == RT_COUNTER && n < 0)
        jl_argerror(L, "metric:inc", "n", "a counter only goes up, got %g", n);
    rt_metric_add(u->s, n);
    return 0;
}

static int s_dec(lua_State *L)
{
    series_ud *u = check(L, "metric:dec", RT_GAUGE);
    rt_metric_add(u->s, -opt_amount(L, "metric:dec"));
    return 0;
}

static int s_set(lua_State *L)
{
    series_ud *u = check(L, "metric:set", RT_GAUGE);
    rt_metric_set(u->s, jl_check_number(L, 2, "metric:set", "value"));
    return 0;
}

static int s_observe(lua_State *L)
{
    series_ud *u = check(L, "metric:observe", RT_HISTOGRAM);
    rt_metric_observe(u->s, jl_check_number(L, 2, "metric:observe", "value"));
    return 0;
}

static int s_value(lua_State *L)
{
    series_ud *u = check(L, "metric:value", -1);
    lua_pushnumber(L, u->s->value);
    return 1;
}

static int s_count(lua_State *L)
{
    series_ud *u = check(L, "metric:count", RT_HISTOGRAM);
    lua_pushnumber(L, (lua_Number)u->s->count);
    return 1;
}

void jl_inject_metrics(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"inc", s_inc}, {"dec", s_dec}, {"set", s_set}, {"observe", s_observe},
        {"value", s_value}, {"sum", s_value}, {"count", s_count}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"counter", m_counter}, {"gauge", m_gauge}, {"histogram", m_histogram}, {NULL, NULL}};
    jl_newclass(L, SERIES_MT, methods, NULL);
    lua_newtable(L);
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "metrics");
}
