/*
 * rt_log.h - one line per event on stderr: time, level, message.
 */
#ifndef JETLUA_RT_LOG_H
#define JETLUA_RT_LOG_H

enum { RT_LOG_DEBUG = 0, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR, RT_LOG_OFF };

extern int rt_log_level;
extern int rt_log_json;       /* --log-format json */

/* Returns -1 for an unknown name. */
int  rt_log_parse_level(const char *name);
void rt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rt_debug(...) do { if (rt_log_level <= RT_LOG_DEBUG) rt_log(RT_LOG_DEBUG, __VA_ARGS__); } while (0)
#define rt_info(...)  do { if (rt_log_level <= RT_LOG_INFO)  rt_log(RT_LOG_INFO,  __VA_ARGS__); } while (0)
#define rt_warn(...)  do { if (rt_log_level <= RT_LOG_WARN)  rt_log(RT_LOG_WARN,  __VA_ARGS__); } while (0)
#define rt_error(...) do { if (rt_log_level <= RT_LOG_ERROR) rt_log(RT_LOG_ERROR, __VA_ARGS__); } while (0)

#endif
