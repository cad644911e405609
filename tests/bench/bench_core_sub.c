/*
 * bench_core_sub.c - the raw cnats reference subscriber: an async
 * subscription counting N messages; timed from the first message to the Nth.
 *   bench_core_sub URL SUBJECT N READY_FILE
 * Creates READY_FILE once subscribed, prints
 *   RESULT sub msgs=N secs=S rate=R cpu_us_per_msg=C
 * and gives up (exit 1, printing what it got) after 120 s.
 */
#include <nats/nats.h>
#include "bench_util.h"
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static volatile long count, target;
static int64_t first_ns, last_ns;
static double cpu_first;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;


static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    if (count == 0) {
        first_ns = nats_NowInNanoSeconds();
        cpu_first = cpu_secs();
    }
    natsMsg_Destroy(m);
    if (++count == target) {
        last_ns = nats_NowInNanoSeconds();
        pthread_mutex_lock(&mu);
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&mu);
    }
}

int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    if (argc < 5) {
        fprintf(stderr, "usage: %s URL SUBJECT N READY_FILE\n", argv[0]);
        return 2;
    }
    target = atol(argv[3]);
    if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
        natsConnection_Subscribe(&sub, nc, argv[2], on_msg, NULL) != NATS_OK) {
        fprintf(stderr, "cannot connect/subscribe\n");
        return 1;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);
    FILE *f = fopen(argv[4], "w");
    if (f)
        fclose(f);
    pthread_mutex_lock(&mu);
    int64_t deadline = nats_Now() + 120000;
    while (count < target && nats_Now() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&cond, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    if (count < target) {
        printf("RESULT sub msgs=%ld secs=0 rate=0 incomplete\n", (long)count);
        return 1;
    }
    double secs = (last_ns - first_ns) / 1e9;
    double cpu = cpu_secs() - cpu_first;
    printf("RESULT sub msgs=%ld secs=%.4f rate=%.0f cpu_us_per_msg=%.3f\n", (long)target, secs,
           target / secs, cpu * 1e6 / target);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
