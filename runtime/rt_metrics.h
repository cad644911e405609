/*
 * rt_metrics.h - counters, gauges and histograms, rendered in the Prometheus
 * text format 0.0.4 (served by rt_http.c on --metrics HOST:PORT).
 *
 * A family is a metric name with a type and help text; a series is one set
 * of label values in it. Series are created once and then updated through
 * their pointer: an update is one add, no lookup. Loop thread only.
 *
 * The output follows the text format exactly, whatever a script feeds it:
 * HELP text escapes '\' and newline, label values escape '\', '"' and
 * newline, invalid UTF-8 becomes U+FFFD, values are NaN, +Inf, -Inf or the
 * shortest decimal that reads back as the same double, and nothing is cut.
 */
#ifndef JETLUA_RT_METRICS_H
#define JETLUA_RT_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum { RT_COUNTER = 0, RT_GAUGE, RT_HISTOGRAM };

typedef struct rt_series {
    char             *labels;    /* rendered: a="x",b="y" (empty: none) */
    double            value;     /* counter / gauge; histogram: sum */
    uint64_t          count;     /* histogram: observations */
    uint64_t         *buckets;   /* histogram: count per bound (not cumulative) */
    const double     *bounds;    /* histogram: the family's upper bounds */
    int               nbounds;
    struct rt_series *next;
} rt_series;

/* Validation, for error messages: NULL when fine, else a reason.
 * Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*,
 * not starting with "__" (reserved by Prometheus). */
const char *rt_metric_name_invalid(const char *name);
const char *rt_metric_label_invalid(const char *name);

/* Find or create the series. labels: rendered label set (see
 * rt_metric_labels). bounds (histograms only, ascending, finite, may be
 * NULL for the default). Returns NULL and sets *err when the name already
 * exists with another type, or would collide with a histogram's
 * <name>_bucket/_sum/_count series. */
rt_series *rt_metric(const char *name, int type, const char *help, const char *labels,
                     const double *bounds, int nbounds, const char **err);

/* Render label pairs (names[i] = values[i], in the order given) with the
 * text format's escaping and invalid UTF-8 replaced. The _dup form returns
 * a malloc'd string (caller frees). The fixed-buffer form returns the
 * length the whole set needs; when that is >= cap it writes "" (never a
 * cut label set). */
char  *rt_metric_labels_dup(const char *const *names, const char *const *values, int n);
size_t rt_metric_labels(char *out, size_t cap, const char *const *names, const char *const *values, int n);

void rt_metric_add(rt_series *s, double v);
void rt_metric_set(rt_series *s, double v);
void rt_metric_observe(rt_series *s, double v);

/* A collector runs on the loop right before each render, to refresh
 * series that are sampled rather than counted (process_*, HTTP). */
void rt_metrics_collector(void (*fn)(void));

/* The whole registry in the text exposition format; caller frees. */
char *rt_metrics_render(size_t *len);

/* Format a sample value as the text format wants it (NaN, +Inf, -Inf, or
 * the shortest round-trip decimal). out needs 32 bytes. */
void rt_metric_format_value(char *out, size_t cap, double v);

/* Built-in series (created on first use). */
rt_series *rt_metric_simple(const char *name, int type, const char *help);

#endif
