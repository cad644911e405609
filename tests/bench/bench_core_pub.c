/*
 * bench_core_pub.c - the raw cnats reference publisher: N core NATS messages
 * of B bytes as fast as cnats takes them, then a flush (the server has them).
 *   bench_core_pub URL SUBJECT N SIZE
 * Prints: RESULT pub msgs=N secs=S rate=R cpu_us_per_msg=C
 */
#include <nats/nats.h>
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>


int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    natsStatus s;
    if (argc < 5) {
        fprintf(stderr, "usage: %s URL SUBJECT N SIZE\n", argv[0]);
        return 2;
    }
    long n = atol(argv[3]);
    int size = atoi(argv[4]);
    char *data = malloc((size_t)size);
    memset(data, 'x', (size_t)size);
    s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s != NATS_OK) {
        fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
        free(data);
        return 1;
    }
    double c0 = cpu_secs();
    int64_t t0 = nats_NowInNanoSeconds();
    for (long i = 0; i < n && s == NATS_OK; i++)
        s = natsConnection_Publish(nc, argv[2], data, size);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nc, 60000);
    double secs = (nats_NowInNanoSeconds() - t0) / 1e9;
    double cpu = cpu_secs() - c0;
    if (s != NATS_OK) {
        fprintf(stderr, "publish: %s\n", natsStatus_GetText(s));
        return 1;
    }
    printf("RESULT pub msgs=%ld secs=%.4f rate=%.0f cpu_us_per_msg=%.3f\n", n, secs, n / secs, cpu * 1e6 / n);
    natsConnection_Destroy(nc);
    nats_Close();
    free(data);
    return 0;
}
