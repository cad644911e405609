/*
 * test_promtext.c - reading back what rt_metrics_render writes and merging
 * several processes' metrics (rt_promtext.c, the --workers master's /metrics).
 */
#include "check.h"
#include "rt_metrics.h"
#include "rt_promtext.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int value_is(const rt_prom *p, const char *series, double want)
{
    double v = -12345;
    int ok = rt_prom_value(p, series, &v) && (v == want || (isnan(v) && isnan(want)));
    if (!ok)
        fprintf(stderr, "%s: got %g, want %g\n", series, v, want);
    return ok;
}

static rt_prom *parsed(const char *text)
{
    char err[200] = "";
    rt_prom *p = rt_prom_new();
    int r = rt_prom_parse(p, text, strlen(text), err, sizeof err);
    if (r != 0)
        fprintf(stderr, "parse: %s\n", err);
    CHECK(r == 0);
    return p;
}

static const char *W0 = "# HELP jobs_total jobs done\n"
                        "# TYPE jobs_total counter\n"
                        "jobs_total{queue=\"a\"} 3\n"
                        "jobs_total{queue=\"b\\\"}\\n\"} 1.5\n"
                        "# TYPE depth gauge\n"
                        "depth{queue=\"a\"} 7\n"
                        "depth 1\n"
                        "# TYPE lat histogram\n"
                        "lat_bucket{le=\"0.1\"} 1\n"
                        "lat_bucket{le=\"1\"} 2\n"
                        "lat_bucket{le=\"+Inf\"} 3\n"
                        "lat_sum 4.5\n"
                        "lat_count 3\n"
                        "# TYPE mine gauge\n"
                        "mine{worker=\"x\"} 5\n";

static const char *W1 = "# TYPE jobs_total counter\n"
                        "jobs_total{queue=\"a\"} 10\n"
                        "jobs_total{queue=\"c\"} 2\n"
                        "# HELP depth queue depth\n"
                        "# TYPE depth gauge\n"
                        "depth{queue=\"a\"} 8\n"
                        "# TYPE lat histogram\n"
                        "lat_bucket{le=\"0.1\"} 0\n"
                        "lat_bucket{le=\"1\"} 1\n"
                        "lat_bucket{le=\"+Inf\"} 1\n"
                        "lat_sum 0.5\n"
                        "lat_count 1\n"
                        "# TYPE only_one counter\n"
                        "only_one NaN\n";

