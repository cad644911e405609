/*
 * rt_log.c - one line per event on stderr, for people:
 *     2026-11-22T12:00:00.123Z INFO  text
 * or, with --log-format json, for machines:
 *     {"time":"2026-11-22T12:00:00.123Z","level":"info","msg":"text"}
 * Any thread may log; a line is written with one write() so lines never interleave.
 *
 * JSON lines are always valid JSON, whatever the message holds: bytes that are
 * not valid UTF-8 become U+FFFD, control characters are escaped, a message
 * that does not fit is cut between two characters and the object says
 * "truncated":true, and a Lua traceback ("\nstack traceback:\n...") goes into
 * its own "traceback" field. Text lines keep the message as it is (tracebacks
 * stay multi-line); one that does not fit ends with " [truncated: N bytes]".
 */
#include "rt_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int rt_log_level = RT_LOG_INFO;
int rt_log_json = 0;
const char *rt_log_prefix = NULL;

#define MSG_MAX  8192     /* bytes of a formatted message kept */
#define LINE_MAX 16384    /* bytes of one output line, newline included */

static const char *const level_names[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
static const char *const json_levels[] = { "debug", "info", "warn", "error" };
static const char tb_marker[] = "\nstack traceback:\n";

int rt_log_parse_level(const char *name)
{
    static const char *names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return RT_LOG_WARN;
    return -1;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when the byte at p
 * does not start one (stray continuation byte, overlong form, surrogate,
 * beyond U+10FFFF, or cut short by the end of the text). */
size_t rt_utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;          /* overlong */
        if (c == 0xED) hi = 0x9F;          /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;          /* overlong */
        if (c == 0xF4) hi = 0x8F;          /* > U+10FFFF */
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* The longest prefix of s[0..len) that does not end inside a character:
 * for text cut at an arbitrary byte. */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t i = len;
    /* step back over at most 3 continuation bytes to the last lead byte */
    while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0) {
        unsigned char c = (unsigned char)s[i - 1];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > 1 && len - (i - 1) < need)
            return i - 1;                   /* an incomplete last character */
    }
    return len;
}

/* Append s[0..len) to out (which holds *n bytes, capacity cap) as the body
 * of a JSON string. Stops before a character whose escape would not fit;
 * returns how many input bytes were written. */
static size_t json_str(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = *n;

    while (i < len) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : rt_utf8_seq(p + i, len - i);
        char esc[8];
        size_t el = 0;

        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c; el = 2;
        } else if (c == '\n') {
            esc[0] = '\\'; esc[1] = 'n'; el = 2;
        } else if (c == '\t') {
            esc[0] = '\\'; esc[1] = 't'; el = 2;
        } else if (c == '\r') {
            esc[0] = '\\'; esc[1] = 'r'; el = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        } else if (k == 0) {
            memcpy(esc, "\\ufffd", 6);      /* not UTF-8: the replacement character */
            el = 6;
            k = 1;
        }
        if (el) {
            if (o + el > cap)
                break;
            memcpy(out + o, esc, el);
            o += el;
            i += c < 0x80 ? 1 : k;
        } else {
            if (o + k > cap)
                break;
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        }
    }
    *n = o;
    return i;
}

static void put(char *out, size_t cap, size_t *n, const char *s)
{
    size_t l = strlen(s);
    if (*n + l > cap)
        l = cap - *n;
    memcpy(out + *n, s, l);
    *n += l;
}

size_t rt_log_format(char *out, size_t cap, int json, int level, const char *stamp,
                     const char *msg, size_t len, size_t dropped)
{
    size_t n = 0;
    int truncated = dropped > 0;

    if (level < 0 || level > RT_LOG_ERROR)
        level = RT_LOG_ERROR;
    if (truncated)
        len = utf8_cut(msg, len);           /* cut by the caller: not mid-character */
    cap -= 1;                               /* room for the newline */
    if (json) {
        const char *tb = NULL;
        size_t tblen = 0, head = len, room, used;
        const char *hit = len >= sizeof tb_marker - 1 ? memmem(msg, len, tb_marker, sizeof tb_marker - 1) : NULL;
        if (hit) {
            head = (size_t)(hit - msg);
            tb = hit + sizeof tb_marker - 1;
            tblen = len - head - (sizeof tb_marker - 1);
        }
        put(out, cap, &n, "{\"time\":\"");
        put(out, cap, &n, stamp);
        put(out, cap, &n, "\",\"level\":\"");
        put(out, cap, &n, json_levels[level]);
        put(out, cap, &n, "\",\"msg\":\"");
        /* leave room for the closing parts, and for some of the traceback */
        room = cap - n - 48;
        if (tb)
            room -= (tblen + 32 < room / 2 ? tblen + 32 : room / 2);
        used = json_str(out, n + room, &n, msg, head);
        truncated |= used < head;
        put(out, cap, &n, "\"");
        if (tb) {
            put(out, cap, &n, ",\"traceback\":\"");
            used = json_str(out, cap - 24, &n, tb, tblen);
            truncated |= used < tblen;
            put(out, cap, &n, "\"");
        }
        if (truncated)
            put(out, cap, &n, ",\"truncated\":true");
        put(out, cap, &n, "}");
    } else {
        char mark[64];
        size_t room;
        put(out, cap, &n, stamp);
        put(out, cap, &n, " ");
        put(out, cap, &n, level_names[level]);
        put(out, cap, &n, " ");
        room = cap - n - sizeof mark;
        if (len > room) {
            truncated = 1;
            dropped += len - room;
            len = utf8_cut(msg, room);
            dropped += room - len;
        }
        memcpy(out + n, msg, len);
        n += len;
        if (truncated) {
            snprintf(mark, sizeof mark, " [truncated: %zu more bytes]", dropped);
            put(out, cap, &n, mark);
        }
    }
    out[n++] = '\n';
    return n;
}

static void emit(int level, const char *msg, size_t len, size_t dropped)
{
    char line[LINE_MAX], stamp[64], tagged[MSG_MAX + 64];
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (rt_log_prefix && strlen(rt_log_prefix) + len <= sizeof tagged) {
        size_t pl = strlen(rt_log_prefix);
        memcpy(tagged, rt_log_prefix, pl);
        memcpy(tagged + pl, msg, len);
        msg = tagged;
        len += pl;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    n = rt_log_format(line, sizeof line, rt_log_json, level, stamp, msg, len, dropped);
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}

void rt_log_text(int level, const char *msg, size_t len)
{
    if (level < rt_log_level || level < 0 || level > RT_LOG_ERROR)
        return;
    emit(level, msg, len > MSG_MAX ? MSG_MAX : len, len > MSG_MAX ? len - MSG_MAX : 0);
}

void rt_log(int level, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    int r;

    if (level < rt_log_level || level < 0 || level > RT_LOG_ERROR)
        return;
    va_start(ap, fmt);
    r = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        r = 0;
    if ((size_t)r >= sizeof msg)
        emit(level, msg, sizeof msg - 1, (size_t)r - (sizeof msg - 1));
    else
        emit(level, msg, (size_t)r, 0);
}
