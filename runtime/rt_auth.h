/*
 * rt_auth.h - the credentials of `jetlua run` and the tools: command-line
 * options, their file forms and the NATS_* environment variables, resolved
 * once at start. No Lua, no libuv.
 */
#ifndef JETLUA_RT_AUTH_H
#define JETLUA_RT_AUTH_H

#include "rt.h"

/* Fill cfg's credentials: --password-file / --token-file are read, the
 * environment (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY)
 * fills what the command line did not give, files are checked, the NKey
 * public key derived. With no server (the embedded default), credentials
 * and TLS options on the command line are an error (the embedded server
 * has its own token) and credentials from the environment are reported
 * with a warning and not used. Returns 0, or -1 with a sentence in err
 * (a command-line mistake: exit status 2). */
int rt_auth_resolve(rt_cfg *cfg, char *err, size_t errlen);

#endif
