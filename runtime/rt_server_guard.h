/*
 * rt_server_guard.h - `jetlua server guard`: owns the embedded nats-server
 * of a state dir and stops it when no jetlua uses it any more (see
 * rt_server_guard.c). Started by rt_server.c only.
 */
#ifndef JETLUA_RT_SERVER_GUARD_H
#define JETLUA_RT_SERVER_GUARD_H

/* Runs until the server stopped; returns the process exit status.
 * Expects the state dir's server.lock, locked, on fd 3. */
int rt_server_guard(const char *dir, int port);

#endif
