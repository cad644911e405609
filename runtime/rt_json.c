/*
 * rt_json.c - dotted-path lookups in a JSON text (see rt_json.h).
 *
 * A small recursive scanner: it walks the members of an object, compares
 * each key with the next path segment, descends on a match and skips every
 * other value whole (strings with their escapes, nested objects/arrays).
 */
#include "rt_json.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef rt_json_cur cur;

static void ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

void rt_json_ws(rt_json_cur *c)
{
    ws(c);
}

/* At a '"': move past the closing quote; the contents are [*s, *s + *n);
 * *esc: whether they hold a backslash. */
static int string(cur *c, const char **s, size_t *n, int *esc)
{
    const char *q;
    int e = 0;
    if (c->p >= c->end || *c->p != '"')
        return -1;
    q = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            e = 1;
            c->p++;
        }
        c->p++;
    }
    if (esc)
        *esc = e;
    if (c->p >= c->end)
        return -1;
    if (s) {
        *s = q;
        *n = (size_t)(c->p - q);
    }
    c->p++;
    return 0;
}

static int skip(cur *c, int depth);

/* Skip the members of an object or the items of an array (at its opener). */
static int skip_container(cur *c, int depth)
{
    char close = *c->p == '{' ? '}' : ']';
    int obj = close == '}';
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (obj) {
            if (string(c, NULL, NULL, NULL) != 0)
                return -1;
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return -1;
            c->p++;
        }
        if (skip(c, depth + 1) != 0)
            return -1;
        ws(c);
        if (c->p >= c->end)
            return -1;
        if (*c->p == ',') {
            c->p++;
            ws(c);
            continue;
        }
        if (*c->p != close)
            return -1;
        c->p++;
        return 0;
    }
}

/* Skip one value (leading blanks allowed). */
static int skip(cur *c, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == '"')
        return string(c, NULL, NULL, NULL);
    if (*c->p == '{' || *c->p == '[')
        return skip_container(c, depth);
    /* a number, true, false or null: up to the next delimiter */
    {
        const char *q = c->p;
        while (c->p < c->end && !strchr(",}] \t\r\n", *c->p))
            c->p++;
        return c->p > q ? 0 : -1;
    }
}

int rt_json_string(rt_json_cur *c, const char **s, size_t *n, int *esc)
{
    return string(c, s, n, esc);
}

int rt_json_skip(rt_json_cur *c)
{
    return skip(c, 0);
}

int rt_json_get(const char *js, size_t len, const char *path, const char **val, size_t *vlen)
{
    cur c = {js, js + len};
    const char *seg = path;
    int depth = 0;

    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t seglen = dot ? (size_t)(dot - seg) : strlen(seg);
        ws(&c);
        if (c.p >= c.end || *c.p != '{' || ++depth > MAX_DEPTH)
            return -1;
        c.p++;
        ws(&c);
        if (c.p < c.end && *c.p == '}')
            return -1;
        for (;;) { /* to the key seg, or fail */
            const char *k;
            size_t kn;
            if (string(&c, &k, &kn, NULL) != 0)
                return -1;
            ws(&c);
            if (c.p >= c.end || *c.p != ':')
                return -1;
            c.p++;
            if (kn == seglen && memcmp(k, seg, kn) == 0)
                break;
            if (skip(&c, depth) != 0)
                return -1;
            ws(&c);
            if (c.p >= c.end || *c.p != ',')
                return -1;                 /* '}' (or junk): not in this object */
            c.p++;
            ws(&c);
        }
        if (!dot) {
            const char *start;
            ws(&c);
            start = c.p;
            if (skip(&c, depth) != 0)
                return -1;
            *val = start;
            *vlen = (size_t)(c.p - start);
            return 0;
        }
        seg = dot + 1;
    }
}

int rt_json_int(const char *js, size_t len, const char *path, int64_t *out)
{
    const char *v;
    size_t n;
    char buf[40], *e;
    double d;
    if (rt_json_get(js, len, path, &v, &n) != 0 || n == 0 || n >= sizeof buf)
        return -1;
    if (!(*v == '-' || (*v >= '0' && *v <= '9')))
        return -1;
    memcpy(buf, v, n);
    buf[n] = 0;
    if (!strpbrk(buf, ".eE")) {
        long long ll = strtoll(buf, &e, 10);
        if (*e)
            return -1;
        *out = ll;
        return 0;
    }
    d = strtod(buf, &e);
    if (*e || d != d || d > 9.2e18 || d < -9.2e18)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int rt_json_str(const char *js, size_t len, const char *path, char *buf, size_t cap)
{
    const char *v, *end;
    size_t n, o = 0;
    if (cap == 0 || rt_json_get(js, len, path, &v, &n) != 0 || n < 2 || *v != '"')
        return -1;
    end = v + n - 1;
    for (v++; v < end && o + 1 < cap; v++) {
        char ch = *v;
        if (ch == '\\' && v + 1 < end) {
            ch = *++v;
            switch (ch) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': {
                int cp = 0, ok = v + 4 < end;
                for (int i = 1; ok && i <= 4; i++) {
                    int h = hexval(v[i]);
                    ok = h >= 0;
                    cp = cp * 16 + h;
                }
                if (ok)
                    v += 4;
                ch = ok && cp > 0 && cp < 0x80 ? (char)cp : '?';
                break;
            }
            default: break;                   /* \" \\ \/ */
            }
        }
        buf[o++] = ch;
    }
    buf[o] = 0;
    return 0;
}
