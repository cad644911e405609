/*
 * rt_auth.c - resolving the command line's credentials (see rt_auth.h).
 */
#include "rt_auth.h"
#include "rt_nkey.h"
#include "rt_secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* set *field from a file unless the value form was given too */
static int from_file(const char **field, const char *file, const char *opt, const char *fileopt,
                     char *err, size_t errlen)
{
    char why[512];
    char *s;
    if (!file)
        return 0;
    if (*field) {
        snprintf(err, errlen, "%s and %s: give one of them", opt, fileopt);
        return -1;
    }
    if (!(s = rt_secret_read_file(file, why, sizeof why))) {
        snprintf(err, errlen, "%s: %s", fileopt, why);
        return -1;
    }
    *field = s;        /* lives as long as the process */
    return 0;
}

int rt_auth_resolve(rt_cfg *cfg, char *err, size_t errlen)
{
    char why[512];
    int cli = cfg->user || cfg->password || cfg->token || cfg->creds || cfg->nkey ||
              cfg->password_file || cfg->token_file;
    int tls = cfg->tls_ca || cfg->tls_cert || cfg->tls_key;

    if (cfg->nservers == 0) {
        /* the embedded default: its own token, never these */
        if (cli) {
            snprintf(err, errlen, "%s applies to --server or NATS_URL only; with neither, jetlua uses the "
                     "embedded server, which has its own token (see `jetlua server url`)",
                     cfg->user ? "--user" : cfg->password ? "--password" : cfg->password_file ? "--password-file"
                     : cfg->token ? "--token" : cfg->token_file ? "--token-file" : cfg->creds ? "--creds" : "--nkey");
            return -1;
        }
        if (tls) {
            snprintf(err, errlen, "--tls-ca/--tls-cert/--tls-key apply to --server or NATS_URL only; "
                     "the embedded server is plain on 127.0.0.1");
            return -1;
        }
        {
            static const char *const vars[] = {"NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY", NULL};
            for (int i = 0; vars[i]; i++)
                if (env(vars[i]))
                    rt_warn("%s is set but no server is given (--server, NATS_URL): it is not used; the embedded "
                            "server has its own token", vars[i]);
        }
        return 0;
    }

    if (from_file(&cfg->password, cfg->password_file, "--password", "--password-file", err, errlen) != 0 ||
        from_file(&cfg->token, cfg->token_file, "--token", "--token-file", err, errlen) != 0)
        return -1;
    /* the environment fills in what the command line did not give */
    if (!cfg->user && env("NATS_USER"))
        cfg->user = env("NATS_USER");
    if (!cfg->password && env("NATS_PASSWORD"))
        cfg->password = env("NATS_PASSWORD");
    if (!cfg->token && env("NATS_TOKEN"))
        cfg->token = env("NATS_TOKEN");
    if (!cfg->creds && env("NATS_CREDS"))
        cfg->creds = env("NATS_CREDS");
    if (!cfg->nkey && env("NATS_NKEY"))
        cfg->nkey = env("NATS_NKEY");

    /* one kind of credentials */
    if (cfg->password && !cfg->user) {
        snprintf(err, errlen, "a password (--password, --password-file or NATS_PASSWORD) needs a user "
                 "(--user or NATS_USER)");
        return -1;
    }
    {
        const char *kinds[4];
        int nk = 0;
        if (cfg->user)
            kinds[nk++] = "a user and password";
        if (cfg->token)
            kinds[nk++] = "a token";
        if (cfg->creds)
            kinds[nk++] = "a creds file";
        if (cfg->nkey)
            kinds[nk++] = "an NKey seed";
        if (nk > 1) {
            snprintf(err, errlen, "give one kind of credentials, not %s and %s (from the command line or "
                     "the NATS_* environment variables)", kinds[0], kinds[1]);
            return -1;
        }
    }
    if (cfg->creds && rt_file_readable(cfg->creds, why, sizeof why) != 0) {
        snprintf(err, errlen, "--creds: %s", why);
        return -1;
    }
    if (cfg->nkey && rt_nkey_public_from_file(cfg->nkey, cfg->nkey_pub, sizeof cfg->nkey_pub, why, sizeof why) != 0) {
        snprintf(err, errlen, "--nkey: %s", why);
        return -1;
    }
    {
        const char *files[][2] = {{"--tls-ca", cfg->tls_ca}, {"--tls-cert", cfg->tls_cert}, {"--tls-key", cfg->tls_key}};
        for (int i = 0; i < 3; i++)
            if (files[i][1] && rt_file_readable(files[i][1], why, sizeof why) != 0) {
                snprintf(err, errlen, "%s: %s", files[i][0], why);
                return -1;
            }
    }
    return 0;
}
