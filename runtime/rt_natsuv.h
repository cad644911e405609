/*
 * rt_natsuv.h - a libuv event-loop adapter for cnats with an after-read hook.
 * Pass the four functions to natsOptions_SetEventLoop. Loop thread for
 * init and next_hook; cnats calls the rest from any thread.
 */
#ifndef JETLUA_RT_NATSUV_H
#define JETLUA_RT_NATSUV_H

#include <nats/nats.h>
#include <stdbool.h>
#include <uv.h>

typedef void (*rt_natsuv_hook)(void *arg);

void rt_natsuv_init(void);
/* The next first attach (inside natsConnection_Connect on the loop thread)
 * takes this hook; it is called after every read event of that connection. */
void rt_natsuv_next_hook(rt_natsuv_hook fn, void *arg);

/* Called on the loop thread after each write the adapter makes on a
 * writable event, with the hook arg of the connection and its buffered
 * bytes before and after (jetlua counts what left the buffer). */
typedef void (*rt_natsuv_write_hook)(void *arg, int before, int after);
void rt_natsuv_set_write_hook(rt_natsuv_write_hook fn);

/* How many connections' adapters are not yet detached: cnats may still call
 * into them from its threads, so the loop must not close their handles. */
int rt_natsuv_live(void);

/* Call once after a connection is established (loop thread, outside any
 * cnats call): learns where cnats keeps the connection's protocol parser,
 * so a reconnect can start with a fresh one. See rt_natsuv.c. */
void rt_natsuv_learn(natsConnection *nc);

natsStatus rt_natsuv_attach(void **userData, void *loop, natsConnection *nc, natsSock sock);
natsStatus rt_natsuv_read(void *userData, bool add);
natsStatus rt_natsuv_write(void *userData, bool add);
natsStatus rt_natsuv_detach(void *userData);

#endif
