/*
 * rt_metrics.c - the metrics registry and its text rendering (see
 * rt_metrics.h and https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
#include "rt_metrics.h"
#include "rt_mem.h"

#include <math.h>
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

#define MAX_COLLECTORS 8
static void (*collectors[MAX_COLLECTORS])(void);
static int ncollectors;

/* ---- a growing text buffer ---- */

typedef struct { char *p; size_t n, cap; } buf;

static void grow(buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return;
    while (b->n + more + 1 > b->cap)
        b->cap = b->cap ? b->cap * 2 : 256;
    b->p = rt_xrealloc(b->p, b->cap);
}

static void put_mem(buf *b, const char *s, size_t n)
{
    grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_str(buf *b, const char *s) { put_mem(b, s, strlen(s)); }

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    int w;
    va_start(ap, fmt);
    w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w <= 0)
        return;
    grow(b, (size_t)w);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)w + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)w;
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Append s escaped: '\' and newline always, '"' too in label values;
 * every byte that does not start a valid UTF-8 sequence becomes U+FFFD. */
static void put_escaped(buf *b, const char *s, int quotes)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = utf8_len(p);
        if (n == 0) {
            put_mem(b, "\xEF\xBF\xBD", 3);
            p++;
        } else if (*p == '\\') {
            put_mem(b, "\\\\", 2);
            p++;
        } else if (*p == '\n') {
            put_mem(b, "\\n", 2);
            p++;
        } else if (*p == '"' && quotes) {
            put_mem(b, "\\\"", 2);
            p++;
        } else {
            put_mem(b, (const char *)p, (size_t)n);
            p += n;
        }
    }
}

/* ---- names ---- */

