/*
 * rt_promtext.c - parse, merge and render the Prometheus text format (see
 * rt_promtext.h).
 */
#include "rt_promtext.h"
#include "rt_metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    char *name;
    char *labels; /* the text between the braces, "" when none */
    double value;
    uint64_t hash;
    struct sample *next;  /* in its family, in order */
    struct sample *hnext; /* hash chain */
} sample;

typedef struct fam {
    char *name;
    char *help; /* as written: already escaped */
    int type;
    sample *first, *last;
    struct fam *next;
} fam;

struct rt_prom {
    fam *first, *last;
    sample **tab; /* chained hash of samples by (name, labels) */
    size_t cap, n;
};

static const char *const type_names[] = {"untyped", "counter", "gauge", "histogram", "summary"};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort(); /* out of memory while merging metrics: nothing sensible to serve */
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static uint64_t hash_of(const char *name, const char *labels)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

rt_prom *rt_prom_new(void)
{
    rt_prom *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->cap = 64;
    p->tab = calloc(p->cap, sizeof *p->tab);
    if (!p->tab)
        abort();
    return p;
}

static void free_fam(fam *f)
{
    for (sample *s = f->first, *next; s; s = next) {
        next = s->next;
        free(s->name);
        free(s->labels);
        free(s);
    }
    free(f->name);
    free(f->help);
    free(f);
}

void rt_prom_free(rt_prom *p)
{
    if (!p)
        return;
    for (fam *f = p->first, *next; f; f = next) {
        next = f->next;
        free_fam(f);
    }
    free(p->tab);
    free(p);
}

