/*
 * bench_js_pubsync.c - the raw cnats reference for JetStream sync publish
 * latency: (re)creates the file-storage stream STREAM (subjects "STREAM.>"),
 * publishes 100 untimed warm-up messages, then M messages of SIZE bytes to
 * "STREAM.msg" one after the other with js_Publish (each waits for its
 * PubAck), timing each call.
 *   bench_js_pubsync URL STREAM M SIZE
 * Prints: RESULT sync msgs=M p50_us=P p99_us=P mean_us=U rate=R
 */
#include <nats/nats.h>
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP 100


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static double percentile(const double *v, long n, double p)
{
    long i = (long)(p / 100.0 * n + 0.999999) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}


int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    char subject[256];

    if (argc < 5) {
        fprintf(stderr, "usage: %s URL STREAM M SIZE\n", argv[0]);
        return 2;
    }
    const char *stream = argv[2];
    long m = atol(argv[3]);
    int size = atoi(argv[4]);
    if (m < 1) {
        fprintf(stderr, "M must be >= 1\n");
        return 2;
    }
    char *data = malloc((size_t)size + 1);
    double *lat = malloc((size_t)m * sizeof *lat);
    memset(data, 'x', (size_t)size);
    snprintf(subject, sizeof subject, "%s.msg", stream);

    s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
        free(data);
        free(lat);
        return 1;
    }
    if (fresh_stream(js, stream, js_FileStorage) != NATS_OK) {
        free(data);
        free(lat);
        return 1;
    }
    for (int i = 0; i < WARMUP + m && s == NATS_OK; i++) {
        double t0 = mono_secs();
        s = js_Publish(&ack, js, subject, data, size, NULL, &jerr);
        if (i >= WARMUP)
            lat[i - WARMUP] = mono_secs() - t0;
        jsPubAck_Destroy(ack);
        ack = NULL;
    }
    if (s != NATS_OK) {
        fprintf(stderr, "js_Publish: %s (err_code %d)\n", natsStatus_GetText(s), (int)jerr);
        return 1;
    }
    double total = 0;
    for (long i = 0; i < m; i++)
        total += lat[i];
    qsort(lat, (size_t)m, sizeof *lat, cmp_double);
    printf("RESULT sync msgs=%ld p50_us=%.1f p99_us=%.1f mean_us=%.1f rate=%.0f\n", m, percentile(lat, m, 50) * 1e6,
           percentile(lat, m, 99) * 1e6, total / m * 1e6, m / total);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    free(lat);
    free(data);
    return 0;
}
