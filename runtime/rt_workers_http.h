/*
 * rt_workers_http.h - the --workers master's HTTP endpoint: one /metrics
 * summed over the workers (each serves its own on a private socket), and
 * /livez, /readyz that reflect them. It sees the workers only through the
 * views function it is started with, so it never calls rt_workers.c.
 */
#ifndef JETLUA_RT_WORKERS_HTTP_H
#define JETLUA_RT_WORKERS_HTTP_H

#include <stddef.h>

#define RT_WORKERS_MAX 256

/* A worker slot as the HTTP threads see it (a copy, taken under a lock). */
typedef struct rt_worker_view {
    int index;
    int running; /* a process runs in this slot */
    int pid;
    unsigned incarnation; /* starts so far */
    unsigned restarts;
    int ready;      /* said READY=1 since it started or last reloaded */
    char why[96];   /* when not running: "is restarting (exit status 1)" ... */
    char addr[108]; /* its metrics socket (abstract: addr[0] == '\0') */
    unsigned addrlen;
} rt_worker_view;

/* Fill views (cap entries); returns the worker count, and *stopping = 1
 * once the master shuts down. Called from the HTTP threads. */
typedef int (*rt_workers_views_fn)(rt_worker_view *views, int cap, int *stopping);

/* A worker's incarnation ended, so its last scraped counters join the dead
 * workers' sums. Loop thread. */
void rt_workers_http_retire(int index);
/* Serve --metrics for the master (rt_http with a router). */
int rt_workers_http_start(const char *hostport, rt_workers_views_fn views, char *err, size_t errlen);
void rt_workers_http_stop(void);

#endif
