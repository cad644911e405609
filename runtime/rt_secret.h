/*
 * rt_secret.h - keeping secrets out of output, and reading them from files.
 *
 * Pure C, no Lua and no libuv: unit-tested in tests/unit/test_secret.c.
 */
#ifndef JETLUA_RT_SECRET_H
#define JETLUA_RT_SECRET_H

#include <stddef.h>

/* Copy `in` to `out` (always NUL-terminated, truncated to n) with the
 * password of every URL in it replaced: "nats://user:pass@host" becomes
 * "nats://user:***@host", and the token of "nats://tok@host" becomes "***"
 * too. Works on a single URL and on free text holding URLs (a log line, an
 * error). Returns out. */
char *rt_redact(const char *in, char *out, size_t n);

/* Same for one URL whose scheme may be missing ("user:pass@host:4222"). */
char *rt_redact_url(const char *url, char *out, size_t n);

/* Replace, in place, every occurrence of `secret` (when non-empty and at
 * least 3 characters long) in the NUL-terminated buf with "***". For
 * messages that may echo a secret some other way than in a URL. */
void rt_scrub(char *buf, size_t n, const char *secret);

/* Read a whole secret file (a password, a token): at most 64 KiB, trailing
 * CR/LF removed. Returns a malloc'd string, or NULL with a sentence naming
 * the file and the reason in err. */
char *rt_secret_read_file(const char *path, char *err, size_t errlen);

/* 0 if the file can be opened for reading, else -1 with a sentence naming
 * it and the reason ("cannot read /x: No such file or directory"). */
int rt_file_readable(const char *path, char *err, size_t errlen);

/* n random bytes as 2n lowercase hex digits in out (size >= 2n + 1), from
 * getrandom(2). Returns 0, or -1 when no randomness is available. */
int rt_random_hex(char *out, size_t nbytes);

#endif
