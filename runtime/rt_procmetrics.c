/*
 * rt_procmetrics.c - process_* metrics (see rt_procmetrics.h).
 */
#include "rt_procmetrics.h"
#include "rt_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static rt_series *m_cpu, *m_rss, *m_vsize, *m_fds, *m_max_fds, *m_start;

/* When the process started, in seconds since the epoch: its start in clock
 * ticks after boot (/proc/self/stat field 22) plus the boot time (btime in
 * /proc/stat). Falls back to now. */
static double start_time(void)
{
    char buf[1024], *p;
    unsigned long long ticks = 0, btime = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');       /* the command name may hold spaces */
    if (p) {
        /* after ")": field 3 (state) ... field 22 (starttime) */
        int field = 2;
        for (char *t = p + 1; *t && field < 22; t++)
            if (*t == ' ' && ++field == 22)
                ticks = strtoull(t + 1, NULL, 10);
    }
    f = fopen("/proc/stat", "r");
    if (f) {
        while (fgets(buf, sizeof buf, f))
            if (strncmp(buf, "btime ", 6) == 0)
                btime = strtoull(buf + 6, NULL, 10);
        fclose(f);
    }
    if (ticks == 0 || btime == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec;
    }
    return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static void collect(void)
{
    struct rusage ru;
    struct rlimit rl;
    unsigned long long vsize = 0, rss = 0;
    long page = sysconf(_SC_PAGESIZE);
    DIR *d;
    FILE *f;

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        rt_metric_set(m_cpu, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    if ((f = fopen("/proc/self/statm", "r")) != NULL) {
        if (fscanf(f, "%llu %llu", &vsize, &rss) == 2) {
            rt_metric_set(m_vsize, (double)vsize * (double)page);
            rt_metric_set(m_rss, (double)rss * (double)page);
        }
        fclose(f);
    }
    if ((d = opendir("/proc/self/fd")) != NULL) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        rt_metric_set(m_fds, (double)(n - 1));     /* not the one reading the directory */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        rt_metric_set(m_max_fds, (double)rl.rlim_cur);
}

void rt_procmetrics_start(void)
{
    if (m_cpu)
        return;
    m_cpu = rt_metric_simple("process_cpu_seconds_total", RT_COUNTER, "Total user and system CPU time spent in seconds.");
    m_rss = rt_metric_simple("process_resident_memory_bytes", RT_GAUGE, "Resident memory size in bytes.");
    m_vsize = rt_metric_simple("process_virtual_memory_bytes", RT_GAUGE, "Virtual memory size in bytes.");
    m_fds = rt_metric_simple("process_open_fds", RT_GAUGE, "Number of open file descriptors.");
    m_max_fds = rt_metric_simple("process_max_fds", RT_GAUGE, "Maximum number of open file descriptors.");
    m_start = rt_metric_simple("process_start_time_seconds", RT_GAUGE,
                               "Start time of the process since unix epoch in seconds.");
    rt_metric_set(m_start, start_time());
    rt_metrics_collector(collect);
}