int main(void)
{
    const char *err = NULL;
    char why[200];
    size_t len;
    char *text, *again;

    /* what the registry renders reads back and renders the same, byte for byte */
    {
        const char *names[] = {"kind", "path"};
        const char *vals[] = {"new \"x\"", "a\\b\nc \xff"};
        char *labels = rt_metric_labels_dup(names, vals, 2);
        static const double bounds[] = {0.5, 2};
        rt_series *c = rt_metric("t_orders_total", RT_COUNTER, "orders\\seen\nhere", labels, NULL, 0, &err);
        rt_series *g = rt_metric("t_depth", RT_GAUGE, "", "", NULL, 0, &err);
        rt_series *h = rt_metric("t_work_seconds", RT_HISTOGRAM, "work", labels, bounds, 2, &err);
        rt_prom *p;
        free(labels);
        rt_metric_add(c, 3);
        rt_metric_set(g, -INFINITY);
        rt_metric_observe(h, 0.1);
        rt_metric_observe(h, 3);
        rt_metric_add(rt_metric_simple("t_pi", RT_GAUGE, "pi"), 3.141592653589793);
        text = rt_metrics_render(&len);
        p = parsed(text);
        again = rt_prom_render(p, &len);
        CHECK(strcmp(text, again) == 0);
        if (strcmp(text, again) != 0)
            fprintf(stderr, "---\n%s---\n%s---\n", text, again);
        CHECK(rt_prom_type(p, "t_work_seconds") == RT_PROM_HISTOGRAM);
        CHECK(rt_prom_type(p, "t_depth") == RT_PROM_GAUGE);
        CHECK(rt_prom_type(p, "t_work_seconds_bucket") == -1);
        CHECK(value_is(p, "t_depth", -INFINITY));
        CHECK(value_is(p, "t_pi", 3.141592653589793));
        free(text);
        free(again);
        rt_prom_free(p);
    }

    /* two workers, then a third incarnation's leftovers: counters and histograms
     * summed, gauges kept apart by a worker label */
    {
        rt_prom *w0 = parsed(W0), *w1 = parsed(W1), *sum = rt_prom_new();
        rt_prom_add(sum, w0, "worker", "0");
        rt_prom_add(sum, w1, "worker", "1");
        CHECK(value_is(sum, "jobs_total{queue=\"a\"}", 13));
        CHECK(value_is(sum, "jobs_total{queue=\"b\\\"}\\n\"}", 1.5));
        CHECK(value_is(sum, "jobs_total{queue=\"c\"}", 2));
        CHECK(value_is(sum, "lat_bucket{le=\"0.1\"}", 1));
        CHECK(value_is(sum, "lat_bucket{le=\"1\"}", 3));
        CHECK(value_is(sum, "lat_bucket{le=\"+Inf\"}", 4));
        CHECK(value_is(sum, "lat_sum", 5));
        CHECK(value_is(sum, "lat_count", 4));
        CHECK(value_is(sum, "only_one", NAN));
        CHECK(value_is(sum, "depth{queue=\"a\",worker=\"0\"}", 7));
        CHECK(value_is(sum, "depth{queue=\"a\",worker=\"1\"}", 8));
        CHECK(value_is(sum, "depth{worker=\"0\"}", 1));
        CHECK(!rt_prom_value(sum, "depth{queue=\"a\"}", &(double){0}));
        /* a series with its own worker label keeps it */
        CHECK(value_is(sum, "mine{worker=\"x\",jetlua_worker=\"0\"}", 5));
        /* leftovers of a dead worker: counters only (label NULL) */
        rt_prom_add(sum, w1, NULL, NULL);
        CHECK(value_is(sum, "jobs_total{queue=\"a\"}", 23));
        CHECK(value_is(sum, "lat_count", 5));
        CHECK(value_is(sum, "depth{queue=\"a\",worker=\"1\"}", 8));
        text = rt_prom_render(sum, &len);
        CHECK(
            strstr(text,
                   "# HELP jobs_total jobs done\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 23\n") !=
            NULL);
        CHECK(strstr(text,
                     "# HELP depth queue depth\n# TYPE depth gauge\ndepth{queue=\"a\",worker=\"0\"} 7\n") !=
              NULL);
        CHECK(strstr(text, "lat_bucket{le=\"+Inf\"} 5\nlat_sum 5.5\nlat_count 5\n") != NULL);
        /* the merged text reads back the same */
        {
            rt_prom *back = parsed(text);
            again = rt_prom_render(back, &len);
            CHECK(strcmp(text, again) == 0);
            free(again);
            rt_prom_free(back);
        }
        free(text);
        rt_prom_drop(sum, "depth");
        rt_prom_drop(sum, "nothing");
        CHECK(rt_prom_type(sum, "depth") == -1);
        CHECK(!rt_prom_value(sum, "depth{queue=\"a\",worker=\"0\"}", &(double){0}));
        rt_prom_add(sum, w0, "worker", "0"); /* it comes back, fresh */
        CHECK(value_is(sum, "depth{queue=\"a\",worker=\"0\"}", 7));
        text = rt_prom_render(sum, &len);
        CHECK(strstr(text, "depth{queue=\"a\",worker=\"0\"} 7\ndepth{worker=\"0\"} 1\n") != NULL);
        free(text);
        /* a family of another type in dst is left alone */
        {
            rt_prom *other = parsed("# TYPE jobs_total gauge\njobs_total{queue=\"a\"} 100\n");
            rt_prom_add(sum, other, "worker", "2");
            CHECK(value_is(sum, "jobs_total{queue=\"a\"}", 26)); /* 23 + w0's 3 again */
            rt_prom_free(other);
        }
        rt_prom_free(w0);
        rt_prom_free(w1);
        rt_prom_free(sum);
    }

    /* many series: the hash table grows */
    {
        rt_prom *a = rt_prom_new(), *b = rt_prom_new();
        char line[100];
        for (int i = 0; i < 5000; i++) {
            snprintf(line, sizeof line, "# TYPE n counter\nn{i=\"%d\"} %d\n", i, i);
            CHECK(rt_prom_parse(a, line, strlen(line), why, sizeof why) == 0);
        }
        rt_prom_add(b, a, "worker", "0");
        rt_prom_add(b, a, "worker", "1");
        CHECK(value_is(b, "n{i=\"4999\"}", 9998));
        CHECK(value_is(b, "n{i=\"0\"}", 0));
        rt_prom_free(a);
        rt_prom_free(b);
    }

    /* bad input: the line and the reason */
    {
        static const char *const bad[] = {"x{a=\"1\" 2\n", "x{a=1} 2\n",      "x 1.2.3\n",
                                          "x\n",           "{a=\"b\"} 1\n",   "# TYPE x bogus\n",
                                          "x{a=\"1\"}2\n", "x{1a=\"1\"} 2\n", NULL};
        for (int i = 0; bad[i]; i++) {
            rt_prom *p = rt_prom_new();
            int r = rt_prom_parse(p, bad[i], strlen(bad[i]), why, sizeof why);
            CHECK(r == -1);
            if (r == -1)
                CHECK(strncmp(why, "line 1: ", 8) == 0);
            else
                fprintf(stderr, "accepted: %s", bad[i]);
            rt_prom_free(p);
        }
        {
            rt_prom *p = rt_prom_new();
            CHECK(rt_prom_parse(p, "a 1\nb 2\n\0c 3\n", 12, why, sizeof why) == -1);
            CHECK(strncmp(why, "line 3: ", 8) == 0);
            CHECK(value_is(p, "b", 2));
            rt_prom_free(p);
        }
        {
            rt_prom *p = parsed("# a comment\n\nx{a=\"1\",} 2 1700000000\n");
            CHECK(value_is(p, "x{a=\"1\"}", 2));
            rt_prom_free(p);
        }
    }
    return DONE();
}
