/*
 * lwire.h - a connection's write buffer (lwire.c): what left it, writing it
 * out before each poll, nc:publish's backpressure, and closing without
 * losing it.
 *
 * Every write of cnats' buffer made by jetlua goes through jl_conn_write
 * (the libuv adapter's writes report through a hook), so c->wt knows which
 * bytes left the buffer: an async publish is never re-sent while its first
 * copy still waits in it.
 */
#ifndef JETLUA_LWIRE_H
#define JETLUA_LWIRE_H

#include "jl_conn.h"

#define JL_MAX_BUFFERED (64 * 1024 * 1024)

/* From connect to close: write out c's buffer before every poll (a request
 * then costs one round trip, not cnats' 1 ms flusher wait), and count the
 * adapter's writes. Sets the defaults of max_buffered and wt. */
void jl_wire_add(jl_conn *c);
void jl_wire_remove(jl_conn *c);

void jl_conn_write(jl_conn *c);
/* After a publish of about `bytes`: write out what cnats buffered when it is
 * a lot (loop thread; every 64 publishes or 1 MiB); updates c->over_buffered. */
void jl_conn_write_some(jl_conn *c, size_t bytes);
/* nc:publish found the buffer over max_buffered: yield co until it drains.
 * Only while connected: every waiter is woken before c closes. */
int  jl_conn_bp_wait(jl_conn *c, rt_co *co);
/* The buffer was dropped (disconnect) or the connection closed. */
void jl_conn_bp_event(jl_conn *c, int ev);
/* End position in the write stream of what is buffered now. */
uint64_t jl_conn_wpos(jl_conn *c);
/* 1 while a message appended at (epoch, end) still waits in the buffer. */
int  jl_conn_wbuffered(jl_conn *c, uint32_t epoch, uint64_t end);

/* Close now from the loop thread, writing out what is buffered first. */
void jl_conn_close_now(jl_conn *c);

#endif
