/*
 * main.c - the jetlua command line: `jetlua run`, `jetlua version`,
 * `jetlua --help`, and the tools written in Lua (scripts/tools).
 */
#include "rt.h"
#include "rt_auth.h"
#include "rt_http.h"
#include "rt_mem.h"
#include "rt_paths.h"
#include "rt_notify.h"
#include "rt_server_cli.h"
#include "rt_sched.h"
#include "rt_workers.h"
#include "jl_open.h"

#include <nats/nats.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char usage[] =
    "jetlua - run Lua scripts on NATS JetStream\n"
    "\n"
    "Usage:\n"
    "  jetlua run [options] SCRIPT [args...]   run a Lua script\n"
    "  jetlua version                         print the versions of jetlua and its parts\n"
    "  jetlua stream ls|info|add|edit|view|purge|rm\n"
    "                                         inspect and manage streams\n"
    "  jetlua consumer ls|info|add|next|rm    inspect and manage consumers, take messages\n"
    "  jetlua pub SUBJECT [DATA]              publish (JetStream when a stream listens)\n"
    "  jetlua sub SUBJECT                     print messages as they arrive\n"
    "  jetlua req SUBJECT [DATA]              send a request, print the reply\n"
    "  jetlua kv ls|get|put|del|history|watch key-value buckets\n"
    "  jetlua micro ls|info|stats             NATS services ($SRV): find them, their endpoints and stats\n"
    "  (each tool: `jetlua TOOL --help`; tools take the run options below, and --json)\n"
    "  jetlua server url|status|stop          the embedded server of the state dir\n"
    "  jetlua --help                          this text\n"
    "\n"
    "Options for run (before SCRIPT; --opt VALUE or --opt=VALUE):\n"
    "  -s, --server URL      NATS server, repeatable (default: $NATS_URL, a comma-separated\n"
    "                        list). With neither, jetlua uses the embedded server of the\n"
    "                        state dir: a private `nats-server -js` on 127.0.0.1 that needs\n"
    "                        a generated token (DIR/token), started by the first\n"
    "                        jet.connect(), shared by every jetlua of that dir and stopped\n"
    "                        when the last one exits (see `jetlua server --help`)\n"
    "Credentials for --server/NATS_URL (the safe forms are the files and the environment:\n"
    "--password and --token are visible to every local user in the process list):\n"
    "  --user USER           user name ($NATS_USER)\n"
    "  --password-file FILE  password read from FILE ($NATS_PASSWORD); --password PASSWORD\n"
    "  --token-file FILE     token read from FILE ($NATS_TOKEN); --token TOKEN\n"
    "  --creds FILE          credentials file: user JWT + NKey seed ($NATS_CREDS)\n"
    "  --nkey FILE           NKey user seed file ($NATS_NKEY)\n"
    "  --tls-ca FILE         CA certificate to verify the server\n"
    "  --tls-cert FILE       client certificate (with --tls-key)\n"
    "  --tls-key FILE        client private key\n"
    "  (a URL's user:password@ or token@ works too; jetlua never prints secrets)\n"
    "Other options:\n"
    "  --name NAME           connection name shown by the server\n"
    "  --log-level LEVEL     debug, info, warn, error or off (default info)\n"
    "  --log-format FORMAT   text (default) or json: one JSON object per line\n"
    "  --watch               reload the script and its modules when they change (SIGHUP\n"
    "                        reloads too); a failed reload keeps the old code running\n"
    "  --metrics HOST:PORT   serve Prometheus metrics on /metrics, liveness on /livez and\n"
    "                        readiness on /readyz (= /healthz); HOST: an address, a name\n"
    "                        (localhost), [::1] for IPv6, or empty (:9464) for every\n"
    "                        interface; port 0 picks a free one\n"
    "  --state-dir DIR       the embedded server's state dir: token, store, log (default\n"
    "                        $JETLUA_STATE_DIR, else ./.jetlua)\n"
    "  --shutdown-timeout S  bound on the graceful shutdown, seconds (default 10)\n"
    "  --slow-handler S      warn when one handler run holds the event loop longer than\n"
    "                        S seconds without yielding (default 1; 0 turns it off)\n"
    "  --workers N           run N worker processes of the script (auto: one per CPU)\n"
    "                        under a master that restarts crashed ones, forwards\n"
    "                        SIGHUP/SIGTERM/SIGINT and serves --metrics for all\n"
    "\n"
    "The script gets its arguments in the global table `arg` (arg[0] is the script).\n"
    "SIGINT/SIGTERM shut down gracefully; a second signal forces the exit, also while\n"
    "a handler that never yields holds the event loop.\n"
    "Exit status: 0 when the script ended and everything finished cleanly; 1 on a\n"
    "script error, an unclean shutdown, or an async publish that failed unseen or was\n"
    "never acknowledged; the code given to jet.exit(code).\n";

