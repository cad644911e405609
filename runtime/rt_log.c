/*
 * rt_log.c - human-readable log lines: "2026-11-22T12:00:00.123Z INFO  text".
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

void rt_log(int level, const char *fmt, ...)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < rt_log_level || level < 0 || level > RT_LOG_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ",
                          ts.tv_nsec / 1000000, level_names[level]);
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w;
    if (n > sizeof line - 2)
        n = sizeof line - 2;          /* truncated: still one line */
    line[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}
