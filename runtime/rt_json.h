/*
 * rt_json.h - read one value out of a JSON text by a dotted path of object
 * keys ("config.max_batch", "error.err_code"), without building a tree.
 *
 * Enough for the few numbers and strings the C engines read from JetStream
 * API replies and advisories; the Lua side uses a real JSON library. Keys
 * are compared as raw bytes (a key written with escapes does not match).
 * Nesting deeper than 64 levels, or text that is not JSON, is "not found".
 */
#ifndef JETLUA_RT_JSON_H
#define JETLUA_RT_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Find the value at path: 0 and *val, *vlen point at its raw text (a string
 * includes its quotes), or -1. */
int rt_json_get(const char *js, size_t len, const char *path, const char **val, size_t *vlen);

/* The number at path, truncated to an integer: 0, or -1 (missing, or not a
 * number). */
int rt_json_int(const char *js, size_t len, const char *path, int64_t *out);

/* The string at path, unescaped into buf (NUL-terminated, cut to cap - 1
 * bytes; \uXXXX outside ASCII becomes '?'): 0, or -1 (missing, or not a
 * string). */
int rt_json_str(const char *js, size_t len, const char *path, char *buf, size_t cap);

/* ---- the scanner itself, for one-pass readers of a known shape (the
 * PubAck parser, rt_jsack.c) ---- */

typedef struct rt_json_cur {
    const char *p, *end;
} rt_json_cur;

/* Skip blanks. */
void rt_json_ws(rt_json_cur *c);
/* At a '"': move past the closing quote; the raw contents are [*s, *s + *n)
 * (s may be NULL); *esc (may be NULL) says whether they hold a backslash.
 * 0, or -1 (not at a string, or unterminated). */
int rt_json_string(rt_json_cur *c, const char **s, size_t *n, int *esc);
/* Skip one value (leading blanks allowed): 0, or -1 (not JSON). */
int rt_json_skip(rt_json_cur *c);

#endif