static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "jetlua: %s needs a value (see jetlua --help)\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return 1;
}

static void add_server(rt_cfg *cfg, const char *url)
{
    cfg->servers = rt_xrealloc(cfg->servers, (size_t)(cfg->nservers + 2) * sizeof *cfg->servers);
    cfg->servers[cfg->nservers++] = url;
    cfg->servers[cfg->nservers] = NULL;
}

/* Secrets given on the command line (--password, --token, a --server URL's
 * password or token): keep a copy and blank the original, so
 * /proc/PID/cmdline shows "****" from now on (other users could read it
 * until here: the file and environment forms are the safe ones, as --help
 * says). */
static char *keep(const char *s)
{
    static char **kept;            /* for the life of the process */
    static int nkept;
    kept = rt_xrealloc(kept, (size_t)(nkept + 1) * sizeof *kept);
    return kept[nkept++] = rt_xstrdup(s);
}

static void hide_secrets(int argc, char **argv, rt_cfg *cfg)
{
    for (int i = 0; i < argc; i++) {
        const char **field = NULL;
        char *a = argv[i];
        if (cfg->password && cfg->password >= a && cfg->password < a + strlen(a))
            field = &cfg->password;
        else if (cfg->token && cfg->token >= a && cfg->token < a + strlen(a))
            field = &cfg->token;
        if (field && **field) {
            char *copy = keep(*field);
            memset((char *)*field, '*', strlen(*field));
            *field = copy;
        }
        for (int k = 0; k < cfg->nservers; k++) {
            const char *u = cfg->servers[k];
            char *p, *at;
            if (u < a || u >= a + strlen(a))
                continue;
            cfg->servers[k] = keep(u);
            p = strstr((char *)u, "://");
            p = p ? p + 3 : (char *)u;
            if ((at = strrchr(p, '@'))) {
                char *colon = memchr(p, ':', (size_t)(at - p));
                memset(colon ? colon + 1 : p, '*', (size_t)(at - (colon ? colon + 1 : p)));
            }
        }
    }
}

static int cmd_version(void)
{
    printf("jetlua %s\n", JETLUA_VERSION);
    printf("%s\n", LUAJIT_VERSION);
    printf("libuv %s\n", uv_version_string());
    printf("cnats %s\n", nats_GetVersion());
    return 0;
}

/* The script's path made absolute, without resolving symlinks: a script
 * mounted from a Kubernetes ConfigMap is a symlink into a directory that the
 * next update replaces, so its modules and the files --watch follows must be
 * found where the script was named, not where it pointed at start. */
static const char *absolute_path(const char *path, char *out, size_t cap)
{
    char cwd[4096];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return path;
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if ((size_t)snprintf(out, cap, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path) >= cap)
        return path;
    return out;
}

static void main_done(rt_co *co, int ok, void *data)
{
    RT->main_done = 1;
    rt_unref();
    if (ok == 0)
        rt_shutdown(1);   /* raised; -1 (abandoned at shutdown) is not a failure */
    else if (ok > 0)
        rt_notify_ready("running");   /* systemd Type=notify: handlers and consumers are up */
}

