/*
 * bench_js_pubasync.c - the raw cnats reference for JetStream async publish:
 * (re)creates the stream STREAM (subjects "STREAM.>", storage file|memory),
 * then publishes N messages of SIZE bytes to "STREAM.msg" with
 * js_PublishAsync (jsOptions.PublishAsync.MaxPending = WINDOW) and waits in
 * js_PublishAsyncComplete until every PubAck arrived. Timed from the first
 * publish to the last ack. Acks and failures are counted in the
 * PublishAsync.AckHandler, which runs on a cnats thread (hence atomics).
 *   bench_js_pubasync URL STREAM STORAGE N SIZE WINDOW
 * Prints: RESULT async storage=S msgs=N secs=S rate=R cpu_us_per_msg=C rss_kb=K
 * Exits 1 if a publish failed, an ack is missing, or the stream does not hold N messages.
 */
#include <nats/nats.h>
#include "bench_util.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static atomic_long acked, failed;




/* cnats thread: one call per published message, ack or error */
/* cppcheck-suppress constParameter ; the signature is the callback type's */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)closure;
    if (pa != NULL) {
        atomic_fetch_add(&acked, 1);
    } else {
        if (atomic_fetch_add(&failed, 1) == 0 && pae != NULL)
            fprintf(stderr, "publish failed: %s (%s, err_code %d)\n", natsStatus_GetText(pae->Err),
                    pae->ErrText ? pae->ErrText : "", (int)pae->ErrCode);
    }
    natsMsg_Destroy(msg);
}


int main(int argc, char **argv)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsPubOptions po;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    char subject[256];

    if (argc < 7) {
        fprintf(stderr, "usage: %s URL STREAM STORAGE(file|memory) N SIZE WINDOW\n", argv[0]);
        return 2;
    }
    const char *stream = argv[2], *storage = argv[3];
    long n = atol(argv[4]);
    int size = atoi(argv[5]);
    long window = atol(argv[6]);
    if (strcmp(storage, "file") != 0 && strcmp(storage, "memory") != 0) {
        fprintf(stderr, "storage must be file or memory, not %s\n", storage);
        return 2;
    }
    char *data = malloc((size_t)size + 1);
    memset(data, 'x', (size_t)size);
    snprintf(subject, sizeof subject, "%s.msg", stream);

    s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s != NATS_OK) {
        fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
        free(data);
        return 1;
    }
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = window;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.StallWait = 30000;   /* a full window waits for acks, it does not fail */
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s == NATS_OK)
        s = fresh_stream(js, stream, strcmp(storage, "file") == 0 ? js_FileStorage : js_MemoryStorage);
    if (s != NATS_OK) {
        free(data);
        return 1;
    }

    double c0 = cpu_secs();
    double t0 = mono_secs();
    for (long i = 0; i < n && s == NATS_OK; i++)
        s = js_PublishAsync(js, subject, data, size, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "js_PublishAsync: %s\n", natsStatus_GetText(s));
        nats_PrintLastErrorStack(stderr);
        return 1;
    }
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK) {
        fprintf(stderr, "js_PublishAsyncComplete: %s (acked %ld of %ld)\n", natsStatus_GetText(s),
                atomic_load(&acked), n);
        return 1;
    }
    /* the pending count may drop just before the last handler ran: wait for it (bounded) */
    for (int i = 0; i < 10000 && atomic_load(&acked) + atomic_load(&failed) < n; i++)
        nats_Sleep(1);
    double secs = mono_secs() - t0;
    double cpu = cpu_secs() - c0;
    long a = atomic_load(&acked), f = atomic_load(&failed);
    if (f != 0 || a != n) {
        fprintf(stderr, "acked %ld, failed %ld, of %ld\n", a, f, n);
        return 1;
    }
    s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    if (s != NATS_OK || si->State.Msgs != (uint64_t)n) {
        fprintf(stderr, "stream %s holds %llu messages, expected %ld (%s)\n", stream,
                si ? (unsigned long long)si->State.Msgs : 0ULL, n, natsStatus_GetText(s));
        return 1;
    }
    jsStreamInfo_Destroy(si);
    printf("RESULT async storage=%s msgs=%ld secs=%.4f rate=%.0f cpu_us_per_msg=%.3f rss_kb=%ld\n", storage, n,
           secs, n / secs, cpu * 1e6 / n, peak_rss_kb());
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    free(data);
    return 0;
}
