/*
 * test_metrics_text.c - the text the registry renders (rt_metrics.c) for
 * hostile input: escaping, invalid UTF-8, NaN/Inf, long label sets, name
 * collisions.
 */
#include "check.h"
#include "rt_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *text;

static int has(const char *s)
{
    int ok = strstr(text, s) != NULL;
    if (!ok)
        fprintf(stderr, "missing: [%s]\n", s);
    return ok;
}

static void render(void)
{
    size_t n;
    free(text);
    text = rt_metrics_render(&n);
}

int main(void)
{
    const char *err = NULL;
    char buf[64];

    /* values */
    rt_metric_format_value(buf, sizeof buf, NAN);          CHECK(strcmp(buf, "NaN") == 0);
    rt_metric_format_value(buf, sizeof buf, -NAN);         CHECK(strcmp(buf, "NaN") == 0);
    rt_metric_format_value(buf, sizeof buf, INFINITY);     CHECK(strcmp(buf, "+Inf") == 0);
    rt_metric_format_value(buf, sizeof buf, -INFINITY);    CHECK(strcmp(buf, "-Inf") == 0);
    rt_metric_format_value(buf, sizeof buf, 42);           CHECK(strcmp(buf, "42") == 0);
    rt_metric_format_value(buf, sizeof buf, -0.0);         CHECK(strcmp(buf, "0") == 0);
    rt_metric_format_value(buf, sizeof buf, 0.1);          CHECK(strcmp(buf, "0.1") == 0);
    rt_metric_format_value(buf, sizeof buf, 1.0 / 3);      CHECK(strtod(buf, NULL) == 1.0 / 3);
    rt_metric_format_value(buf, sizeof buf, 1e300);        CHECK(strtod(buf, NULL) == 1e300);
    rt_metric_format_value(buf, sizeof buf, 1.7976931348623157e308);
    CHECK(strtod(buf, NULL) == 1.7976931348623157e308);
    rt_metric_format_value(buf, sizeof buf, 9.2233720368547758e18);   /* beyond int64 */
    CHECK(strtod(buf, NULL) == 9.2233720368547758e18);

    /* names */
    CHECK(rt_metric_name_invalid("a_b:c9") == NULL);
    CHECK(rt_metric_name_invalid(":a") == NULL);
    CHECK(rt_metric_name_invalid("9a") != NULL);
    CHECK(rt_metric_name_invalid("a-b") != NULL);
    CHECK(rt_metric_name_invalid("") != NULL);
    CHECK(rt_metric_name_invalid("\xc3\xa4") != NULL);
    CHECK(rt_metric_label_invalid("a:b") != NULL);
    CHECK(rt_metric_label_invalid("__x") != NULL);
    CHECK(rt_metric_label_invalid("_x") == NULL);

    /* HELP escapes '\' and newline; invalid UTF-8 becomes U+FFFD */
    rt_metric_set(rt_metric_simple("g1", RT_GAUGE, "two\nlines \\ \"q\" \xff ok \xc3\xa4"), NAN);
    /* label values: '\', '"', newline, invalid UTF-8 (lone byte, overlong,
     * surrogate, truncated sequence), valid multi-byte kept */
    {
        const char *names[] = {"a", "b", "c"};
        const char *values[] = {"q\"b\\n\nx", "\xc0\xaf|\xed\xa0\x80|\xe2\x82", "\xe2\x82\xac\xf0\x9f\x98\x80"};
        char *l = rt_metric_labels_dup(names, values, 3);
        CHECK(strcmp(l, "a=\"q\\\"b\\\\n\\nx\",b=\"\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                        "\xEF\xBF\xBD\xEF\xBF\xBD\",c=\"\xe2\x82\xac\xf0\x9f\x98\x80\"") == 0);
        rt_metric_set(rt_metric("g2", RT_GAUGE, "", l, NULL, 0, &err), INFINITY);
        free(l);
    }
    /* a label set far over 1 KiB is kept whole */
    {
        char *big = malloc(5001), *l;
        const char *names[] = {"v"};
        const char *values[1];
        memset(big, 'x', 5000);
        big[5000] = '\0';
        values[0] = big;
        l = rt_metric_labels_dup(names, values, 1);
        CHECK(strlen(l) == 5000 + 4);
        rt_metric_set(rt_metric("g3", RT_GAUGE, "", l, NULL, 0, &err), -INFINITY);
        /* the fixed-buffer form never cuts: it writes "" and says how long */
        CHECK(rt_metric_labels(buf, sizeof buf, names, values, 1) == 5004);
        CHECK(buf[0] == '\0');
        free(l);
        free(big);
    }
    {
        double b[] = {1e-9, 0.1, 1234567.5};
        rt_series *h = rt_metric("h1", RT_HISTOGRAM, "", "k=\"v\"", b, 3, &err);
        rt_metric_observe(h, 0.05);
        rt_metric_observe(h, INFINITY);
        rt_metric_observe(h, NAN);
    }
    render();
    CHECK(has("# HELP g1 two\\nlines \\\\ \"q\" \xEF\xBF\xBD ok \xc3\xa4\n# TYPE g1 gauge\ng1 NaN\n"));
    CHECK(has("\ng2{a=\"q\\\"b\\\\n\\nx\","));
    CHECK(has("\"} +Inf\n"));
    CHECK(has("\"} -Inf\n"));
    CHECK(has("h1_bucket{k=\"v\",le=\"1e-09\"} 0\n"));
    CHECK(has("h1_bucket{k=\"v\",le=\"0.1\"} 1\n"));
    CHECK(has("h1_bucket{k=\"v\",le=\"1234567.5\"} 1\n"));
    CHECK(has("h1_bucket{k=\"v\",le=\"+Inf\"} 3\n"));
    CHECK(has("h1_sum{k=\"v\"} NaN\n"));
    CHECK(has("h1_count{k=\"v\"} 3\n"));
    CHECK(strstr(text, "nan") == NULL);
    CHECK(strstr(text, "inf\n") == NULL);

    /* collisions with a histogram's own series */
    CHECK(rt_metric("h1_count", RT_GAUGE, "", "", NULL, 0, &err) == NULL);
    CHECK(err && strstr(err, "is a series of the histogram 'h1'") != NULL);
    CHECK(rt_metric("h1_bucket", RT_COUNTER, "", "", NULL, 0, &err) == NULL);
    CHECK(rt_metric("k_sum", RT_GAUGE, "", "", NULL, 0, &err) != NULL);
    CHECK(rt_metric("k", RT_HISTOGRAM, "", "", NULL, 0, &err) == NULL);
    CHECK(err && strstr(err, "'k_sum'") != NULL);
    CHECK(rt_metric("g1", RT_COUNTER, "", "", NULL, 0, &err) == NULL);
    CHECK(err && strstr(err, "already a gauge") != NULL);
    free(text);

    return DONE();
}