static int cmd_run(int argc, char **argv, int first)
{
    rt_cfg *cfg = &RT->cfg;
    const char *v, *env;
    int i;
    lua_State *L;
    int code;
    const char *metrics = NULL;
    int workers = 0, worker = -1, metrics_fd = -1;

    for (i = first; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        int at = i;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (opt_value(argc, argv, &i, "--server", &v) || opt_value(argc, argv, &i, "-s", &v))
            add_server(cfg, v);
        else if (opt_value(argc, argv, &i, "--user", &v))         cfg->user = v;
        else if (opt_value(argc, argv, &i, "--password", &v))     cfg->password = v;
        else if (opt_value(argc, argv, &i, "--token", &v))        cfg->token = v;
        else if (opt_value(argc, argv, &i, "--creds", &v))        cfg->creds = v;
        else if (opt_value(argc, argv, &i, "--password-file", &v)) cfg->password_file = v;
        else if (opt_value(argc, argv, &i, "--token-file", &v))   cfg->token_file = v;
        else if (opt_value(argc, argv, &i, "--nkey", &v))         cfg->nkey = v;
        else if (opt_value(argc, argv, &i, "--tls-ca", &v))       cfg->tls_ca = v;
        else if (opt_value(argc, argv, &i, "--tls-cert", &v))     cfg->tls_cert = v;
        else if (opt_value(argc, argv, &i, "--tls-key", &v))      cfg->tls_key = v;
        else if (opt_value(argc, argv, &i, "--name", &v))         cfg->name = v;
        else if (opt_value(argc, argv, &i, "--state-dir", &v))    cfg->state_dir = v;
        else if (opt_value(argc, argv, &i, "--shutdown-timeout", &v)) {
            char *end;
            cfg->shutdown_timeout = strtod(v, &end);
            if (*end || cfg->shutdown_timeout <= 0) {
                fprintf(stderr, "jetlua: --shutdown-timeout: '%s' is not a positive number of seconds\n", v);
                return 2;
            }
        } else if (opt_value(argc, argv, &i, "--slow-handler", &v)) {
            char *end;
            double s = strtod(v, &end);
            if (*end || *v == '\0' || !(s >= 0)) {
                fprintf(stderr, "jetlua: --slow-handler: '%s' is not a number of seconds (0 turns it off)\n", v);
                return 2;
            }
            cfg->slow_handler = s > 0 ? s : -1;
        } else if (opt_value(argc, argv, &i, "--log-level", &v)) {
            int lvl = rt_log_parse_level(v);
            if (lvl < 0) {
                fprintf(stderr, "jetlua: --log-level: unknown level '%s' (debug, info, warn, error, off)\n", v);
                return 2;
            }
            rt_log_level = lvl;
        } else if (strcmp(argv[i], "--watch") == 0) {
            cfg->watch = 1;
        } else if (opt_value(argc, argv, &i, "--metrics", &v)) {
            metrics = v;
        } else if (opt_value(argc, argv, &i, "--log-format", &v)) {
            if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
                fprintf(stderr, "jetlua: --log-format: unknown format '%s' (text or json)\n", v);
                return 2;
            }
            rt_log_json = strcmp(v, "json") == 0;
        } else if (opt_value(argc, argv, &i, "--workers", &v)) {
            if ((workers = rt_workers_parse(v)) < 0) {
                fprintf(stderr, "jetlua: --workers: '%s' is not a number of workers from 1 to %d, or auto\n",
                        v, RT_WORKERS_MAX);
                return 2;
            }
        } else if (opt_value(argc, argv, &i, "--worker-index", &v)) {
            worker = atoi(v); /* set by the master (rt_workers.h) */
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            fprintf(stderr, "jetlua: unknown option '%s' (see jetlua --help)\n", argv[i]);
            return 2;
        }
        rt_workers_note_option(argv, at, i);
    }
    if (i >= argc) {
        fprintf(stderr, "jetlua: run needs a SCRIPT (see jetlua --help)\n");
        return 2;
    }
    if (cfg->nservers == 0 && (env = getenv("NATS_URL")) && *env) {
        char *copy = keep(env), *save = NULL; /* kept: cfg->servers points into it */
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (*tok)
                add_server(cfg, tok);
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        fprintf(stderr, "jetlua: --tls-cert and --tls-key go together\n");
        return 2;
    }
    hide_secrets(argc, argv, cfg);
    {
        char why[1024];
        if (rt_auth_resolve(cfg, why, sizeof why) != 0) {
            fprintf(stderr, "jetlua: %s\n", why);
            return 2;
        }
    }
    if (!cfg->state_dir)
        cfg->state_dir = getenv("JETLUA_STATE_DIR") ? getenv("JETLUA_STATE_DIR") : "./.jetlua";
    RT->script = argv[i];

    if (!rt_lua_dir(&v)) {
        fprintf(stderr, "jetlua: %s\n", v);
        return 1;
    }
    if (worker >= 0) {
        if (workers < 1 || worker >= workers) {
            fprintf(stderr, "jetlua: --worker-index is the master's (see --workers)\n");
            return 2;
        }
        rt_worker_index = worker;
        rt_worker_count = workers;
        metrics_fd = rt_workers_child_init();
    } else if (workers > 0) {
        return rt_workers_master(argv[0], argv + i, cfg, workers, metrics);
    }
    if (rt_init() != 0) {
        fprintf(stderr, "jetlua: cannot initialize the event loop\n");
        return 1;
    }
    rt_notify_watchdog_start(RT->loop);
    if (metrics) {
        char why[256];
        if (rt_http_start(metrics, why, sizeof why) != 0) {
            fprintf(stderr, "jetlua: --metrics: %s\n", why);
            return 2;
        }
    } else if (metrics_fd >= 0) {
        char why[256];
        if (rt_http_start_fd(metrics_fd, why, sizeof why) != 0)
            rt_error("worker %d: %s", rt_worker_index, why);
    }
    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "jetlua: cannot create the Lua state (out of memory?)\n");
        return 1;
    }
    RT->L = L;
    jl_open(L);

    /* the script's own directory first on package.path, so `require "x"`
     * finds x.lua next to the script wherever jetlua is started from */
    {
        /* absolute: a module's path must not depend on the current
         * directory (hot reload watches and compares these paths) */
        char dir[4096], abs[4096];
        const char *script = absolute_path(RT->script, abs, sizeof abs);
        const char *slash = strrchr(script, '/');
        if (slash)
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - script), script);
        else
            snprintf(dir, sizeof dir, ".");
        lua_getglobal(L, "package");
        lua_getfield(L, -1, "path");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
        lua_setfield(L, -3, "path");
        lua_pop(L, 2);
    }

    /* arg table, as the lua standalone interpreter builds it */
    lua_createtable(L, argc - i, 1);
    for (int k = i; k < argc; k++) {
        lua_pushstring(L, argv[k]);
        lua_rawseti(L, -2, k - i);
    }
    lua_setglobal(L, "arg");

    if (luaL_loadfile(L, RT->script) != 0) {
        if (rt_log_json)
            rt_error("%s", lua_tostring(L, -1));      /* one JSON object, like every log line */
        else
            fprintf(stderr, "jetlua: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        RT->exit_code = 1;
        RT->main_done = 1;
        rt_shutdown(1);
    } else {
        /* run it through the reload manager (jetlua/reload.lua), which
         * remembers what the script declared so SIGHUP / --watch can
         * reload it: reload.main(chunk, abs_path, args...) */
        int nargs = argc - i - 1;
        char abs[4096];
        lua_getglobal(L, "require");
        lua_pushliteral(L, "jetlua.reload");
        if (lua_pcall(L, 1, 1, 0) != 0) {
            /* a damaged Lua library: say so, never a LuaJIT PANIC */
            fprintf(stderr, "jetlua: cannot load jetlua's Lua library from %s: %s\n",
                    rt_lua_dir(NULL), lua_tostring(L, -1));
            lua_pop(L, 2);
            RT->exit_code = 1;
            RT->main_done = 1;
            rt_shutdown(1);
        } else {
            lua_getfield(L, -1, "main");
            lua_remove(L, -2);
            lua_insert(L, -2);                        /* main, chunk */
            lua_pushstring(L, absolute_path(RT->script, abs, sizeof abs));
            for (int k = i + 1; k < argc; k++)
                lua_pushstring(L, argv[k]);
            rt_ref();        /* held by the main chunk until it ends */
            rt_co_spawn(L, nargs + 2, "main chunk", main_done, NULL);
        }
    }
    rt_run();
    rt_http_stop();
    code = RT->exit_code;
    if (code == 0 && RT->unclean)
        code = 1;
    if (RT->unclean) {
        /* The shutdown timed out: threads may still be blocked in cnats or
         * the threadpool, so a full teardown could wait or touch freed
         * state. Exit now; the kernel reclaims the rest. */
        fflush(stdout);
        fflush(stderr);
        _exit(code);
    }
    rt_teardown();
    free(cfg->servers);
    /* finalizers at teardown may still report (an async publish failure
     * nobody looked at): they can only make the status worse */
    if (code == 0 && RT->exit_code != 0)
        code = RT->exit_code;
    return code;
}

