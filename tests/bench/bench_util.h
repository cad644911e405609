/*
 * bench_util.h - what the raw cnats benchmark programs share: clocks, CPU
 * time and peak RSS of the process, and a fresh JetStream stream.
 * Header-only (static inline): each bench_*.c is a program of its own.
 */
#ifndef JETLUA_BENCH_UTIL_H
#define JETLUA_BENCH_UTIL_H

#include <nats/nats.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

/* user + system CPU seconds of this process */
static inline double cpu_secs(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static inline long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;   /* kilobytes on Linux */
}

static inline double mono_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* a fresh, empty stream NAME on "NAME.>": deleted if it exists, then created */
static inline natsStatus fresh_stream(jsCtx *js, const char *name, jsStorageType storage)
{
    char subj[256];
    const char *subjects[1] = {subj};
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    snprintf(subj, sizeof subj, "%s.>", name);
    s = js_DeleteStream(js, name, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNotFoundErr) {
        fprintf(stderr, "delete stream %s: %s (err_code %d)\n", name, natsStatus_GetText(s), (int)jerr);
        return s;
    }
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = storage;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "add stream %s: %s (err_code %d)\n", name, natsStatus_GetText(s), (int)jerr);
        return s;
    }
    jsStreamInfo_Destroy(si);
    return NATS_OK;
}

#endif
