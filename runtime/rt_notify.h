/*
 * rt_notify.h - the systemd notify protocol (sd_notify(3)), for
 * `Type=notify` units: READY=1 once the main chunk has returned,
 * RELOADING=1 / READY=1 around a hot reload, STOPPING=1 when the graceful
 * shutdown begins, and WATCHDOG=1 from the event loop when the unit sets
 * WatchdogSec= (so a loop held by a handler that never yields gets the
 * service restarted).
 *
 * The protocol is one datagram per state change on the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace); we speak it
 * ourselves instead of linking libsystemd: it is a few lines, it adds no
 * runtime dependency (containers and non-systemd hosts included), and the
 * same code is what the tests exercise with a plain socket listener.
 * Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef JETLUA_RT_NOTIFY_H
#define JETLUA_RT_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* Once, first thing in main (before any thread): reads NOTIFY_SOCKET,
 * WATCHDOG_USEC and WATCHDOG_PID and removes them from the environment, so
 * child processes (the embedded nats-server, jet.process) never speak for
 * us. */
void rt_notify_init(void);

/* 1 when $NOTIFY_SOCKET was given. */
int rt_notify_enabled(void);

/* Send one state datagram ("READY=1\nSTATUS=..."). 0 sent or disabled, -1
 * when the send failed (logged at debug: the service manager may be gone).
 * Any thread. */
int rt_notify(const char *state);

/* Convenience forms. status may be NULL. */
void rt_notify_ready(const char *status);
void rt_notify_reloading(void);          /* RELOADING=1 with MONOTONIC_USEC */
void rt_notify_stopping(void);

/* Watchdog: the interval systemd asked for (WATCHDOG_USEC, only when
 * WATCHDOG_PID is unset or ours), 0 when none. */
uint64_t rt_notify_watchdog_usec(void);
/* Start sending WATCHDOG=1 from the loop every half interval (an unref'd
 * timer: it never keeps the process alive). No-op without a watchdog. */
void rt_notify_watchdog_start(uv_loop_t *loop);

#endif
