/*
 * rt_server.h - the embedded default: a private `nats-server -js` on
 * 127.0.0.1, started on first use when no server was given.
 */
#ifndef JETLUA_RT_SERVER_H
#define JETLUA_RT_SERVER_H

typedef void (*rt_server_cb)(const char *url, const char *err, void *data);

/* Loop thread. Ensure the embedded server runs and accepts connections;
 * cb(url, NULL, data) once it does (at once if it already runs), or
 * cb(NULL, "why", data) if it cannot be started. Never blocks the loop. */
void rt_server_ensure(rt_server_cb cb, void *data);

/* Loop thread. Graceful stop (SIGTERM, then SIGKILL after a bound);
 * done(data) once the process is gone (at once if none runs). */
void rt_server_stop(void (*done)(void *data), void *data);

/* Any context, async-signal-safe: SIGKILL the server now (forced exit). */
void rt_server_kill_now(void);

/* 1 if this process started (owns) a server. */
int rt_server_running(void);

#endif