/* The tools are Lua scripts (bindings/lua/jetlua/tools/<tool>.lua) run like
 * `jetlua run`: the run options may appear anywhere on the line, the rest
 * goes to the tool. They log warnings only, unless --log-level says else. */
static const char *const tools[] = {"stream", "consumer", "pub", "sub", "req", "kv", "micro", NULL};

static int cmd_tool(int argc, char **argv)
{
    static const char *const valued[] = {"--server", "--user", "--password", "--token", "--creds",
        "--password-file", "--token-file", "--nkey",
        "--tls-ca", "--tls-cert", "--tls-key", "--name", "--log-level", "--state-dir",
        "--shutdown-timeout", "--metrics", "--log-format", "--slow-handler", NULL};
    const char *why, *dir = rt_lua_dir(&why);
    const char **nv;
    char *used, *path;
    int n = 0, level = 0;

    if (!dir) {
        fprintf(stderr, "jetlua: %s\n", why);
        return 1;
    }
    nv = rt_xcalloc((size_t)argc + 8, sizeof *nv);
    used = rt_xcalloc((size_t)argc, 1);
    path = rt_xmalloc(strlen(dir) + 64);

    nv[n++] = argv[0];
    nv[n++] = "run";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;                        /* the rest is the tool's, even if it looks like an option */
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {    /* -s URL, as in the nats CLI */
            used[i] = used[i + 1] = 1;
            nv[n++] = "--server";
            nv[n++] = argv[++i];
            continue;
        }
        for (int k = 0; valued[k]; k++) {
            size_t l = strlen(valued[k]);
            if (strncmp(argv[i], valued[k], l) != 0 || (argv[i][l] != '=' && argv[i][l] != '\0'))
                continue;
            level |= strcmp(valued[k], "--log-level") == 0;
            used[i] = 1;
            nv[n++] = argv[i];
            if (argv[i][l] == '\0' && i + 1 < argc) {
                used[++i] = 1;
                nv[n++] = argv[i];
            }
            break;
        }
    }
    if (!level) {
        nv[n++] = "--log-level";
        nv[n++] = "warn";
    }
    sprintf(path, "%s/jetlua/tools/%s.lua", dir, argv[1]);
    nv[n++] = "--";
    nv[n++] = path;
    for (int i = 2; i < argc; i++)
        if (!used[i])
            nv[n++] = argv[i];
    nv[n] = NULL;
    free(used);
    n = cmd_run(n, (char **)nv, 2);
    free(nv);
    free(path);
    return n;
}

