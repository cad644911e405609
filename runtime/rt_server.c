/*
 * rt_server.c - the embedded default nats-server, jetlua's side (see
 * rt_server.h, rt_statedir.h, rt_server_guard.c).
 *
 * On first use: make the state dir (0700) and its token (0600), take a
 * shared lock on users.lock (this process now keeps the server alive), then
 * poll every 20 ms until the server of the state dir is ready. If no guard
 * holds server.lock, this process starts one: it takes server.lock itself
 * and hands it, locked, to the guard it spawns (fd 3), so two jetluas
 * starting at once start one server. Everything here is a few small local
 * file operations and a timer: the loop never waits.
 */
#include "rt.h"
#include "rt_mem.h"
#include "rt_server.h"
#include "rt_paths.h"
#include "rt_statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct waiter {
    rt_server_cb   cb;
    void          *data;
    struct waiter *next;
} waiter;

enum { S_NONE = 0, S_JOINING, S_READY, S_FAILED, S_STOPPED };

static struct {
    int          state;
    char         dir[PATH_MAX];
    char         token[RT_TOKEN_LEN + 2];
    char         url[64];
    char         err[PATH_MAX + 512];
    int          users_fd;     /* shared lock on users.lock once has_users */
    int          has_users;
    int          me_fd;        /* users/PID */
    waiter      *waiters;
    uv_timer_t   tick;
    uint64_t     deadline;
    uv_process_t guard;
    int          guard_live;   /* the handle is open */
    int          guard_exited; /* the guard we started exited */
    int          started;      /* this process started the current guard */
    int          starts;
    void       (*stop_done)(void *);
    void        *stop_data;
} S = { .users_fd = -1, .me_fd = -1 };

static void notify(void)
{
    waiter *w = S.waiters;
    S.waiters = NULL;
    while (w) {
        waiter *next = w->next;
        if (S.state == S_READY)
            w->cb(S.url, S.token, NULL, w->data);
        else
            w->cb(NULL, NULL, S.state == S_FAILED ? S.err : "jetlua is shutting down", w->data);
        free(w);
        w = next;
    }
}

static void fail(const char *fmt, const char *a)
{
    snprintf(S.err, sizeof S.err, fmt, a);
    S.state = S_FAILED;
    rt_error("%s", S.err);
    notify();
}

/* The port of the last run when it is free (other jetluas still connected
 * to it reconnect to the new server), else a free one. */
static int choose_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char line[32];
    int want = rt_sd_read_line(S.dir, "server.port", line, sizeof line) == 0 ? atoi(line) : 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1, one = 1;
        if (fd < 0)
            return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);   /* as nats-server does */
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)(attempt == 0 ? want : 0));
        if ((attempt > 0 || (want > 0 && want < 65536)) && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
            port = ntohs(a.sin_port);
        close(fd);
        if (port > 0)
            return port;
    }
    return -1;
}

static void guard_exited(uv_process_t *p, int64_t status, int sig)
{
    S.guard_exited = 1;
    uv_close((uv_handle_t *)p, NULL);
    S.guard_live = 0;
}

/* Take server.lock and hand it to a new guard. 0 started, 1 someone else
 * holds the lock, -1 failed (S.err set). */
