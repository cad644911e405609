/*
 * rt_promtext.h - read the Prometheus text format (0.0.4) that
 * rt_metrics_render writes, merge several processes' outputs into one, and
 * write it back: the --workers master's /metrics (rt_workers_http.c).
 *
 * The merge follows prometheus_client's multiprocess mode:
 *  - counters and histograms are summed per series (same sample name and
 *    label set; a histogram's _bucket, _sum and _count lines alike), so
 *    dashboards made for one process keep working;
 *  - gauges are not summed (a sum of num_pending that every worker reads
 *    from the same consumer, or of start times, means nothing): each
 *    process's gauge keeps its own series, told apart by one added label.
 * Label sets are compared as text: every process renders them the same way
 * (the same code, names in the same order), so no reordering is needed.
 *
 * Lua-free and thread-agnostic (a value owns all its memory); unit-tested in
 * tests/unit/test_promtext.c.
 */
#ifndef JETLUA_RT_PROMTEXT_H
#define JETLUA_RT_PROMTEXT_H

#include <stddef.h>

typedef struct rt_prom rt_prom;

enum { RT_PROM_UNTYPED = 0, RT_PROM_COUNTER, RT_PROM_GAUGE, RT_PROM_HISTOGRAM, RT_PROM_SUMMARY };

rt_prom *rt_prom_new(void);
void rt_prom_free(rt_prom *p);

/* Add the families and samples of text[0..len) to p (samples already in p
 * with the same name and labels are summed, as rt_prom_add does for
 * counters). 0, or -1 with the line and what is wrong in err (p then holds
 * what came before that line). */
int rt_prom_parse(rt_prom *p, const char *text, size_t len, char *err, size_t errlen);

/* Add src into dst. Counter, histogram and summary samples are summed per
 * series. Gauge and untyped samples: with label_name, copied with
 * label_name="label_value" appended to their labels (a series that already
 * has a label of that name gets "jetlua_<label_name>" instead); with
 * label_name NULL, left out. A family whose type in dst differs is skipped;
 * a family new to dst is appended (first-seen order). */
void rt_prom_add(rt_prom *dst, const rt_prom *src, const char *label_name, const char *label_value);

/* Forget a family (e.g. one whose name the caller writes itself). */
void rt_prom_drop(rt_prom *p, const char *name);

/* Families with at least one sample, in first-seen order: HELP (when any),
 * TYPE, samples. Values as rt_metric_format_value writes them. Caller frees. */
char *rt_prom_render(const rt_prom *p, size_t *len);

/* The value of one sample, given as it is written: `name` or
 * `name{a="x",b="y"}`. 1 and *v when present, else 0. For tests. */
int rt_prom_value(const rt_prom *p, const char *series, double *v);
/* The type of a family, or -1 when p has none of that name. */
int rt_prom_type(const rt_prom *p, const char *name);

#endif
