/*
 * rt_workers.c - the --workers master (see rt_workers.h; what passes to a
 * worker, and the worker's side: rt_workers_cmdline.c).
 *
 * Why exec and not fork: a worker must be a whole, fresh jetlua. The master
 * runs libmicrohttpd's threads (--metrics), and a child forked from a
 * threaded process may only call async-signal-safe functions until it
 * execs: no malloc, no libuv, no cnats. Executing /proc/self/exe gives each
 * worker (and each restart) a clean process of the very same binary (even
 * when the file was replaced on disk meanwhile), fresh address-space
 * randomisation, and a command line that says which worker it is.
 *
 * The master is one libuv loop: uv_spawn and its exit callbacks for the
 * workers, uv_signal for SIGHUP/SIGTERM/SIGINT, a timer per restart, and a
 * poll handle on the datagram socket the workers' notify messages reach.
 *
 * Life of a worker slot:
 *   RUNNING --exit 0, on its own--> DONE (the script finished: not restarted)
 *   RUNNING --crash--> WAITING --backoff--> RUNNING   (0.1 s doubling to 30 s;
 *           back to 0.1 s after a run of 10 s or more)
 *   RUNNING --crash before it was ever ready, on its first start--> DONE, and
 *           the master stops the others and exits with that status (a
 *           mistake in the script or its options would only crash again)
 *   any --master shuts down--> DONE once the process is gone
 */
#include "rt_workers.h"
#include "rt_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the master ---- */

enum { W_RUNNING = 0, W_WAITING, W_DONE };

typedef struct slot {
    int index;
    uv_process_t proc;
    uv_timer_t timer; /* restart backoff */
    int state;
    int proc_open; /* proc handle not closed yet */
    int pid;
    unsigned incarnation, restarts;
    uint64_t started_ms;
    double backoff;
    int ready, ever_ready, reload_wait;
    int last_status; /* exit code, or 128 + signal */
    int final;       /* exit status once DONE */
    int killed;      /* SIGKILLed at the shutdown bound */
    char why[96];
    uint64_t last_ping; /* WATCHDOG=1 */
    int listen_fd;      /* its metrics socket, -1 without --metrics */
    struct sockaddr_un addr;
    socklen_t addrlen;
} slot;

static struct {
    uv_loop_t *loop;
    slot *slots;
    int n;
    pthread_mutex_t mu; /* the fields rt_workers_views copies */
    uv_signal_t sigs[3];
    uv_timer_t bound, wd;
    uv_poll_t notify;
    int notify_fd;
    int stopping, forced, exit_code, ready_sent, reloading, http;
    double shutdown_s;
    char **args; /* the workers' command line; args[index_at] is the index */
    int index_at;
    char **env;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER, .notify_fd = -1};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

int rt_workers_views(rt_worker_view *views, int cap, int *stopping)
{
    pthread_mutex_lock(&M.mu);
    for (int i = 0; i < M.n && i < cap; i++) {
        slot *s = &M.slots[i];
        rt_worker_view *v = &views[i];
        memset(v, 0, sizeof *v);
        v->index = i;
        v->running = s->state == W_RUNNING && s->pid > 0;
        v->pid = s->pid;
        v->incarnation = s->incarnation;
        v->restarts = s->restarts;
        v->ready = s->ready;
        snprintf(v->why, sizeof v->why, "%s", s->why);
        memcpy(v->addr, &s->addr.sun_path, sizeof v->addr);
        v->addrlen = s->addrlen > offsetof(struct sockaddr_un, sun_path)
                         ? (unsigned)(s->addrlen - offsetof(struct sockaddr_un, sun_path))
                         : 0;
    }
    *stopping = M.stopping;
    pthread_mutex_unlock(&M.mu);
    return M.n;
}

