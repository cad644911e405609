/*
 * rt_metrics.c - the metrics registry (see rt_metrics.h).
 */
#include "rt_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct family {
    char          *name, *help;
    int            type;
    double        *bounds;
    int            nbounds;
    rt_series     *series;
    struct family *next;
} family;

static family *families;   /* in registration order, for a stable output */
static family *families_tail;

static const double default_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *ident_invalid(const char *s, int colon_ok)
{
    if (!s || !*s)
        return "must not be empty";
    for (const char *p = s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                 (colon_ok && *p == ':') || (p > s && *p >= '0' && *p <= '9');
        if (!ok)
            return colon_ok ? "letters, digits, '_' and ':' only, not starting with a digit"
                            : "letters, digits and '_' only, not starting with a digit";
    }
    return NULL;
}

const char *rt_metric_name_invalid(const char *name) { return ident_invalid(name, 1); }

const char *rt_metric_label_invalid(const char *name)
{
    if (name && strncmp(name, "__", 2) == 0)
        return "names starting with '__' are reserved";
    return ident_invalid(name, 0);
}

void rt_metric_labels(char *out, size_t cap, const char *const *names, const char *const *values, int n)
{
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < n && k + 8 < cap; i++) {
        k += (size_t)snprintf(out + k, cap - k, "%s%s=\"", i ? "," : "", names[i]);
        for (const char *v = values[i]; *v && k + 4 < cap; v++) {
            if (*v == '\\' || *v == '"') {
                out[k++] = '\\';
                out[k++] = *v;
            } else if (*v == '\n') {
                out[k++] = '\\';
                out[k++] = 'n';
            } else {
                out[k++] = *v;
            }
        }
        if (k + 2 < cap)
            out[k++] = '"';
        out[k] = '\0';
    }
}

static family *find_family(const char *name)
{
    for (family *f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

rt_series *rt_metric(const char *name, int type, const char *help, const char *labels,
                     const double *bounds, int nbounds, const char **err)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    static char why[160];
    family *f = find_family(name);
    rt_series *s;

    if (f && f->type != type) {
        snprintf(why, sizeof why, "'%s' is already a %s", name, types[f->type]);
        *err = why;
        return NULL;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = type;
        if (type == RT_HISTOGRAM) {
            if (!bounds || nbounds <= 0) {
                bounds = default_bounds;
                nbounds = (int)(sizeof default_bounds / sizeof *default_bounds);
            }
            f->bounds = malloc((size_t)nbounds * sizeof *f->bounds);
            memcpy(f->bounds, bounds, (size_t)nbounds * sizeof *f->bounds);
            f->nbounds = nbounds;
        }
        if (families_tail)
            families_tail->next = f;
        else
            families = f;
        families_tail = f;
    } else if (help && *help && !*f->help) {
        free(f->help);
        f->help = strdup(help);
    }
    for (s = f->series; s; s = s->next)
        if (strcmp(s->labels, labels ? labels : "") == 0)
            return s;
    s = calloc(1, sizeof *s);
    s->labels = strdup(labels ? labels : "");
    if (type == RT_HISTOGRAM) {
        s->bounds = f->bounds;
        s->nbounds = f->nbounds;
        s->buckets = calloc((size_t)f->nbounds, sizeof *s->buckets);
    }
    s->next = f->series;
    f->series = s;
    return s;
}

rt_series *rt_metric_simple(const char *name, int type, const char *help)
{
    const char *err = NULL;
    return rt_metric(name, type, help, "", NULL, 0, &err);
}

void rt_metric_add(rt_series *s, double v) { if (s) s->value += v; }
void rt_metric_set(rt_series *s, double v) { if (s) s->value = v; }

void rt_metric_observe(rt_series *s, double v)
{
    if (!s)
        return;
    s->value += v;
    s->count++;
    for (int i = 0; i < s->nbounds; i++)
        if (v <= s->bounds[i]) {
            s->buckets[i]++;
            break;
        }
}

typedef struct { char *p; size_t n, cap; } buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        int w;
        va_start(ap, fmt);
        w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w >= 0 && (size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(w > 0 ? w : 0) + 64;
        b->p = realloc(b->p, b->cap);
    }
}

static void put_value(buf *b, double v)
{
    if (v == (double)(int64_t)v && v < 1e15 && v > -1e15)
        put(b, "%lld\n", (long long)v);
    else
        put(b, "%.17g\n", v);
}

char *rt_metrics_render(size_t *len)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    buf b = {malloc(4096), 0, 4096};
    b.p[0] = '\0';
    for (family *f = families; f; f = f->next) {
        if (*f->help)
            put(&b, "# HELP %s %s\n", f->name, f->help);
        put(&b, "# TYPE %s %s\n", f->name, types[f->type]);
        for (rt_series *s = f->series; s; s = s->next) {
            const char *l = s->labels;
            if (f->type != RT_HISTOGRAM) {
                put(&b, *l ? "%s{%s} " : "%s%s ", f->name, l);
                put_value(&b, s->value);
                continue;
            }
            uint64_t cum = 0;
            for (int i = 0; i < f->nbounds; i++) {
                cum += s->buckets[i];
                put(&b, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, l, *l ? "," : "", f->bounds[i],
                    (unsigned long long)cum);
            }
            put(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, l, *l ? "," : "",
                (unsigned long long)s->count);
            put(&b, *l ? "%s_sum{%s} " : "%s_sum%s ", f->name, l);
            put_value(&b, s->value);
            put(&b, *l ? "%s_count{%s} %llu\n" : "%s_count%s %llu\n", f->name, l, (unsigned long long)s->count);
        }
    }
    *len = b.n;
    return b.p;
}
