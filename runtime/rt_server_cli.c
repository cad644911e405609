/*
 * rt_server_cli.c - `jetlua server url|status|stop`: the embedded server of
 * a state dir, seen from the command line (see rt_statedir.h for the files).
 * Also the hidden `jetlua server guard`, which rt_server.c starts.
 */
#include "rt_server_cli.h"
#include "rt_server_guard.h"
#include "rt_statedir.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
"Usage: jetlua server url|status|stop [--state-dir DIR]\n"
"\n"
"The embedded nats-server of a state dir (default ./.jetlua, or $JETLUA_STATE_DIR):\n"
"the one `jetlua run` starts when no server is given. It requires a token that\n"
"jetlua keeps in DIR/token (mode 0600, DIR 0700), and runs while some jetlua uses it.\n"
"\n"
"  url     print its URL with the token, for your other programs:\n"
"          NATS_URL=$(jetlua server url) my-program\n"
"  status  say whether it runs, where, and which jetlua processes use it\n"
"  stop    stop it now (the jetlua processes using it lose their connection;\n"
"          the next jetlua started in DIR starts it again)\n"
"\n"
"Exit status: 0; 1 when no server runs (url, status) or it could not be stopped;\n"
"2 for a command-line mistake.\n";

static void print_user(int pid, const char *what, time_t since, void *data)
{
    char ts[32] = "?";
    struct tm tm;
    if (since > 0 && localtime_r(&since, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    printf("  pid %-8d %s (since %s)\n", pid, what, ts);
}

/* the pids in guard.pid, if that guard still holds the lock */
static int guard_pids(const char *abs, int *guard, int *server)
{
    char line[64];
    *guard = *server = 0;
    if (rt_sd_read_line(abs, "guard.pid", line, sizeof line) != 0 || sscanf(line, "%d %d", guard, server) != 2)
        return -1;
    return 0;
}

static int cmd_stop(const char *abs)
{
    int guard, server;
    if (!rt_sd_server_held(abs)) {
        printf("no embedded nats-server runs for %s\n", abs);
        return 0;
    }
    if (guard_pids(abs, &guard, &server) != 0 || guard <= 0 || kill(guard, SIGTERM) != 0) {
        fprintf(stderr, "jetlua: cannot stop the embedded nats-server of %s: %s\n", abs,
                guard > 0 ? strerror(errno) : "no guard.pid (is it still starting?)");
        return 1;
    }
    for (int i = 0; i < 300 && rt_sd_server_held(abs); i++) {   /* 15 s */
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (rt_sd_server_held(abs)) {
        fprintf(stderr, "jetlua: the embedded nats-server of %s did not stop within 15s (guard pid %d)\n", abs, guard);
        return 1;
    }
    printf("stopped the embedded nats-server of %s\n", abs);
    return 0;
}

int rt_server_cli(int argc, char **argv)
{
    const char *cmd = argc > 2 ? argv[2] : NULL, *dir = NULL;
    char abs[PATH_MAX], err[PATH_MAX + 256], token[RT_TOKEN_LEN + 2], url[64];
    int port = 0, r;

    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, cmd ? stdout : stderr);
        return cmd ? 0 : 2;
    }
    for (int i = 3; i < argc; i++) {
        const char *v = NULL;
        if (strncmp(argv[i], "--state-dir=", 12) == 0)
            dir = argv[i] + 12;
        else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(cmd, "guard") == 0 && strcmp(argv[i], "--port") == 0 && i + 1 < argc && (v = argv[++i]))
            port = atoi(v);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "jetlua server: unknown or incomplete option '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!dir)
        dir = getenv("JETLUA_STATE_DIR") && *getenv("JETLUA_STATE_DIR") ? getenv("JETLUA_STATE_DIR") : "./.jetlua";
    if (strcmp(cmd, "guard") == 0) {
        if (port <= 0 || port > 65535) {
            fprintf(stderr, "jetlua server guard: --port is required\n");
            return 2;
        }
        return rt_server_guard(dir, port);
    }
    if (strcmp(cmd, "url") != 0 && strcmp(cmd, "status") != 0 && strcmp(cmd, "stop") != 0) {
        fprintf(stderr, "jetlua server: unknown command '%s' (url, status, stop)\n", cmd);
        return 2;
    }
    r = rt_sd_prepare(dir, 0, abs, sizeof abs, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "jetlua: %s\n", err);
        return 1;
    }
    if (r == 1 || !rt_sd_server_held(abs) || rt_sd_read_line(abs, "server.url", url, sizeof url) != 0) {
        if (strcmp(cmd, "stop") == 0 && r == 0 && rt_sd_server_held(abs))
            return cmd_stop(abs);                  /* starting or stopping */
        if (strcmp(cmd, "stop") == 0) {
            printf("no embedded nats-server runs for %s\n", r == 1 ? dir : abs);
            return 0;
        }
        if (strcmp(cmd, "status") == 0)
            printf("not running (state dir %s)\n", r == 1 ? dir : abs);
        else
            fprintf(stderr, "jetlua: no embedded nats-server runs for %s (it runs while a jetlua started "
                            "there without --server runs)\n", r == 1 ? dir : abs);
        return 1;
    }
    if (strcmp(cmd, "stop") == 0)
        return cmd_stop(abs);
    if (strcmp(cmd, "url") == 0) {
        if (rt_sd_token(abs, 0, token, sizeof token, err, sizeof err) != 0 || strncmp(url, "nats://", 7) != 0) {
            fprintf(stderr, "jetlua: %s\n", err);
            return 1;
        }
        printf("nats://%s@%s\n", token, url + 7);
        memset(token, 0, sizeof token);
        return 0;
    }
    {
        int guard, server, n;
        guard_pids(abs, &guard, &server);
        printf("running at %s (token auth: `jetlua server url` prints the URL with it)\n", url);
        printf("state dir %s (store jetstream/, log nats-server.log)\n", abs);
        printf("nats-server pid %d, guard pid %d\n", server, guard);
        n = rt_sd_users(abs, NULL, NULL);
        printf("used by %d jetlua process%s%s\n", n, n == 1 ? "" : "es", n ? ":" : "");
        rt_sd_users(abs, print_user, NULL);
        return 0;
    }
}
