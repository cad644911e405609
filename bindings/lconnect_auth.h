/*
 * lconnect_auth.h - jet.connect's credential and TLS options (lconnect_auth.c).
 */
#ifndef JETLUA_LCONNECT_AUTH_H
#define JETLUA_LCONNECT_AUTH_H

#include <lua.h>
#include <nats/nats.h>

/* A natsOptions call of jet.connect (L in scope): a failure raises, naming
 * the option. */
#define NATS_CHECK(call, what)                                                 \
    do {                                                                       \
        natsStatus s_ = (call);                                                \
        if (s_ != NATS_OK)                                                     \
            jl_argerror(L, "jet.connect", what, "%s", natsStatus_GetText(s_)); \
    } while (0)

typedef struct jl_connect_auth {
    const char *user, *password, *token, *creds, *nkey, *nkey_pub;
    const char *ca, *cert, *key;
    int         tls;
    char        pub[64];      /* the NKey public key, when derived here */
} jl_connect_auth;

/* Read the credential and TLS options of the jet.connect options table at
 * index 1 (has: there is one); without servers=, take those of the server
 * jetlua was started with; with no server at all (the embedded one), any of
 * them is a mistake. Checks kinds and files. Raises a jl_argerror naming the
 * option, the file and the reason. The contents of secret files are pushed
 * as Lua strings and left on the stack (a later raise leaks nothing). */
void jl_connect_auth_read(lua_State *L, int has, int explicit_servers, jl_connect_auth *a);

/* Set them on opts; raises like above (TLS files: OpenSSL's reason). */
void jl_connect_auth_apply(lua_State *L, natsOptions *opts, const jl_connect_auth *a);

#endif
