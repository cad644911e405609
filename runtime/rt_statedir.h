/*
 * rt_statedir.h - the files of a state dir that the embedded nats-server,
 * its guard and every jetlua using it share. No Lua, no libuv.
 *
 *   DIR/                0700, owned by the user
 *   DIR/token           0600, the server's secret, made once per state dir
 *   DIR/server.conf     0600, the server's config (holds the token), written
 *                       by the guard at each start
 *   DIR/server.lock     held (flock LOCK_EX) by the guard while it runs
 *   DIR/users.lock      held (flock LOCK_SH) by every jetlua using the server;
 *                       the guard stops the server once it can lock it
 *                       exclusively: no user left, crashed ones included
 *   DIR/users/PID       one per user, flock'ed while it lives: for `status`
 *   DIR/server.url      nats://127.0.0.1:PORT (no secret) once it is ready
 *   DIR/server.port     the last port, reused by the next start
 *   DIR/guard.pid       "GUARD_PID SERVER_PID"
 *   DIR/nats-server.log the server's and the guard's output
 *   DIR/jetstream/      the JetStream store
 */
#ifndef JETLUA_RT_STATEDIR_H
#define JETLUA_RT_STATEDIR_H

#include <stddef.h>
#include <time.h>

#define RT_TOKEN_LEN 48   /* hex digits */

/* The absolute path of dir in abs. create=1: make it (and its parents)
 * when missing, mode 0700. An existing dir must belong to the user; group
 * and other permissions are removed from it. create=0: returns 1 when dir
 * does not exist. 0 on success; -1 with a sentence in err. */
int rt_sd_prepare(const char *dir, int create, char *abs, size_t n, char *err, size_t errlen);

/* out = abs/name */
void rt_sd_path(char *out, size_t n, const char *abs, const char *name);

/* The token of the state dir (RT_TOKEN_LEN hex digits); create=1 makes it
 * when missing (0600; concurrent creators agree on one). 0, or -1 with a
 * sentence in err (1 when create=0 and there is none). */
int rt_sd_token(const char *abs, int create, char *tok, size_t n, char *err, size_t errlen);

/* Write abs/name atomically (temp file + rename), mode 0600. 0 or -1. */
int rt_sd_write(const char *abs, const char *name, const char *content);

/* Read abs/name's first line into out (newline removed). 0 or -1. */
int rt_sd_read_line(const char *abs, const char *name, char *out, size_t n);

/* 1 if a guard holds abs/server.lock (a server runs or is starting or
 * stopping), 0 if not. */
int rt_sd_server_held(const char *abs);

/* Register this process as a user (abs/users/PID holding `what`, locked
 * while the returned fd is open). Returns the fd or -1. */
int rt_sd_user_add(const char *abs, const char *what);
/* Unregister (closes fd). */
void rt_sd_user_remove(const char *abs, int fd);

/* Calls fn for each live user; removes the files of dead ones. Returns the
 * number of live users. */
typedef void (*rt_sd_user_fn)(int pid, const char *what, time_t since, void *data);
int rt_sd_users(const char *abs, rt_sd_user_fn fn, void *data);

#endif