static int start_guard(void)
{
    char lockp[PATH_MAX + 32], logp[PATH_MAX + 32], exe[PATH_MAX], portbuf[16];
    const char *args[8];
    size_t exelen = sizeof exe;
    uv_process_options_t o;
    uv_stdio_container_t io[4];
    int fd, logfd, port, r;

    rt_sd_path(lockp, sizeof lockp, S.dir, "server.lock");
    fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(S.err, sizeof S.err, "cannot open %s: %s", lockp, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 1;
    }
    rt_sd_path(logp, sizeof logp, S.dir, "server.url");
    unlink(logp);                                  /* a dead guard's */
    if ((port = choose_port()) < 0 || uv_exepath(exe, &exelen) != 0) {
        close(fd);
        snprintf(S.err, sizeof S.err, "cannot find a free port or the jetlua binary for the embedded server");
        return -1;
    }
    snprintf(portbuf, sizeof portbuf, "%d", port);
    rt_sd_path(logp, sizeof logp, S.dir, "nats-server.log");
    logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    args[0] = exe;
    args[1] = "server";
    args[2] = "guard";
    args[3] = "--state-dir";
    args[4] = S.dir;
    args[5] = "--port";
    args[6] = portbuf;
    args[7] = NULL;
    memset(&o, 0, sizeof o);
    io[0].flags = UV_IGNORE;
    io[1].flags = io[2].flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    io[1].data.fd = io[2].data.fd = logfd;
    io[3].flags = UV_INHERIT_FD;                   /* the locked server.lock */
    io[3].data.fd = fd;
    o.file = exe;
    o.args = (char **)args;
    /* Its own session: a Ctrl-C in the terminal reaches jetlua only; the
     * guard (and so the server) outlives this jetlua while others use it. */
    o.flags = UV_PROCESS_DETACHED;
    o.exit_cb = guard_exited;
    o.stdio = io;
    o.stdio_count = 4;
    r = uv_spawn(RT->loop, &S.guard, &o);
    close(fd);                                     /* the guard's copy keeps the lock */
    if (logfd >= 0)
        close(logfd);
    if (r != 0) {
        uv_close((uv_handle_t *)&S.guard, NULL);
        snprintf(S.err, sizeof S.err, "cannot start the embedded server's guard: %s", uv_strerror(r));
        return -1;
    }
    S.guard_live = 1;
    S.guard_exited = 0;
    S.started = 1;
    S.starts++;
    uv_unref((uv_handle_t *)&S.guard);
    rt_debug("starting the embedded nats-server on 127.0.0.1:%d (guard pid %d)", port, S.guard.pid);
    return 0;
}

static void tick(uv_timer_t *t)
{
    if (S.state != S_JOINING)
        return;
    if (!S.has_users) {
        /* fails only while a guard is stopping a server nobody used */
        if (flock(S.users_fd, LOCK_SH | LOCK_NB) == 0)
            S.has_users = 1;
    }
    if (S.has_users) {
        if (rt_sd_server_held(S.dir)) {
            char line[64];
            if (rt_sd_read_line(S.dir, "server.url", line, sizeof line) == 0 &&
                strncmp(line, "nats://127.0.0.1:", 17) == 0) {
                snprintf(S.url, sizeof S.url, "%s", line);
                S.state = S_READY;
                if (S.started)
                    rt_info("embedded nats-server started at %s (token auth; state dir %s: store jetstream/, log nats-server.log)",
                            S.url, S.dir);
                else
                    rt_info("using the embedded nats-server of %s at %s, started by another jetlua", S.dir, S.url);
                notify();
                return;
            }
        } else if (S.started && S.guard_exited && S.starts >= 2) {
            fail("the embedded nats-server did not start; see %s/nats-server.log", S.dir);
            return;
        } else {
            int r;
            if (S.started && S.guard_exited)
                rt_warn("the embedded nats-server did not start; trying once more (see %s/nats-server.log)", S.dir);
            r = start_guard();
            if (r < 0) {
                S.state = S_FAILED;
                rt_error("%s", S.err);
                notify();
                return;
            }
        }
    }
    if (uv_now(RT->loop) > S.deadline) {
        fail("the embedded nats-server did not become ready within 15s; see %s/nats-server.log", S.dir);
        return;
    }
    uv_timer_start(&S.tick, tick, 20, 0);
}

static void begin(void)
{
    char path[PATH_MAX + 32], what[PATH_MAX + 16];
    const char *dir = RT->cfg.state_dir ? RT->cfg.state_dir : "./.jetlua";
    char err[sizeof S.err];

    if (rt_find_in_path("nats-server", NULL, 0) != 0) {
        fail("%s", "nats-server is not installed: apt-get install nats-server "
                   "(or run scripts/setup.sh), or pass --server URL");
        return;
    }
    if (rt_sd_prepare(dir, 1, S.dir, sizeof S.dir, err, sizeof err) != 0 ||
        rt_sd_token(S.dir, 1, S.token, sizeof S.token, err, sizeof err) != 0) {
        fail("%s", err);
        return;
    }
    rt_sd_path(path, sizeof path, S.dir, "users.lock");
    S.users_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (S.users_fd < 0) {
        snprintf(err, sizeof err, "cannot open %s: %s", path, strerror(errno));
        fail("%s", err);
        return;
    }
    {
        /* for `jetlua server status`: the tool, or the script's full path */
        const char *script = RT->script ? RT->script : "?", *tool = strstr(script, "/jetlua/tools/");
        char *abs = tool ? NULL : realpath(script, NULL);
        if (tool)
            snprintf(what, sizeof what, "jetlua %.*s", (int)strcspn(tool + 14, "."), tool + 14);
        else
            snprintf(what, sizeof what, "jetlua run %s", abs ? abs : script);
        free(abs);
    }
    S.me_fd = rt_sd_user_add(S.dir, what);
    if (!S.tick.loop) {
        uv_timer_init(RT->loop, &S.tick);
        uv_unref((uv_handle_t *)&S.tick);
    }
    S.state = S_JOINING;
    S.started = 0;
    S.starts = 0;
    S.deadline = uv_now(RT->loop) + 15000;
    tick(&S.tick);
}

