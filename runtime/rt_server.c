/*
 * rt_server.c - the embedded default nats-server (see rt_server.h).
 *
 * Started lazily by the first jet.connect() without servers, with uv_spawn
 * (never blocking the loop), through `setpriv --pdeathsig KILL` when
 * available so the server dies with jetlua even on SIGKILL. Readiness is
 * polled with non-blocking TCP connects. One jetlua per state dir owns the
 * server (flock on <state>/server.lock); another jetlua started in the same
 * dir reads <state>/server.url and shares it.
 */
#include "rt.h"
#include "rt_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

typedef struct waiter {
    rt_server_cb   cb;
    void          *data;
    struct waiter *next;
} waiter;

enum { S_NONE = 0, S_STARTING, S_READY, S_SHARED, S_FAILED, S_STOPPING };

static struct {
    int            state;
    uv_process_t   proc;
    int            proc_live;
    volatile pid_t pid;
    int            port;
    int            lock_fd;
    char           url[64];
    char           dir[PATH_MAX];
    char           err[PATH_MAX + 512];
    waiter        *waiters;
    uv_timer_t     poll_timer;
    uv_tcp_t       probe;
    uv_connect_t   creq;
    uint64_t       deadline;
    void         (*stop_done)(void *);
    void          *stop_data;
    uv_timer_t     kill_timer;
} S = { .lock_fd = -1 };

static void notify(const char *url, const char *err)
{
    waiter *w = S.waiters;
    S.waiters = NULL;
    while (w) {
        waiter *next = w->next;
        w->cb(url, err, w->data);
        free(w);
        w = next;
    }
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int find_in_path(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, name);
        if (access(buf, X_OK) == 0) {
            snprintf(out, n, "%s", buf);
            return 0;
        }
        path += l + (path[l] == ':');
    }
    return -1;
}

