/*
 * rt_log.h - one line per event on stderr: time, level, message.
 */
#ifndef JETLUA_RT_LOG_H
#define JETLUA_RT_LOG_H

#include <stddef.h>

enum { RT_LOG_DEBUG = 0, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR, RT_LOG_OFF };

extern int rt_log_level;
extern int rt_log_json;       /* --log-format json */
extern const char *rt_log_prefix; /* before every message ("[worker 1] "), or NULL */

/* Returns -1 for an unknown name. */
int  rt_log_parse_level(const char *name);
void rt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message of len bytes as it is (it may hold NUL bytes and invalid UTF-8). */
void rt_log_text(int level, const char *msg, size_t len);

/* The pure part, for tests: one line (newline included, at most cap >= 256
 * bytes) for msg[0..len); dropped > 0 says the caller already cut that many
 * bytes off the end. Returns the line's length. */
size_t rt_log_format(char *out, size_t cap, int json, int level, const char *stamp,
                     const char *msg, size_t len, size_t dropped);
/* Length (1-4) of the valid UTF-8 sequence at p, 0 if none starts there. */
size_t rt_utf8_seq(const unsigned char *p, size_t avail);

#define rt_debug(...) do { if (rt_log_level <= RT_LOG_DEBUG) rt_log(RT_LOG_DEBUG, __VA_ARGS__); } while (0)
#define rt_info(...)  do { if (rt_log_level <= RT_LOG_INFO)  rt_log(RT_LOG_INFO,  __VA_ARGS__); } while (0)
#define rt_warn(...)  do { if (rt_log_level <= RT_LOG_WARN)  rt_log(RT_LOG_WARN,  __VA_ARGS__); } while (0)
#define rt_error(...) do { if (rt_log_level <= RT_LOG_ERROR) rt_log(RT_LOG_ERROR, __VA_ARGS__); } while (0)

#endif