/* Room for deep recursion through C functions. LuaJIT runs every Lua
 * function, coroutines included, on this thread's C stack, and bounds only
 * its own Lua stack (65,500 slots: "stack overflow"). Recursion through a C
 * function that calls back into Lua -- string.gsub with a function, whose
 * frame holds an 8 KiB buffer -- used ~72 MiB of C stack before that error
 * came, measured, so under the usual 8 MiB limit a script's runaway
 * recursion was a segfault (test_stack_overflow). The main thread's stack
 * grows on demand up to the soft limit read at each fault, and the kernel
 * leaves at least 128 MiB below it free of mappings: so raise the soft limit
 * to 128 MiB (never above the hard limit). glibc sized the default thread
 * stacks at startup, so other threads are unchanged; child processes
 * inherit the raised soft limit. */
static void grow_stack(void)
{
    const rlim_t want = (rlim_t)128 << 20;
    struct rlimit r;
    if (getrlimit(RLIMIT_STACK, &r) != 0 || r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= want)
        return;
    r.rlim_cur = (r.rlim_max == RLIM_INFINITY || r.rlim_max >= want) ? want : r.rlim_max;
    setrlimit(RLIMIT_STACK, &r);
}

int main(int argc, char **argv)
{
    grow_stack();
    /* print() output reaches logs and pipes line by line, as a person expects */
    setvbuf(stdout, NULL, _IOLBF, 0);
    rt_notify_init();      /* before any thread: it edits the environment */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
        return cmd_version();
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc, argv, 2);
    if (strcmp(argv[1], "server") == 0)
        return rt_server_cli(argc, argv);
    for (int t = 0; tools[t]; t++)
        if (strcmp(argv[1], tools[t]) == 0)
            return cmd_tool(argc, argv);
    fprintf(stderr, "jetlua: unknown command '%s' (see jetlua --help)\n", argv[1]);
    return 2;
}
