/*
 * rt_procmetrics.h - the process_* series operators look for (the names and
 * meanings of Prometheus' client libraries): process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds. Read from
 * /proc and getrusage at each render (a few syscalls). Linux only.
 */
#ifndef JETLUA_RT_PROCMETRICS_H
#define JETLUA_RT_PROCMETRICS_H

/* Register the series and their collector (loop thread; idempotent). */
void rt_procmetrics_start(void);

#endif
