/*
 * rt_log.c - one line per event on stderr, for people:
 *     2026-11-22T12:00:00.123Z INFO  text
 * or, with --log-format json, for machines:
 *     {"time":"2026-11-22T12:00:00.123Z","level":"info","msg":"text"}
 * Any thread may log; a line is written with one write() so lines never interleave.
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

static const char *level_names[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };

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

/* Escape text into out as a JSON string body; returns the length. */
static size_t json_escape(char *out, size_t cap, const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 7 < cap; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c == '\t') {
            out[n++] = '\\';
            out[n++] = 't';
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

void rt_log(int level, const char *fmt, ...)
{
    static const char *json_levels[] = { "debug", "info", "warn", "error" };
    char line[4096], msg[3000], stamp[64];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < rt_log_level || level < 0 || level > RT_LOG_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rt_log_json) {
        n = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", stamp,
                             json_levels[level]);
        n += json_escape(line + n, sizeof line - n - 4, msg);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s %s %s", stamp, level_names[level], msg);
        if (n > sizeof line - 2)
            n = sizeof line - 2;      /* truncated: still one line */
    }
    line[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}
