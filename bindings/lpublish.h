/*
 * lpublish.h - building and publishing messages on a connection (lpublish.c).
 */
#ifndef JETLUA_LPUBLISH_H
#define JETLUA_LPUBLISH_H

#include "jl_conn.h"

/* Build a message with optional reply and headers table at hidx (0 = none).
 * Raises on bad headers (nothing leaks). */
natsStatus jl_msg_build(lua_State *L, natsMsg **out, const char *subj, const char *reply,
                        const char *data, size_t len, int hidx, const char *fname);

/* Publish with optional reply and headers table at hidx (0 = none). Returns
 * NATS_OK or a status; raises on bad headers. */
natsStatus jl_conn_publish(lua_State *L, jl_conn *c, const char *subj, const char *reply,
                           const char *data, size_t len, int hidx, const char *fname);

#endif
