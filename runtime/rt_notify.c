/*
 * rt_notify.c - the systemd notify protocol (see rt_notify.h).
 */
#include "rt_notify.h"
#include "rt_log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t          addr_len;      /* 0: disabled */
static uint64_t           watchdog_usec;
static uv_timer_t         watchdog_timer;
static int                warned;

void rt_notify_init(void)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");

    if (sock && (sock[0] == '/' || sock[0] == '@') && strlen(sock) < sizeof addr.sun_path) {
        size_t n = strlen(sock);
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        memcpy(addr.sun_path, sock, n);
        if (sock[0] == '@')
            addr.sun_path[0] = '\0';          /* abstract namespace: no trailing NUL counted */
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (sock[0] == '/'));
    } else if (sock && *sock) {
        fprintf(stderr, "jetlua: NOTIFY_SOCKET='%s' is not a socket path or @name: ignored\n", sock);
    }
    if (addr_len && usec && *usec) {
        char *end;
        unsigned long long v = strtoull(usec, &end, 10);
        int ours = !pid || !*pid || strtol(pid, NULL, 10) == (long)getpid();
        if (*end == '\0' && v > 0 && ours)
            watchdog_usec = v;
    }
    /* like sd_notify(unset_environment=1): children must not speak for us */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int rt_notify_enabled(void)
{
    return addr_len != 0;
}

int rt_notify(const char *state)
{
    int fd, r;
    if (!addr_len)
        return 0;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    do
        r = (int)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
    while (r < 0 && errno == EINTR);
    if (r < 0 && !warned) {
        warned = 1;   /* once: a service manager that went away says so often */
        rt_warn("systemd notify: cannot send to NOTIFY_SOCKET: %s", strerror(errno));
    }
    close(fd);
    return r < 0 ? -1 : 0;
}

void rt_notify_ready(const char *status)
{
    char buf[512];
    if (!addr_len)
        return;
    if (status)
        snprintf(buf, sizeof buf, "READY=1\nSTATUS=%s", status);
    else
        snprintf(buf, sizeof buf, "READY=1");
    rt_notify(buf);
}

void rt_notify_reloading(void)
{
    char buf[96];
    struct timespec ts;
    if (!addr_len)
        return;
    /* MONOTONIC_USEC: what systemd 253+ wants with RELOADING=1 */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof buf, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
    rt_notify(buf);
}

void rt_notify_stopping(void)
{
    rt_notify("STOPPING=1\nSTATUS=shutting down");
}

uint64_t rt_notify_watchdog_usec(void)
{
    return watchdog_usec;
}

static void on_watchdog(uv_timer_t *t)
{
    rt_notify("WATCHDOG=1");
}

void rt_notify_watchdog_start(uv_loop_t *loop)
{
    uint64_t ms;
    if (!watchdog_usec)
        return;
    ms = watchdog_usec / 2000u;        /* every half interval, as sd_watchdog_enabled(3) advises */
    if (ms == 0)
        ms = 1;
    uv_timer_init(loop, &watchdog_timer);
    uv_timer_start(&watchdog_timer, on_watchdog, 0, ms);
    uv_unref((uv_handle_t *)&watchdog_timer);
}
