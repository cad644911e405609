/*
 * rt_server.h - the embedded default: a private `nats-server -js` on
 * 127.0.0.1, started on first use when no server was given, shared by every
 * jetlua of the same state dir, protected by a token of that state dir, and
 * stopped when the last of them exits (see rt_statedir.h for the files and
 * rt_server_guard.c for the process that owns the server).
 */
#ifndef JETLUA_RT_SERVER_H
#define JETLUA_RT_SERVER_H

/* url: "nats://127.0.0.1:PORT" (no secret in it); token: the secret to
 * connect with (natsOptions_SetToken); on failure both NULL and err says
 * why. */
typedef void (*rt_server_cb)(const char *url, const char *token, const char *err, void *data);

/* Loop thread. Ensure the embedded server runs and accepts connections,
 * and count this process as one of its users; cb once it does (at once if
 * it already runs). Never blocks the loop. */
void rt_server_ensure(rt_server_cb cb, void *data);

/* Loop thread. This process stops using the server (the server stops once
 * no jetlua uses it). done(data) once that is done: at once, or, when this
 * was the last user, once the server stopped (bounded, 12 s). */
void rt_server_stop(void (*done)(void *data), void *data);

/* Kept for the forced exit: nothing to do any more, the guard stops the
 * server once this process is gone. Async-signal-safe. */
void rt_server_kill_now(void);

/* 1 if this process uses the embedded server. */
int rt_server_running(void);

#endif
