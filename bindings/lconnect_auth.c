/*
 * lconnect_auth.c - jet.connect's credentials (user/password, token, creds,
 * NKey seed; the file forms) and TLS files: reading, checking, applying.
 * Every mistake raises naming the option, the file and the reason; no
 * secret is ever put in a message.
 */
#include "jl.h"
#include "lconnect_auth.h"
#include "rt_nkey.h"
#include "rt_secret.h"

#include <stdlib.h>
#include <string.h>

/* A TLS file cnats could not load: name the file and OpenSSL's reason
 * (cnats' status text alone is "SSL Error"). */
static void tls_load(lua_State *L, natsStatus s, const char *arg, const char *what, const char *file)
{
    const char *last, *why;
    if (s == NATS_OK)
        return;
    last = nats_GetLastError(NULL);
    why = last && *last ? last : natsStatus_GetText(s);
    if (why[0] == '(' && strstr(why, "): "))
        why = strstr(why, "): ") + 3;          /* "(opts.c:123): " */
    if (strstr(why, file))      /* "Error loading trusted certificates '<file>': ..." */
        jl_argerror(L, "jet.connect", arg, "cannot load %s: %s", what, why);
    jl_argerror(L, "jet.connect", arg, "cannot load %s from %s: %s", what, file, why);
}

/* A file option must be readable: say which file and why not. */
static void check_file(lua_State *L, const char *arg, const char *path)
{
    char why[512];
    if (path && rt_file_readable(path, why, sizeof why) != 0)
        jl_argerror(L, "jet.connect", arg, "%s", why);
}

/* The secret in the file of option `field`, pushed as a Lua string (so a
 * later raise leaks nothing); NULL when the option is absent. */
static const char *secret_file(lua_State *L, const char *field, const char *value_field, int has_value)
{
    char why[512];
    char *s;
    const char *path = jl_field_string(L, 1, field, "jet.connect", NULL);
    if (!path)
        return NULL;
    if (has_value)
        jl_argerror(L, "jet.connect", field, "give %s or %s, not both", value_field, field);
    if (!(s = rt_secret_read_file(path, why, sizeof why)))
        jl_argerror(L, "jet.connect", field, "%s", why);
    lua_pushstring(L, s);
    memset(s, 0, strlen(s));
    free(s);
    return lua_tostring(L, -1);
}

void jl_connect_auth_read(lua_State *L, int has, int explicit_servers, jl_connect_auth *a)
{
    static const char *const tkeys[] = {"ca", "cert", "key", NULL};
    const rt_cfg *cfg = &RT->cfg;

    memset(a, 0, sizeof *a);
    if (has) {
        const char *pf, *tf;
        a->user = jl_field_string(L, 1, "user", "jet.connect", NULL);
        a->password = jl_field_string(L, 1, "password", "jet.connect", NULL);
        a->token = jl_field_string(L, 1, "token", "jet.connect", NULL);
        a->creds = jl_field_string(L, 1, "creds", "jet.connect", NULL);
        a->nkey = jl_field_string(L, 1, "nkey", "jet.connect", NULL);
        if ((pf = secret_file(L, "password_file", "password", a->password != NULL)))
            a->password = pf;
        if ((tf = secret_file(L, "token_file", "token", a->token != NULL)))
            a->token = tf;
        lua_getfield(L, 1, "tls");
        if (jl_opt_table(L, -1, "jet.connect", "tls")) {
            int t = lua_gettop(L);
            jl_check_keys(L, t, "jet.connect tls", tkeys);
            a->ca = jl_field_string_as(L, t, "ca", "tls.ca", "jet.connect", NULL);
            a->cert = jl_field_string_as(L, t, "cert", "tls.cert", "jet.connect", NULL);
            a->key = jl_field_string_as(L, t, "key", "tls.key", "jet.connect", NULL);
            a->tls = 1;
        }
        lua_pop(L, 1);
    }
    if (!explicit_servers && cfg->nservers == 0 &&
        (a->user || a->password || a->token || a->creds || a->nkey || a->tls)) {
        const char *what = a->user ? "user" : a->password ? "password" : a->token ? "token"
                         : a->creds ? "creds" : a->nkey ? "nkey" : "tls";
        jl_argerror(L, "jet.connect", what, "applies to a server given by servers=, --server or NATS_URL; "
                    "the embedded server has its own token (see `jetlua server url`)");
    }
    if (!explicit_servers) {
        /* the server jetlua was started with: take its credentials too */
        if (!a->user && !a->token && !a->creds && !a->nkey) {
            a->user = cfg->user;
            a->password = cfg->password;
            a->token = cfg->token;
            a->creds = cfg->creds;
            a->nkey = cfg->nkey;
            if (a->nkey)
                a->nkey_pub = cfg->nkey_pub;
        }
        if (!a->tls && (cfg->tls_ca || cfg->tls_cert)) {
            a->ca = cfg->tls_ca;
            a->cert = cfg->tls_cert;
            a->key = cfg->tls_key;
            a->tls = 1;
        }
    }
    if ((a->cert && !a->key) || (a->key && !a->cert))
        jl_argerror(L, "jet.connect", "tls", "cert and key go together");
    if (a->password && !a->user)
        jl_argerror(L, "jet.connect", "password", "needs a user");
    if ((a->user != NULL) + (a->token != NULL) + (a->creds != NULL) + (a->nkey != NULL) > 1)
        jl_argerror(L, "jet.connect", a->user ? "user" : "token",
                    "give one kind of credentials: user/password, token, creds or nkey");
    check_file(L, "creds", a->creds);
    check_file(L, "tls.ca", a->ca);
    check_file(L, "tls.cert", a->cert);
    check_file(L, "tls.key", a->key);
    if (a->nkey && !a->nkey_pub) {
        char why[512];
        if (rt_nkey_public_from_file(a->nkey, a->pub, sizeof a->pub, why, sizeof why) != 0)
            jl_argerror(L, "jet.connect", "nkey", "%s", why);
        a->nkey_pub = a->pub;
    }
}

void jl_connect_auth_apply(lua_State *L, natsOptions *opts, const jl_connect_auth *a)
{
    if (a->user)
        NATS_CHECK(natsOptions_SetUserInfo(opts, a->user, a->password ? a->password : ""), "user");
    if (a->token)
        NATS_CHECK(natsOptions_SetToken(opts, a->token), "token");
    if (a->creds)
        NATS_CHECK(natsOptions_SetUserCredentialsFromFiles(opts, a->creds, NULL), "creds");
    if (a->nkey)
        NATS_CHECK(natsOptions_SetNKeyFromSeed(opts, a->nkey_pub, a->nkey), "nkey");
    if (a->tls) {
        NATS_CHECK(natsOptions_SetSecure(opts, true), "tls");
        if (a->ca)
            tls_load(L, natsOptions_LoadCATrustedCertificates(opts, a->ca), "tls.ca", "CA certificates", a->ca);
        if (a->cert)
            tls_load(L, natsOptions_LoadCertificatesChain(opts, a->cert, a->key), "tls.cert",
                     "the client certificate and key", a->cert);
    }
}
