/*
 * bench_js_fetch.c - the raw cnats reference JetStream consumer: a pull
 * subscription bound to an existing durable, natsSubscription_Fetch of BATCH
 * messages at a time, natsMsg_Ack of each, until N are acked; then a flush
 * (the server has every ack). Timed from the subscribe to the end of the flush.
 *   bench_js_fetch URL STREAM DURABLE N BATCH
 * Prints: RESULT fetch msgs=N secs=S rate=R cpu_us_per_msg=C
 */
#include <nats/nats.h>
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>


int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    if (argc < 6) {
        fprintf(stderr, "usage: %s URL STREAM DURABLE N BATCH\n", argv[0]);
        return 2;
    }
    long n = atol(argv[4]), acked = 0;
    int batch = atoi(argv[5]);
    s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
        return 1;
    }
    jsSubOptions_Init(&so);
    so.Stream = argv[2];
    so.Consumer = argv[3];
    double c0 = cpu_secs();
    int64_t t0 = nats_NowInNanoSeconds();
    s = js_PullSubscribe(&sub, js, "bench.>", argv[3], NULL, &so, &jerr);
    while (s == NATS_OK && acked < n) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, batch, 5000, &jerr);
        for (int i = 0; s == NATS_OK && i < list.Count; i++)
            if ((s = natsMsg_Ack(list.Msgs[i], NULL)) == NATS_OK)
                acked++;
        natsMsgList_Destroy(&list);
    }
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 60000);
    double secs = (nats_NowInNanoSeconds() - t0) / 1e9;
    double cpu = cpu_secs() - c0;
    if (s != NATS_OK) {
        fprintf(stderr, "fetch: %s (jerr %d) after %ld acked\n", natsStatus_GetText(s), (int)jerr, acked);
        return 1;
    }
    printf("RESULT fetch msgs=%ld secs=%.4f rate=%.0f cpu_us_per_msg=%.3f\n", n, secs, n / secs, cpu * 1e6 / n);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