static fam *find_fam(const rt_prom *p, const char *name)
{
    for (fam *f = p->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static fam *add_fam(rt_prom *p, const char *name, size_t len, int type)
{
    fam *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->name = xstrndup(name, len);
    f->help = xstrndup("", 0);
    f->type = type;
    if (p->last)
        p->last->next = f;
    else
        p->first = f;
    p->last = f;
    return f;
}

static sample *find_sample(const rt_prom *p, const char *name, const char *labels, uint64_t h)
{
    for (sample *s = p->tab[h & (p->cap - 1)]; s; s = s->hnext)
        if (s->hash == h && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s;
    return NULL;
}

static void grow_tab(rt_prom *p)
{
    size_t cap = p->cap * 2;
    sample **tab = calloc(cap, sizeof *tab);
    if (!tab)
        abort();
    for (size_t i = 0; i < p->cap; i++)
        for (sample *s = p->tab[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = tab[s->hash & (cap - 1)];
            tab[s->hash & (cap - 1)] = s;
        }
    free(p->tab);
    p->tab = tab;
    p->cap = cap;
}

/* Sum into the sample (name, labels) of family f, made at the family's end
 * when new. labels is taken over (freed when not kept). */
static void put_sample(rt_prom *p, fam *f, const char *name, char *labels, double v)
{
    uint64_t h = hash_of(name, labels);
    sample *s = find_sample(p, name, labels, h);
    if (s) {
        s->value += v;
        free(labels);
        return;
    }
    if (p->n + 1 > p->cap / 4 * 3)
        grow_tab(p);
    s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->name = xstrndup(name, strlen(name));
    s->labels = labels;
    s->value = v;
    s->hash = h;
    s->hnext = p->tab[h & (p->cap - 1)];
    p->tab[h & (p->cap - 1)] = s;
    p->n++;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
}

/* ---- parsing ---- */

static int name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Length of the metric name at s (0: none). */
static size_t name_len(const char *s, const char *end)
{
    size_t n = 0;
    while (s + n < end && name_char(s[n], n == 0))
        n++;
    return n;
}

/* After '{': the label pairs up to the closing '}'. Returns a pointer just
 * past '}', or NULL when malformed; *lend is where the pairs end (a
 * trailing comma excluded). */
static const char *scan_labels(const char *s, const char *end, const char **lend)
{
    const char *p = s;
    *lend = s;
    while (p < end && *p != '}') {
        size_t n = name_len(p, end);
        if (n == 0 || p[n - 1] == ':')
            return NULL;
        for (size_t i = 0; i < n; i++)
            if (p[i] == ':')
                return NULL;
        p += n;
        if (p + 1 >= end || p[0] != '=' || p[1] != '"')
            return NULL;
        for (p += 2; p < end && *p != '"'; p++)
            if (*p == '\\' && ++p >= end)
                return NULL;
        if (p >= end)
            return NULL;
        p++; /* the closing quote */
        *lend = p;
        if (p < end && *p == ',')
            p++;
        else if (p < end && *p != '}')
            return NULL;
    }
    return p < end ? p + 1 : NULL;
}

static int suffix_of(const char *name, size_t len, const fam *f)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t fl = strlen(f->name);
    if (len == fl)
        return memcmp(name, f->name, len) == 0;
    if ((f->type != RT_PROM_HISTOGRAM && f->type != RT_PROM_SUMMARY) || len <= fl ||
        memcmp(name, f->name, fl) != 0)
        return 0;
    for (int i = 0; i < 3; i++)
        if (len - fl == strlen(suffixes[i]) && memcmp(name + fl, suffixes[i], len - fl) == 0)
            return 1;
    return 0;
}

static int parse_value(const char *s, const char *end, double *v)
{
    char num[64], *stop;
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    *v = strtod(num, &stop);
    return *stop == '\0' ? 0 : -1;
}

static int parse_line(rt_prom *p, fam **cur, const char *s, const char *end, const char **why)
{
    if (s == end)
        return 0;
    if (*s == '#') {
        int help = end - s > 7 && memcmp(s, "# HELP ", 7) == 0;
        int type = end - s > 7 && memcmp(s, "# TYPE ", 7) == 0;
        const char *n = s + 7;
        size_t nl;
        fam *f;
        if (!help && !type)
            return 0; /* a comment */
        nl = name_len(n, end);
        if (nl == 0 || (n + nl < end && n[nl] != ' ')) {
            *why = "a bad metric name";
            return -1;
        }
        {
            char *name = xstrndup(n, nl);
            f = find_fam(p, name);
            free(name);
        }
        if (!f)
            f = add_fam(p, n, nl, RT_PROM_UNTYPED);
        *cur = f;
        n += nl + (n + nl < end);
        if (help) {
            free(f->help);
            f->help = xstrndup(n, (size_t)(end - n));
            return 0;
        }
        for (int t = 0; t < 5; t++)
            if ((size_t)(end - n) == strlen(type_names[t]) &&
                memcmp(n, type_names[t], (size_t)(end - n)) == 0) {
                if (!f->first)
                    f->type = t;
                return 0;
            }
        *why = "an unknown type";
        return -1;
    }
    {
        size_t nl = name_len(s, end);
        const char *p2 = s + nl, *lstart = p2, *lend = p2, *vend;
        fam *f = *cur;
        char *name, *labels;
        double v;
        if (nl == 0) {
            *why = "no metric name";
            return -1;
        }
        if (p2 < end && *p2 == '{') {
            lstart = p2 + 1;
            if (!(p2 = scan_labels(lstart, end, &lend))) {
                *why = "malformed labels";
                return -1;
            }
        }
        if (p2 >= end || *p2 != ' ') {
            *why = "no value";
            return -1;
        }
        p2++;
        for (vend = p2; vend < end && *vend != ' '; vend++)
            ;
        if (parse_value(p2, vend, &v) != 0) {
            *why = "a bad value";
            return -1;
        }
        name = xstrndup(s, nl);
        if (!f || !suffix_of(s, nl, f)) {
            f = find_fam(p, name);
            if (!f)
                f = add_fam(p, s, nl, RT_PROM_UNTYPED);
        }
        labels = xstrndup(lstart, (size_t)(lend - lstart));
        put_sample(p, f, name, labels, v);
        free(name);
        return 0;
    }
}

int rt_prom_parse(rt_prom *p, const char *text, size_t len, char *err, size_t errlen)
{
    const char *s = text, *end = text + len;
    fam *cur = NULL;
    int line = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *why = NULL;
        const char *e = nl ? nl : end;
        line++;
        if (memchr(s, '\0', (size_t)(e - s))) {
            snprintf(err, errlen, "line %d: a NUL byte", line);
            return -1;
        }
        if (parse_line(p, &cur, s, e, &why) != 0) {
            snprintf(err, errlen, "line %d: %s: %.80s", line, why, s);
            return -1;
        }
        s = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- merging ---- */

/* Does the label text hold a label called name? */
static int has_label(const char *labels, const char *name)
{
    const char *p = labels;
    size_t n = strlen(name);
    while (*p) {
        size_t l = name_len(p, p + strlen(p));
        if (l == n && memcmp(p, name, n) == 0)
            return 1;
        p += l;
        if (p[0] != '=' || p[1] != '"')
            return 0;
        for (p += 2; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        if (*p)
            p++;
        if (*p == ',')
            p++;
    }
    return 0;
}

static char *with_label(const char *labels, const char *name, const char *value)
{
    size_t n = strlen(labels) + strlen(name) + strlen(value) * 2 + 16;
    char *out = xmalloc(n), *o;
    int dup = has_label(labels, name);
    o = out + snprintf(out, n, "%s%s%s%s=\"", labels, *labels ? "," : "", dup ? "jetlua_" : "", name);
    for (const char *v = value; *v; v++) { /* the text format's escapes */
        if (*v == '\\' || *v == '"')
            *o++ = '\\';
        if (*v == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            continue;
        }
        *o++ = *v;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static int summed(int type)
{
    return type == RT_PROM_COUNTER || type == RT_PROM_HISTOGRAM || type == RT_PROM_SUMMARY;
}

void rt_prom_add(rt_prom *dst, const rt_prom *src, const char *label_name, const char *label_value)
{
    if (!src)
        return;
    for (const fam *f = src->first; f; f = f->next) {
        fam *d;
        if (!summed(f->type) && !label_name)
            continue;
        d = find_fam(dst, f->name);
        if (!d)
            d = add_fam(dst, f->name, strlen(f->name), f->type);
        else if (d->type != f->type)
            continue;
        if (!*d->help && *f->help) {
            free(d->help);
            d->help = xstrndup(f->help, strlen(f->help));
        }
        for (const sample *s = f->first; s; s = s->next) {
            char *labels = summed(f->type) ? xstrndup(s->labels, strlen(s->labels))
                                           : with_label(s->labels, label_name, label_value);
            put_sample(dst, d, s->name, labels, s->value);
        }
    }
}

void rt_prom_drop(rt_prom *p, const char *name)
{
    fam *prev = NULL, *f;
    for (f = p->first; f && strcmp(f->name, name) != 0; f = f->next)
        prev = f;
    if (!f)
        return;
    for (sample *s = f->first; s; s = s->next) {
        sample **link = &p->tab[s->hash & (p->cap - 1)];
        while (*link != s)
            link = &(*link)->hnext;
        *link = s->hnext;
        p->n--;
    }
    if (prev)
        prev->next = f->next;
    else
        p->first = f->next;
    if (p->last == f)
        p->last = prev;
    free_fam(f);
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

char *rt_prom_render(const rt_prom *p, size_t *len)
{
    buf b = {NULL, 0, 0};
    put(&b, "", 0);
    for (const fam *f = p->first; f; f = f->next) {
        if (!f->first)
            continue;
        if (*f->help) {
            puts_(&b, "# HELP ");
            puts_(&b, f->name);
            puts_(&b, " ");
            puts_(&b, f->help);
            puts_(&b, "\n");
        }
        puts_(&b, "# TYPE ");
        puts_(&b, f->name);
        puts_(&b, " ");
        puts_(&b, type_names[f->type]);
        puts_(&b, "\n");
        for (const sample *s = f->first; s; s = s->next) {
            char num[40];
            puts_(&b, s->name);
            if (*s->labels) {
                puts_(&b, "{");
                puts_(&b, s->labels);
                puts_(&b, "}");
            }
            rt_metric_format_value(num, sizeof num, s->value);
            puts_(&b, " ");
            puts_(&b, num);
            puts_(&b, "\n");
        }
    }
    *len = b.n;
    return b.p;
}

int rt_prom_value(const rt_prom *p, const char *series, double *v)
{
    const char *brace = strchr(series, '{');
    char *name, *labels;
    sample *s;
    if (brace) {
        size_t l = strlen(brace);
        if (l < 2 || brace[l - 1] != '}')
            return 0;
        name = xstrndup(series, (size_t)(brace - series));
        labels = xstrndup(brace + 1, l - 2);
    } else {
        name = xstrndup(series, strlen(series));
        labels = xstrndup("", 0);
    }
    s = find_sample(p, name, labels, hash_of(name, labels));
    free(name);
    free(labels);
    if (s)
        *v = s->value;
    return s != NULL;
}

int rt_prom_type(const rt_prom *p, const char *name)
{
    const fam *f = find_fam(p, name);
    return f ? f->type : -1;
}
