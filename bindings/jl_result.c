/*
 * jl_result.c - what a binding returns when an I/O outcome is not a
 * success: nil, code, detail (README "Errors"), and the stable codes for
 * cnats' statuses.
 */
#include "jl.h"

#include <string.h>

int jl_fail(lua_State *L, const char *code, const char *detail)
{
    lua_pushnil(L);
    lua_pushstring(L, code);
    if (detail)
        lua_pushstring(L, detail);
    else
        lua_pushstring(L, code);
    return 3;
}

const char *jl_status_code(natsStatus s)
{
    const char *code;
    switch (s) {
    case NATS_TIMEOUT:              code = "timeout"; break;
    case NATS_CONNECTION_CLOSED:    code = "closed"; break;
    case NATS_NO_RESPONDERS:        code = "no_responders"; break;
    case NATS_INSUFFICIENT_BUFFER:  code = "buffer_full"; break;
    case NATS_MAX_PAYLOAD:          code = "max_payload"; break;
    case NATS_CONNECTION_AUTH_FAILED: code = "auth_failed"; break;
    case NATS_NOT_PERMITTED:        code = "permission_denied"; break;
    case NATS_SSL_ERROR:            code = "tls_error"; break;
    case NATS_DRAINING:             code = "draining"; break;
    case NATS_NO_SERVER:            code = "no_server"; break;
    default:                        code = "nats_error"; break;
    }
    return code;
}

const char *jl_last_error(void)
{
    const char *t = nats_GetLastError(NULL), *e;
    if (!t)
        return "";
    /* "(pub.c:130): Payload ..." -> "Payload ..." */
    if (*t == '(' && (e = strstr(t, "): ")) != NULL && strchr(t, ')') == e)
        t = e + 3;
    return t;
}

int jl_push_status(lua_State *L, natsStatus s, const char *what)
{
    const char *code = jl_status_code(s);
    const char *last = jl_last_error();
    lua_pushnil(L);
    lua_pushstring(L, code);
    if (s == NATS_MAX_PAYLOAD && last && *last)
        /* cnats' own sentence carries the sizes: "Payload 1048586 greater
         * than maximum allowed: 1048576" (headers included) */
        lua_pushfstring(L, "%s: the message is too large for the server: %s", what, last);
    else if (s == NATS_INSUFFICIENT_BUFFER)
        lua_pushfstring(L, "%s: the reconnect buffer is full (the connection is down)", what);
    else
        lua_pushfstring(L, "%s: %s", what, natsStatus_GetText(s));
    return 3;
}
