/*
 * rt_server_guard.c - `jetlua server guard`: the small process that owns the
 * embedded nats-server of a state dir (see rt_server.h, rt_statedir.h).
 *
 * Why a process of its own: the server must outlive the jetlua that started
 * it while other jetluas use it, and must still never be orphaned, even when
 * every user is SIGKILLed. The guard is started (detached, in its own
 * session) by the first jetlua, inherits server.lock already locked on fd 3,
 * and starts nats-server as its child with a parent-death signal: if the
 * guard dies, so does the server. Every jetlua using the server holds a
 * shared flock on users.lock; the kernel drops it when the process exits or
 * is killed. The guard polls for an exclusive lock on users.lock: once it
 * gets one, no user is left, and it stops the server (SIGTERM, SIGKILL after
 * 10 s). SIGTERM to the guard (`jetlua server stop`) stops it too.
 *
 * Its output goes to DIR/nats-server.log, with the server's. Plain POSIX; no
 * libuv, no Lua: it blocks freely, it is alone in its process.
 */
#include "rt_server_guard.h"
#include "rt_paths.h"
#include "rt_statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FD 3

static void glog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void glog(const char *fmt, ...)
{
    char ts[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S", &tm);
    fprintf(stderr, "[%d] %s.%06ld [JETLUA] guard: ", (int)getpid(), ts, (long)tv.tv_usec);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static int port_open(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Wait up to ms for a signal of set; returns it, or 0 on timeout. */
static int wait_signal(const sigset_t *set, long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* The server exited? Reaps it; returns 1 and its status text in why. */
static int server_gone(pid_t pid, char *why, size_t n)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r != pid)
        return 0;
    if (WIFSIGNALED(st))
        snprintf(why, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(why, n, "exit status %d", WEXITSTATUS(st));
    return 1;
}

static void stop_server(pid_t pid, const sigset_t *set)
{
    char why[64];
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {          /* 10 s */
        if (server_gone(pid, why, sizeof why)) {
            glog("nats-server (pid %d) stopped (%s)", (int)pid, why);
            return;
        }
        if (wait_signal(set, 20) == SIGINT)
            break;                             /* asked twice: do not wait */
    }
    glog("nats-server (pid %d) did not stop in time: killing it", (int)pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int rt_server_guard(const char *dir, int port)
{
    char abs[PATH_MAX], err[PATH_MAX + 256], token[RT_TOKEN_LEN + 2], server[PATH_MAX];
    char conf[PATH_MAX + 32], path[PATH_MAX + 32], text[PATH_MAX * 2 + 256], why[64];
    sigset_t set, old;
    pid_t pid, me = getpid();
    int users, rc = 1;

    if (flock(LOCK_FD, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "jetlua server guard: this is started by jetlua itself (it needs the state dir's lock)\n");
        return 2;
    }
    fcntl(LOCK_FD, F_SETFD, FD_CLOEXEC);
    if (rt_sd_prepare(dir, 0, abs, sizeof abs, err, sizeof err) != 0 ||
        rt_sd_token(abs, 0, token, sizeof token, err, sizeof err) != 0) {
        glog("cannot use the state dir %s: %s", dir, err);
        return 1;
    }
    if (rt_find_in_path("nats-server", server, sizeof server) != 0) {
        glog("nats-server is not installed (apt-get install nats-server)");
        return 1;
    }
    rt_sd_path(conf, sizeof conf, abs, "server.conf");
    snprintf(text, sizeof text,
             "# Written by jetlua at each start of the embedded server of this state dir.\n"
             "listen: \"127.0.0.1:%d\"\n"
             "server_name: \"jetlua-embedded\"\n"
             "jetstream { store_dir: \"%s/jetstream\" }\n"
             "authorization { token: \"%s\" }\n",
             port, abs, token);
    memset(token, 0, sizeof token);
    if (rt_sd_write(abs, "server.conf", text) != 0) {
        memset(text, 0, sizeof text);
        glog("cannot write %s: %s", conf, strerror(errno));
        return 1;
    }
    memset(text, 0, sizeof text);
    rt_sd_path(path, sizeof path, abs, "users.lock");
    users = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (users < 0) {
        glog("cannot open %s: %s", path, strerror(errno));
        return 1;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    pid = fork();
    if (pid < 0) {
        glog("cannot start nats-server: %s", strerror(errno));
        close(users);
        return 1;
    }
    if (pid == 0) {
        /* the server dies with its guard, whatever kills the guard */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != me)
            _exit(1);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execl(server, "nats-server", "-c", conf, (char *)NULL);
        fprintf(stderr, "jetlua server guard: cannot run %s: %s\n", server, strerror(errno));
        _exit(127);
    }
    snprintf(text, sizeof text, "%d %d\n", (int)me, (int)pid);
    rt_sd_write(abs, "guard.pid", text);
    glog("started nats-server (pid %d) on 127.0.0.1:%d for %s", (int)pid, port, abs);

    /* ready when it accepts connections */
    for (int i = 0;; i++) {
        int sig;
        if (server_gone(pid, why, sizeof why)) {
            glog("nats-server exited before accepting connections (%s)", why);
            goto out;
        }
        if (port_open(port))
            break;
        if (i >= 500) {                        /* 10 s */
            glog("nats-server did not accept connections within 10s: stopping it");
            stop_server(pid, &set);
            goto out;
        }
        sig = wait_signal(&set, 20);
        if (sig == SIGTERM || sig == SIGINT) {
            glog("asked to stop while starting");
            stop_server(pid, &set);
            rc = 0;
            goto out;
        }
    }
    snprintf(text, sizeof text, "%d\n", port);
    rt_sd_write(abs, "server.port", text);
    snprintf(text, sizeof text, "nats://127.0.0.1:%d\n", port);
    if (rt_sd_write(abs, "server.url", text) != 0) {
        glog("cannot write %s/server.url: %s", abs, strerror(errno));
        stop_server(pid, &set);
        goto out;
    }
    glog("nats-server ready; it stops when no jetlua uses %s any more", abs);

    for (;;) {
        int sig = wait_signal(&set, 100);
        if (sig == SIGTERM || sig == SIGINT) {
            glog("asked to stop (signal %d)", sig);
            rt_sd_path(path, sizeof path, abs, "server.url");
            unlink(path);
            stop_server(pid, &set);
            rc = 0;
            break;
        }
        if (server_gone(pid, why, sizeof why)) {
            glog("nats-server exited unexpectedly (%s); the next jetlua in this state dir starts a new one", why);
            break;
        }
        if (flock(users, LOCK_EX | LOCK_NB) == 0) {
            /* held until we exit: a jetlua arriving now waits for the stop
             * to finish, then starts a new server */
            glog("no jetlua uses the server any more: stopping it");
            rt_sd_path(path, sizeof path, abs, "server.url");
            unlink(path);
            stop_server(pid, &set);
            rc = 0;
            break;
        }
    }
out:
    rt_sd_path(path, sizeof path, abs, "server.url");
    unlink(path);
    rt_sd_path(path, sizeof path, abs, "guard.pid");
    unlink(path);
    close(users);
    return rc;
}