static int mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return (mkdir(buf, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static void fail(const char *fmt, const char *a)
{
    snprintf(S.err, sizeof S.err, fmt, a);
    S.state = S_FAILED;
    rt_error("%s", S.err);
    notify(NULL, S.err);
}

/* ---- readiness polling ---- */

static void poll_again(uv_timer_t *t);

static void probe_closed(uv_handle_t *h)
{
    int status = (int)(intptr_t)S.creq.data;
    if (S.state != S_STARTING)
        return;
    if (status == 0) {
        char path[PATH_MAX + 16];
        FILE *f;
        S.state = S_READY;
        snprintf(path, sizeof path, "%s/server.url", S.dir);
        if ((f = fopen(path, "w"))) {
            fprintf(f, "%s\n", S.url);
            fclose(f);
        }
        rt_info("embedded nats-server started at %s (store %s/jetstream, log %s/nats-server.log)",
                S.url, S.dir, S.dir);
        notify(S.url, NULL);
        return;
    }
    if (uv_now(RT->loop) > S.deadline) {
        fail("the embedded nats-server did not accept connections within 10s (see %s/nats-server.log)", S.dir);
        return;
    }
    uv_timer_start(&S.poll_timer, poll_again, 20, 0);
}

static void on_probe(uv_connect_t *req, int status)
{
    req->data = (void *)(intptr_t)status;
    uv_close((uv_handle_t *)&S.probe, probe_closed);
}

static void poll_again(uv_timer_t *t)
{
    struct sockaddr_in a;
    if (S.state != S_STARTING)
        return;
    uv_ip4_addr("127.0.0.1", S.port, &a);
    uv_tcp_init(RT->loop, &S.probe);
    if (uv_tcp_connect(&S.creq, &S.probe, (const struct sockaddr *)&a, on_probe) != 0) {
        S.creq.data = (void *)(intptr_t)-1;
        uv_close((uv_handle_t *)&S.probe, probe_closed);
    }
}

/* ---- process ---- */

static void release_lock(void)
{
    char path[PATH_MAX + 16];
    if (S.lock_fd < 0)
        return;
    snprintf(path, sizeof path, "%s/server.url", S.dir);
    unlink(path);
    close(S.lock_fd);   /* releases the flock */
    S.lock_fd = -1;
}


static void proc_closed(uv_handle_t *h)
{
    S.proc_live = 0;
    release_lock();      /* only now: the store is free for another server */
    if (S.state == S_STOPPING) {
        S.state = S_NONE;
        if (S.stop_done)
            S.stop_done(S.stop_data);
    }
}

static void server_exited(uv_process_t *p, int64_t status, int sig)
{
    S.pid = 0;
    if (S.state == S_STARTING) {
        char why[128];
        snprintf(why, sizeof why, "exited (status %d, signal %d)", (int)status, sig);
        snprintf(S.err, sizeof S.err, "the embedded nats-server %s before accepting connections; see %s/nats-server.log",
                 why, S.dir);
        S.state = S_FAILED;
        rt_error("%s", S.err);
        notify(NULL, S.err);
    } else if (S.state == S_READY) {
        rt_error("the embedded nats-server exited unexpectedly (status %d, signal %d); see %s/nats-server.log",
                 (int)status, sig, S.dir);
        S.state = S_FAILED;
        snprintf(S.err, sizeof S.err, "the embedded nats-server exited");
    }
    uv_close((uv_handle_t *)p, proc_closed);
}

static void start(void)
{
    char server[PATH_MAX], setpriv[PATH_MAX], store[PATH_MAX + 16], logp[PATH_MAX + 32],
         lockp[PATH_MAX + 16], portbuf[16];
    const char *args[16];
    int n = 0, logfd;
    uv_process_options_t o;
    uv_stdio_container_t io[3];
    char *abs;
    const char *dir = RT->cfg.state_dir ? RT->cfg.state_dir : "./.jetlua";

    S.state = S_STARTING;
    if (find_in_path("nats-server", server, sizeof server) != 0) {
        fail("%s", "nats-server is not installed: apt-get install nats-server "
                   "(or run scripts/setup.sh), or pass --server URL");
        return;
    }
    if (mkdirs(dir) != 0 || !(abs = realpath(dir, NULL))) {
        fail("cannot create the state dir %s", dir);
        return;
    }
    snprintf(S.dir, sizeof S.dir, "%s", abs);
    free(abs);

    /* Another jetlua owns a server for this dir: share it. */
    snprintf(lockp, sizeof lockp, "%s/server.lock", S.dir);
    S.lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (S.lock_fd >= 0 && flock(S.lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char path[PATH_MAX + 16];
        FILE *f;
        close(S.lock_fd);
        S.lock_fd = -1;
        snprintf(path, sizeof path, "%s/server.url", S.dir);
        if ((f = fopen(path, "r")) && fgets(S.url, sizeof S.url, f)) {
            S.url[strcspn(S.url, "\r\n")] = 0;
            fclose(f);
            S.state = S_SHARED;
            rt_info("using the embedded server of another jetlua at %s (state dir %s)", S.url, S.dir);
            notify(S.url, NULL);
            return;
        }
        if (f)
            fclose(f);
        fail("another jetlua is starting an embedded server in %s; try again or pass --state-dir", S.dir);
        return;
    }

    S.port = free_port();
    snprintf(portbuf, sizeof portbuf, "%d", S.port);
    snprintf(S.url, sizeof S.url, "nats://127.0.0.1:%d", S.port);
    snprintf(store, sizeof store, "%s/jetstream", S.dir);
    snprintf(logp, sizeof logp, "%s/nats-server.log", S.dir);
    logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (find_in_path("setpriv", setpriv, sizeof setpriv) == 0) {
        args[n++] = setpriv;
        args[n++] = "--pdeathsig";
        args[n++] = "KILL";
        args[n++] = "--";
    }
    args[n++] = server;
    args[n++] = "-a";
    args[n++] = "127.0.0.1";
    args[n++] = "-p";
    args[n++] = portbuf;
    args[n++] = "-js";
    args[n++] = "-sd";
    args[n++] = store;
    args[n++] = "--server_name";
    args[n++] = "jetlua-embedded";
    args[n] = NULL;

    memset(&o, 0, sizeof o);
    io[0].flags = UV_IGNORE;
    io[1].flags = io[2].flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    io[1].data.fd = io[2].data.fd = logfd;
    o.file = args[0];
    o.args = (char **)args;
    /* Its own session: a Ctrl-C in the terminal (SIGINT to the whole
     * foreground process group) reaches jetlua only, which then stops the
     * server in order; setpriv's pdeathsig still kills it if jetlua dies. */
    o.flags = UV_PROCESS_DETACHED;
    o.exit_cb = server_exited;
    o.stdio = io;
    o.stdio_count = 3;
    int r = uv_spawn(RT->loop, &S.proc, &o);
    if (logfd >= 0)
        close(logfd);
    if (r != 0) {
        fail("cannot start nats-server: %s", uv_strerror(r));
        return;
    }
    S.proc_live = 1;
    S.pid = S.proc.pid;
    uv_unref((uv_handle_t *)&S.proc);
    uv_timer_init(RT->loop, &S.poll_timer);
    uv_unref((uv_handle_t *)&S.poll_timer);
    S.deadline = uv_now(RT->loop) + 10000;
    uv_timer_start(&S.poll_timer, poll_again, 20, 0);
}

void rt_server_ensure(rt_server_cb cb, void *data)
{
    waiter *w;
    if (S.state == S_READY || S.state == S_SHARED) {
        cb(S.url, NULL, data);
        return;
    }
    if (S.state == S_FAILED || S.state == S_STOPPING) {
        cb(NULL, S.state == S_FAILED ? S.err : "jetlua is shutting down", data);
        return;
    }
    w = malloc(sizeof *w);
    w->cb = cb;
    w->data = data;
    w->next = S.waiters;
    S.waiters = w;
    if (S.state == S_NONE)
        start();
}

static void kill_fired(uv_timer_t *t)
{
    if (S.pid > 0) {
        rt_warn("the embedded nats-server did not stop in 5s: killing it");
        kill(S.pid, SIGKILL);
    }
}

void rt_server_stop(void (*done)(void *data), void *data)
{
    if (S.state == S_STARTING)
        notify(NULL, "jetlua is shutting down");
    if (S.poll_timer.loop)
        uv_close((uv_handle_t *)&S.poll_timer, NULL);
    if (!S.proc_live) {
        release_lock();
        S.state = S_NONE;
        done(data);
        return;
    }
    S.state = S_STOPPING;
    S.stop_done = done;
    S.stop_data = data;
    if (S.pid > 0)
        kill(S.pid, SIGTERM);
    uv_timer_init(RT->loop, &S.kill_timer);
    uv_timer_start(&S.kill_timer, kill_fired, 5000, 0);
    uv_unref((uv_handle_t *)&S.kill_timer);
    uv_ref((uv_handle_t *)&S.proc);   /* wait for its exit */
}

void rt_server_kill_now(void)
{
    pid_t p = S.pid;
    if (p > 0)
        kill(p, SIGKILL);
}

int rt_server_running(void)
{
    return S.proc_live;
}
