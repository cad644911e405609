/*
 * rt_jsack.h - JetStream acknowledgement texts, parsed without Lua or cnats:
 *
 *  - the "$JS.ACK..." reply subject of a consumed message (PROTOCOL.md §3):
 *    v1 "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.
 *    <timestamp ns>.<pending>" (9 tokens), v2 "$JS.ACK.<domain>.<account
 *    hash>.<stream>.<consumer>.<the same 5>[.<more>]" (11 tokens or more;
 *    domain "_" means none);
 *
 *  - the PubAck a stream answers a publish with (PROTOCOL.md §4):
 *    {"stream":"S","seq":N[,"domain":"D"][,"duplicate":true]}, or
 *    {"error":{"code":400,"err_code":10071,"description":"..."}, ...}.
 */
#ifndef JETLUA_RT_JSACK_H
#define JETLUA_RT_JSACK_H

#include <stddef.h>
#include <stdint.h>

/* ---- the ack subject ---- */

enum {
    RT_ACK_STREAM = 0,
    RT_ACK_CONSUMER,
    RT_ACK_DELIVERED,
    RT_ACK_STREAM_SEQ,
    RT_ACK_CONSUMER_SEQ,
    RT_ACK_TIMESTAMP,
    RT_ACK_PENDING
};

/* f[i] points into the subject, len[i] bytes long (not NUL-terminated:
 * strtoll on a number field stops at the '.'). */
typedef struct rt_ack_meta {
    const char *f[7];
    size_t len[7];
    const char *domain; /* NULL: none (v1, or "_") */
    size_t domain_len;
} rt_ack_meta;

/* 0, or -1 when reply is NULL or not an ack subject (wrong prefix or token
 * count). */
int rt_ack_subject(const char *reply, rt_ack_meta *m);

/* ---- the PubAck ---- */

enum {
    RT_PUBACK_OK = 0, /* stored (or a duplicate of a stored message) */
    RT_PUBACK_ERROR,  /* the stream refused it: code, err_code, description */
    RT_PUBACK_BAD     /* not a PubAck (not JSON, no stream or seq) */
};

typedef struct rt_puback {
    int kind;
    /* RT_PUBACK_OK */
    char stream[256];
    uint64_t seq;
    int duplicate;
    char domain[256]; /* "" when none */
    /* RT_PUBACK_ERROR: error.code (HTTP-like), error.err_code (0 if
     * absent) and error.description ("" if absent), cut to fit */
    int code;
    int err_code;
    char description[400];
} rt_puback;

/* Parse the payload of a PubAck; returns a->kind. */
int rt_puback_parse(const char *data, size_t len, rt_puback *a);

#endif