void rt_server_ensure(rt_server_cb cb, void *data)
{
    waiter *w;
    if (S.state == S_READY) {
        if (rt_sd_server_held(S.dir)) {
            cb(S.url, S.token, NULL, data);
            return;
        }
        /* stopped behind our back (`jetlua server stop`, a crash): start
         * a new one on the same store, token and (if free) port */
        rt_warn("the embedded nats-server of %s is gone: starting it again", S.dir);
        S.state = S_JOINING;
        S.started = 0;
        S.starts = 0;
        S.deadline = uv_now(RT->loop) + 15000;
        uv_timer_start(&S.tick, tick, 0, 0);
    }
    if (S.state == S_FAILED || S.state == S_STOPPED) {
        cb(NULL, NULL, S.state == S_FAILED ? S.err : "jetlua is shutting down", data);
        return;
    }
    w = rt_xmalloc(sizeof *w);
    w->cb = cb;
    w->data = data;
    w->next = S.waiters;
    S.waiters = w;
    if (S.state == S_NONE)
        begin();
}

static void stop_finish(void)
{
    void (*done)(void *) = S.stop_done;
    if (S.tick.loop && !uv_is_closing((uv_handle_t *)&S.tick))
        uv_close((uv_handle_t *)&S.tick, NULL);
    S.stop_done = NULL;
    if (done)
        done(S.stop_data);
}

/* The last user waits (bounded) for the guard to stop the server, so that
 * "jetlua exited" means "the server stopped", as a service manager that
 * kills what is left of the unit after the main process expects. */
static void stop_tick(uv_timer_t *t)
{
    if (!rt_sd_server_held(S.dir) || rt_sd_users(S.dir, NULL, NULL) > 0 || uv_now(RT->loop) > S.deadline) {
        stop_finish();
        return;
    }
    uv_timer_start(&S.tick, stop_tick, 20, 0);
}

void rt_server_stop(void (*done)(void *data), void *data)
{
    int was = S.state, user = S.has_users;
    S.state = S_STOPPED;
    if (was == S_JOINING)
        notify();
    if (S.tick.loop)
        uv_timer_stop(&S.tick);
    if (S.guard_live && !uv_is_closing((uv_handle_t *)&S.guard))
        uv_close((uv_handle_t *)&S.guard, NULL);   /* the guard runs on */
    S.guard_live = 0;
    if (S.me_fd >= 0)
        rt_sd_user_remove(S.dir, S.me_fd);
    S.me_fd = -1;
    if (S.users_fd >= 0)
        close(S.users_fd);          /* the guard stops the server if we were the last */
    S.users_fd = -1;
    S.has_users = 0;
    memset(S.token, 0, sizeof S.token);
    S.stop_done = done;
    S.stop_data = data;
    if (user && rt_sd_server_held(S.dir) && rt_sd_users(S.dir, NULL, NULL) == 0) {
        rt_debug("the last user of the embedded nats-server: waiting for it to stop");
        S.deadline = uv_now(RT->loop) + 12000;     /* the guard's own bound is 10 s */
        uv_ref((uv_handle_t *)&S.tick);            /* the loop waits for it */
        uv_timer_start(&S.tick, stop_tick, 20, 0);
        return;
    }
    stop_finish();
}

void rt_server_kill_now(void)
{
}

int rt_server_running(void)
{
    return S.has_users;
}