static void describe(char *out, size_t cap, int64_t status, int sig)
{
    if (sig)
        snprintf(out, cap, "was killed by signal %d (SIG%s)", sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    else
        snprintf(out, cap, "exited with status %d", (int)status);
}

/* An abstract AF_UNIX address: "\0jetlua-<master pid>-<random>-<what>". */
static void abstract_addr(struct sockaddr_un *a, socklen_t *len, const char *what)
{
    static unsigned rnd;
    if (!rnd && getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (unsigned)uv_hrtime();
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "jetlua-%d-%08x-%s", (int)getpid(), rnd, what);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

static void maybe_finish(void);
static void begin_shutdown(int sig, int code);

static void check_ready(void)
{
    int running = 0, all = 1;
    for (int i = 0; i < M.n; i++) {
        slot *s = &M.slots[i];
        running += s->state == W_RUNNING;
        all &= s->state == W_DONE || (s->state == W_RUNNING && s->ready);
    }
    if (!M.ready_sent && all && running > 0 && !M.stopping) {
        char st[64];
        M.ready_sent = 1;
        snprintf(st, sizeof st, "%d worker(s) running", running);
        rt_info("workers: all %d ready", running);
        rt_notify_ready(st);
    }
}

static void check_reloaded(void)
{
    char st[96];
    int running = 0;
    if (!M.reloading)
        return;
    for (int i = 0; i < M.n; i++) {
        if (M.slots[i].reload_wait)
            return;
        running += M.slots[i].state == W_RUNNING;
    }
    M.reloading = 0;
    snprintf(st, sizeof st, "%d worker(s) running; reloaded", running);
    if (!M.stopping)
        rt_notify_ready(st);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig);

static void on_proc_closed(uv_handle_t *h)
{
    slot *s = h->data;
    s->proc_open = 0;
    maybe_finish();
}

/* Start the worker of slot s. 0, or -1 (logged). */
static int spawn(slot *s)
{
    char idx[16];
    uv_process_options_t o;
    uv_stdio_container_t io[4];
    int r;

    snprintf(idx, sizeof idx, "%d", s->index);
    M.args[M.index_at] = idx;
    memset(&o, 0, sizeof o);
    memset(io, 0, sizeof io);
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = 1;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    io[3].flags = UV_INHERIT_FD;
    io[3].data.fd = s->listen_fd;
    o.file = "/proc/self/exe";
    o.args = M.args;
    o.env = M.env;
    o.stdio = io;
    o.stdio_count = s->listen_fd >= 0 ? 4 : 3;
    o.exit_cb = on_exit_cb;
    /* a session of its own: the terminal's Ctrl-C (SIGINT to the foreground
     * process group) reaches the master, which forwards it once */
    o.flags = UV_PROCESS_DETACHED;
    r = uv_spawn(M.loop, &s->proc, &o);
    M.args[M.index_at] = NULL;
    if (r != 0) {
        rt_error("workers: cannot start worker %d: %s", s->index, uv_strerror(r));
        if (!uv_is_closing((uv_handle_t *)&s->proc)) {
            s->proc.data = s;
            s->proc_open = 1;
            uv_close((uv_handle_t *)&s->proc, on_proc_closed);
        }
        return -1;
    }
    s->proc.data = s;
    s->proc_open = 1;
    pthread_mutex_lock(&M.mu);
    s->pid = s->proc.pid;
    s->state = W_RUNNING;
    s->incarnation++;
    s->ready = 0;
    s->why[0] = '\0';
    pthread_mutex_unlock(&M.mu);
    s->started_ms = now_ms();
    s->last_ping = 0;
    return 0;
}

static void schedule_restart(slot *s, double delay, const char *what);

static void on_restart(uv_timer_t *t)
{
    slot *s = t->data;
    if (M.stopping || s->state != W_WAITING)
        return;
    if (s->proc_open) { /* the last one's handle is still closing */
        uv_timer_start(&s->timer, on_restart, 10, 0);
        return;
    }
    if (spawn(s) != 0) {
        schedule_restart(s, s->backoff, "could not be started");
        return;
    }
    s->restarts++;
    rt_info("workers: worker %d restarted (pid %d; restart #%u)", s->index, s->pid, s->restarts);
}

static void schedule_restart(slot *s, double delay, const char *what)
{
    s->backoff = delay * 2 > RT_WORKERS_BACKOFF_MAX ? RT_WORKERS_BACKOFF_MAX : delay * 2;
    pthread_mutex_lock(&M.mu);
    s->state = W_WAITING;
    s->pid = 0;
    s->ready = 0;
    snprintf(s->why, sizeof s->why, "is restarting (it %s)", what);
    pthread_mutex_unlock(&M.mu);
    uv_timer_start(&s->timer, on_restart, (uint64_t)(delay * 1000.0), 0);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    slot *s = p->data;
    double ran = (double)(now_ms() - s->started_ms) / 1000.0;
    int pid = s->pid;
    char what[80];

    describe(what, sizeof what, status, sig);
    s->last_status = sig ? 128 + sig : (int)status;
    uv_close((uv_handle_t *)p, on_proc_closed);
    pthread_mutex_lock(&M.mu);
    s->pid = 0; /* first: see rt_workers_http.c's metrics() */
    pthread_mutex_unlock(&M.mu);
    rt_workers_http_retire(s->index);
    s->reload_wait = 0;

    if (M.stopping || s->last_status == 0 || (!s->ever_ready && s->incarnation == 1)) {
        int first_failure = !M.stopping && s->last_status != 0;
        pthread_mutex_lock(&M.mu);
        s->state = W_DONE;
        s->pid = 0;
        s->ready = 0;
        s->final = s->killed ? 1 : s->last_status;
        snprintf(s->why, sizeof s->why, "has exited (it %s)", what);
        pthread_mutex_unlock(&M.mu);
        if (first_failure) {
            rt_error("workers: worker %d (pid %d) %s on its first start, before it was ready: "
                     "stopping the others (a mistake in the script or its options would only fail again)",
                     s->index, pid, what);
            begin_shutdown(SIGTERM, s->last_status);
        } else if (M.stopping) {
            if (s->last_status == 0)
                rt_info("workers: worker %d (pid %d) %s", s->index, pid, what);
            else
                rt_warn("workers: worker %d (pid %d) %s", s->index, pid, what);
        } else {
            rt_info("workers: worker %d (pid %d) finished: %s; it is not restarted", s->index, pid, what);
        }
        check_reloaded();
        check_ready();
        maybe_finish();
        return;
    }
    if (ran >= RT_WORKERS_STABLE)
        s->backoff = RT_WORKERS_BACKOFF_MIN;
    rt_warn("workers: worker %d (pid %d) %s after %.1fs: restarting it in %.1fs", s->index, pid, what, ran,
            s->backoff);
    schedule_restart(s, s->backoff, what);
    check_reloaded();
}

static void forward(int sig)
{
    for (int i = 0; i < M.n; i++)
        if (M.slots[i].state == W_RUNNING && M.slots[i].pid > 0)
            kill(M.slots[i].pid, sig);
}

static void on_kill_bound(uv_timer_t *t)
{
    for (int i = 0; i < M.n; i++) {
        slot *s = &M.slots[i];
        if (s->state == W_RUNNING && s->pid > 0) {
            rt_error("workers: worker %d (pid %d) did not stop in time: killing it", s->index, s->pid);
            s->killed = 1;
            kill(s->pid, SIGKILL);
        }
    }
}

static void begin_shutdown(int sig, int code)
{
    if (code && !M.exit_code)
        M.exit_code = code;
    if (M.stopping)
        return;
    pthread_mutex_lock(&M.mu);
    M.stopping = 1;
    pthread_mutex_unlock(&M.mu);
    rt_notify_stopping();
    for (int i = 0; i < M.n; i++) {
        slot *s = &M.slots[i];
        if (s->state == W_WAITING) {
            uv_timer_stop(&s->timer);
            pthread_mutex_lock(&M.mu);
            s->state = W_DONE;
            s->final = s->last_status; /* it was down: say so in the exit status */
            pthread_mutex_unlock(&M.mu);
        }
    }
    forward(sig);
    uv_timer_start(&M.bound, on_kill_bound, (uint64_t)((M.shutdown_s + RT_WORKERS_MARGIN) * 1000.0), 0);
    maybe_finish();
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void maybe_finish(void)
{
    for (int i = 0; i < M.n; i++)
        if (M.slots[i].state != W_DONE || M.slots[i].proc_open)
            return;
    /* every worker has exited: close what keeps the loop running */
    for (int i = 0; i < 3; i++)
        close_if_open((uv_handle_t *)&M.sigs[i]);
    close_if_open((uv_handle_t *)&M.bound);
    close_if_open((uv_handle_t *)&M.wd);
    close_if_open((uv_handle_t *)&M.notify);
    for (int i = 0; i < M.n; i++)
        close_if_open((uv_handle_t *)&M.slots[i].timer);
}

static void on_signal(uv_signal_t *h, int sig)
{
    const char *name = sig == SIGHUP ? "SIGHUP" : sig == SIGINT ? "SIGINT" : "SIGTERM";
    int running = 0;
    for (int i = 0; i < M.n; i++)
        running += M.slots[i].state == W_RUNNING;
    if (sig == SIGHUP) {
        if (M.stopping)
            return;
        rt_info("workers: received SIGHUP: reloading %d worker(s)", running);
        for (int i = 0; i < M.n; i++)
            if (M.slots[i].state == W_RUNNING && M.slots[i].ever_ready)
                M.slots[i].reload_wait = 1;
        if (!M.reloading) {
            M.reloading = 1;
            rt_notify_reloading();
        }
        forward(SIGHUP);
        check_reloaded();
        return;
    }
    if (!M.stopping) {
        rt_info("workers: received %s: stopping %d worker(s) gracefully (send it again to force)", name,
                running);
        begin_shutdown(sig, 0);
        return;
    }
    if (!M.forced) {
        M.forced = 128 + sig;
        rt_error("workers: received %s again: forced exit of %d worker(s)", name, running);
        forward(sig); /* a second signal: each worker exits at once */
        uv_timer_start(&M.bound, on_kill_bound, 2000, 0);
    }
}

/* ---- notify messages from the workers ---- */

static slot *by_pid(pid_t pid)
{
    for (int i = 0; i < M.n; i++)
        if (M.slots[i].state == W_RUNNING && M.slots[i].pid == pid)
            return &M.slots[i];
    return NULL;
}

static void notified(slot *s, const char *line)
{
    if (strcmp(line, "READY=1") == 0) {
        pthread_mutex_lock(&M.mu);
        s->ready = 1;
        pthread_mutex_unlock(&M.mu);
        s->ever_ready = 1;
        s->reload_wait = 0;
        check_reloaded();
        check_ready();
    } else if (strcmp(line, "RELOADING=1") == 0) {
        s->reload_wait = 1;
        if (!M.reloading && !M.stopping) { /* a reload of its own (--watch) */
            M.reloading = 1;
            rt_notify_reloading();
        }
    } else if (strcmp(line, "STOPPING=1") == 0) {
        pthread_mutex_lock(&M.mu);
        s->ready = 0;
        pthread_mutex_unlock(&M.mu);
    } else if (strcmp(line, "WATCHDOG=1") == 0) {
        s->last_ping = now_ms();
    }
}

static void on_notify(uv_poll_t *h, int status, int events)
{
    for (;;) {
        char buf[4096], *line, *save = NULL;
        union {
            struct cmsghdr h;
            /* cppcheck-suppress unusedStructMember ; it sizes the union for the credentials */
            char b[CMSG_SPACE(sizeof(struct ucred))];
        } ctl;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr m;
        struct ucred *cred = NULL;
        ssize_t n;
        slot *s;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = &ctl;
        m.msg_controllen = sizeof ctl;
        n = recvmsg(M.notify_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
                cred = (struct ucred *)CMSG_DATA(c);
        if (!cred || !(s = by_pid(cred->pid)))
            continue; /* only our workers speak here */
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            notified(s, line);
    }
}

static int notify_start(char *env_value, size_t cap)
{
    struct sockaddr_un a;
    socklen_t len;
    int one = 1;
    abstract_addr(&a, &len, "notify");
    M.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (M.notify_fd < 0 || bind(M.notify_fd, (struct sockaddr *)&a, len) != 0 ||
        setsockopt(M.notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        return -1;
    snprintf(env_value, cap, "NOTIFY_SOCKET=@%s", a.sun_path + 1);
    uv_poll_init(M.loop, &M.notify, M.notify_fd);
    uv_poll_start(&M.notify, UV_READABLE, on_notify);
    return 0;
}

/* systemd's watchdog: ping it while every running worker pings us */
static void on_watchdog(uv_timer_t *t)
{
    uint64_t limit = rt_notify_watchdog_usec() / 1000u, now = now_ms();
    for (int i = 0; i < M.n; i++) {
        slot *s = &M.slots[i];
        uint64_t last = s->last_ping > s->started_ms ? s->last_ping : s->started_ms;
        if (s->state == W_RUNNING && now - last >= limit) {
            rt_warn("workers: worker %d (pid %d) has not pinged for %.1fs: not pinging systemd's watchdog",
                    s->index, s->pid, (double)(now - last) / 1000.0);
            return;
        }
    }
    rt_notify("WATCHDOG=1");
}

/* ---- setup ---- */

static int metrics_socket(slot *s, char *err, size_t errlen)
{
    char what[16];
    snprintf(what, sizeof what, "w%d", s->index);
    abstract_addr(&s->addr, &s->addrlen, what);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&s->addr, s->addrlen) != 0 ||
        listen(s->listen_fd, 64) != 0) {
        snprintf(err, errlen, "cannot make worker %d's metrics socket: %s", s->index, strerror(errno));
        return -1;
    }
    return 0;
}

int rt_workers_master(const char *argv0, char **script_argv, const rt_cfg *cfg, int count,
                      const char *metrics)
{
    static const int signums[3] = {SIGHUP, SIGTERM, SIGINT};
    char notify[160], err[512];
    int password = 0, token = 0, code = 0;

    M.loop = uv_default_loop();
    RT->loop = M.loop; /* rt_http's heartbeat runs on it */
    M.n = count;
    M.shutdown_s = cfg->shutdown_timeout > 0 ? cfg->shutdown_timeout : 10.0;
    M.slots = calloc((size_t)count, sizeof *M.slots);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < count; i++) {
        M.slots[i].index = i;
        M.slots[i].listen_fd = -1;
        M.slots[i].backoff = RT_WORKERS_BACKOFF_MIN;
        M.slots[i].state = W_DONE; /* until it is started */
        uv_timer_init(M.loop, &M.slots[i].timer);
        M.slots[i].timer.data = &M.slots[i];
        if (metrics && metrics_socket(&M.slots[i], err, sizeof err) != 0) {
            fprintf(stderr, "jetlua: --workers: %s\n", err);
            return 1;
        }
    }
    if (notify_start(notify, sizeof notify) != 0) {
        fprintf(stderr, "jetlua: --workers: cannot make the master's notify socket: %s\n", strerror(errno));
        return 1;
    }
    M.args = rt_workers_args(argv0, script_argv, count, &M.index_at, &password, &token);
    M.env = rt_workers_env(cfg, password, token, notify, metrics != NULL);
    if (metrics) {
        if (rt_workers_http_start(metrics, err, sizeof err) != 0) {
            fprintf(stderr, "jetlua: --metrics: %s\n", err);
            return 2;
        }
        M.http = 1;
    }
    for (int i = 0; i < 3; i++) {
        uv_signal_init(M.loop, &M.sigs[i]);
        uv_signal_start(&M.sigs[i], on_signal, signums[i]);
    }
    uv_timer_init(M.loop, &M.bound);
    uv_timer_init(M.loop, &M.wd);
    if (rt_notify_watchdog_usec()) {
        uint64_t ms = rt_notify_watchdog_usec() / 2000u;
        uv_timer_start(&M.wd, on_watchdog, ms ? ms : 1, ms ? ms : 1);
    }
    rt_info("workers: master pid %d starting %d worker(s)", (int)getpid(), count);
    for (int i = 0; i < count; i++) {
        slot *s = &M.slots[i];
        if (spawn(s) != 0) {
            pthread_mutex_lock(&M.mu);
            s->state = W_DONE;
            s->final = 1;
            pthread_mutex_unlock(&M.mu);
            begin_shutdown(SIGTERM, 1);
            break;
        }
        rt_info("workers: worker %d started (pid %d)", i, s->pid);
    }
    uv_run(M.loop, UV_RUN_DEFAULT);

    if (M.http)
        rt_workers_http_stop();
    uv_walk(M.loop, walk_close, NULL); /* rt_http's unref'd heartbeat handles */
    uv_run(M.loop, UV_RUN_DEFAULT);
    code = M.forced ? M.forced : M.exit_code;
    for (int i = 0; i < count && code == 0; i++)
        code = M.slots[i].final;
    rt_info("workers: every worker has exited; the master exits with status %d", code);
    for (int i = 0; i < count; i++)
        if (M.slots[i].listen_fd >= 0)
            close(M.slots[i].listen_fd);
    close(M.notify_fd);
    uv_loop_close(M.loop);
    return code;
}
