/*
 * lperm.h - asynchronous server errors (lperm.c).
 */
#ifndef JETLUA_LPERM_H
#define JETLUA_LPERM_H

#include <nats/nats.h>

/* cnats' async error handler for a connection (cl is its jl_conn; any
 * thread): the error reaches the loop, then the requests, clients and
 * nc:on("error") it concerns. */
void jl_conn_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *cl);

#endif