static const char *ident_invalid(const char *s, int colon_ok)
{
    if (!s || !*s)
        return "must not be empty";
    for (const char *p = s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                 (colon_ok && *p == ':') || (p > s && *p >= '0' && *p <= '9');
        if (!ok)
            return colon_ok ? "it must match [a-zA-Z_:][a-zA-Z0-9_:]*"
                            : "it must match [a-zA-Z_][a-zA-Z0-9_]*";
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

char *rt_metric_labels_dup(const char *const *names, const char *const *values, int n)
{
    buf b = {NULL, 0, 0};
    grow(&b, 64);
    b.p[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            put_mem(&b, ",", 1);
        put_str(&b, names[i]);
        put_mem(&b, "=\"", 2);
        put_escaped(&b, values[i], 1);
        put_mem(&b, "\"", 1);
    }
    return b.p;
}

size_t rt_metric_labels(char *out, size_t cap, const char *const *names, const char *const *values, int n)
{
    char *s = rt_metric_labels_dup(names, values, n);
    size_t len = strlen(s);
    if (cap > 0) {
        if (len < cap)
            memcpy(out, s, len + 1);
        else
            out[0] = '\0';
    }
    free(s);
    return len;
}

/* ---- the registry ---- */

static family *find_family(const char *name)
{
    for (family *f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Is `name` one of histogram h's own series names (h_bucket, h_sum, h_count)? */
static int derived_from(const char *name, const char *h)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t hn = strlen(h);
    if (strncmp(name, h, hn) != 0)
        return 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(name + hn, suffixes[i]) == 0)
            return 1;
    return 0;
}

static const char *collision(const char *name, int type)
{
    static char why[300];
    for (family *f = families; f; f = f->next) {
        if (f->type == RT_HISTOGRAM && derived_from(name, f->name)) {
            snprintf(why, sizeof why, "'%.100s' is a series of the histogram '%.100s'", name, f->name);
            return why;
        }
        if (type == RT_HISTOGRAM && derived_from(f->name, name)) {
            snprintf(why, sizeof why, "the histogram '%.100s' would write the series '%.100s', which is "
                     "already a metric", name, f->name);
            return why;
        }
    }
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
        snprintf(why, sizeof why, "'%.100s' is already a %s", name, types[f->type]);
        *err = why;
        return NULL;
    }
    if (!f && (*err = collision(name, type)) != NULL)
        return NULL;
    if (!f) {
        f = rt_xcalloc(1, sizeof *f);
        f->name = rt_xstrdup(name);
        f->help = rt_xstrdup(help ? help : "");
        f->type = type;
        if (type == RT_HISTOGRAM) {
            if (!bounds || nbounds <= 0) {
                bounds = default_bounds;
                nbounds = (int)(sizeof default_bounds / sizeof *default_bounds);
            }
            f->bounds = rt_xmalloc((size_t)nbounds * sizeof *f->bounds);
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
        f->help = rt_xstrdup(help);
    }
    for (s = f->series; s; s = s->next)
        if (strcmp(s->labels, labels ? labels : "") == 0)
            return s;
    s = rt_xcalloc(1, sizeof *s);
    s->labels = rt_xstrdup(labels ? labels : "");
    if (type == RT_HISTOGRAM) {
        s->bounds = f->bounds;
        s->nbounds = f->nbounds;
        s->buckets = rt_xcalloc((size_t)f->nbounds, sizeof *s->buckets);
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

void rt_metrics_collector(void (*fn)(void))
{
    for (int i = 0; i < ncollectors; i++)
        if (collectors[i] == fn)
            return;
    if (ncollectors < MAX_COLLECTORS)
        collectors[ncollectors++] = fn;
}

/* ---- rendering ---- */

void rt_metric_format_value(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");        /* printf says "nan" or "-nan": Prometheus rejects both */
    } else if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    } else if (v < 1e15 && v > -1e15 && v == (double)(int64_t)v) {
        snprintf(out, cap, "%lld", (long long)v);
    } else {
        /* the shortest of %.15g..%.17g that reads back as the same double */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, cap, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static void put_value(buf *b, double v)
{
    char num[40];
    rt_metric_format_value(num, sizeof num, v);
    put_str(b, num);
    put_mem(b, "\n", 1);
}

/* name{labels[,extra]} -- braces only when there is a label */
static void put_series_name(buf *b, const char *name, const char *suffix, const char *labels,
                            const char *extra)
{
    put_str(b, name);
    put_str(b, suffix);
    if (*labels || extra) {
        put_mem(b, "{", 1);
        put_str(b, labels);
        if (extra) {
            if (*labels)
                put_mem(b, ",", 1);
            put_str(b, extra);
        }
        put_mem(b, "}", 1);
    }
    put_mem(b, " ", 1);
}

char *rt_metrics_render(size_t *len)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    buf b = {NULL, 0, 0};
    grow(&b, 4096);
    b.p[0] = '\0';
    for (int i = 0; i < ncollectors; i++)
        collectors[i]();
    for (family *f = families; f; f = f->next) {
        if (*f->help) {
            put(&b, "# HELP %s ", f->name);
            put_escaped(&b, f->help, 0);
            put_mem(&b, "\n", 1);
        }
        put(&b, "# TYPE %s %s\n", f->name, types[f->type]);
        for (rt_series *s = f->series; s; s = s->next) {
            const char *l = s->labels;
            if (f->type != RT_HISTOGRAM) {
                put_series_name(&b, f->name, "", l, NULL);
                put_value(&b, s->value);
                continue;
            }
            uint64_t cum = 0;
            for (int k = 0; k < f->nbounds; k++) {
                char le[48], num[40];
                cum += s->buckets[k];
                rt_metric_format_value(num, sizeof num, f->bounds[k]);
                snprintf(le, sizeof le, "le=\"%s\"", num);
                put_series_name(&b, f->name, "_bucket", l, le);
                put(&b, "%llu\n", (unsigned long long)cum);
            }
            put_series_name(&b, f->name, "_bucket", l, "le=\"+Inf\"");
            put(&b, "%llu\n", (unsigned long long)s->count);
            put_series_name(&b, f->name, "_sum", l, NULL);
            put_value(&b, s->value);
            put_series_name(&b, f->name, "_count", l, NULL);
            put(&b, "%llu\n", (unsigned long long)s->count);
        }
    }
    *len = b.n;
    return b.p;
}
