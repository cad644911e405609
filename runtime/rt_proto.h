/*
 * rt_proto.h - pure facts of the NATS client protocol that jetlua checks
 * itself (no Lua, no cnats):
 *
 *  - the length of a PUB/HPUB/SUB control line. nats-server closes the
 *    connection for good (-ERR 'Maximum Control Line Exceeded') when a
 *    line is longer than its max_control_line (4096 bytes unless configured;
 *    2.9.10 does not announce it in INFO). Its check is not exact (it only
 *    runs when a line is split across reads), so the client must refuse
 *    every line over the limit, not only those the server happens to catch.
 *
 *  - the text of a permissions violation (-ERR 'Permissions Violation for
 *    Publish to "x"', '... for Subscription to "x" using queue "q"',
 *    '... for Publish with Reply of "r"'), as cnats hands it to the async
 *    error handler (outer quotes removed, at most 255 bytes).
 */
#ifndef JETLUA_RT_PROTO_H
#define JETLUA_RT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RT_PROTO_MAX_CONTROL_LINE 4096

/* Bytes of "PUB <subj> [<reply>] <size>\r\n", or with headers
 * "HPUB <subj> [<reply>] <hdr_len> <total_len>\r\n" (hdr_len > 0). */
size_t rt_proto_pub_line(size_t subj, size_t reply, size_t hdr_len, size_t data_len);
/* Bytes of "SUB <subj> [<queue>] <sid>\r\n". */
size_t rt_proto_sub_line(size_t subj, size_t queue, uint64_t sid);
/* Decimal digits of v. */
size_t rt_proto_digits(uint64_t v);

enum { RT_PERM_NONE = 0, RT_PERM_PUBLISH, RT_PERM_REPLY, RT_PERM_SUBSCRIBE };

typedef struct rt_perm {
    int    op;            /* RT_PERM_* */
    char   subject[256];  /* the subject (or reply subject) named */
    char   queue[256];    /* subscribe: the queue group, "" if none */
    int    truncated;     /* the text was cut: subject is only a prefix */
} rt_perm;

/* Parse a permissions violation text; returns its op (RT_PERM_NONE when
 * the text is not one). */
int rt_proto_perm(const char *text, rt_perm *p);
/* 1 if subject is the one p names (a prefix match when p is truncated). */
int rt_perm_matches(const rt_perm *p, const char *subject);

#endif
