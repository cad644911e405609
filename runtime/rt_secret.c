/*
 * rt_secret.c - redaction of URLs with credentials, secret files, random
 * secrets (see rt_secret.h).
 */
#include "rt_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Appends to out[*o] (bounded by n, always leaving room for the NUL). */
static void put(char *out, size_t n, size_t *o, const char *s, size_t len)
{
    while (len-- > 0 && *o + 1 < n)
        out[(*o)++] = *s++;
}

/* Characters that end a URL inside free text. */
static int url_end(char ch)
{
    return ch == '\0' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '"' ||
           ch == '\'' || ch == ',' || ch == ';' || ch == '<' || ch == '>' || ch == '(' || ch == ')';
}

/* The authority of a URL starts at s and ends at end: write it with its
 * userinfo (everything before the last '@') redacted. */
static void put_authority(char *out, size_t n, size_t *o, const char *s, const char *end)
{
    const char *at = NULL, *colon;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at || at == s) {
        put(out, n, o, s, (size_t)(end - s));
        return;
    }
    colon = memchr(s, ':', (size_t)(at - s));
    if (colon) {
        put(out, n, o, s, (size_t)(colon - s));     /* the user name stays */
        put(out, n, o, ":***", 4);
    } else {
        put(out, n, o, "***", 3);                   /* a token */
    }
    put(out, n, o, at, (size_t)(end - at));
}

char *rt_redact(const char *in, char *out, size_t n)
{
    size_t o = 0;
    const char *p = in;
    if (n == 0)
        return out;
    while (*p) {
        const char *sep = strstr(p, "://"), *end;
        if (!sep) {
            put(out, n, &o, p, strlen(p));
            break;
        }
        put(out, n, &o, p, (size_t)(sep + 3 - p));
        end = sep + 3;
        while (!url_end(*end))
            end++;
        put_authority(out, n, &o, sep + 3, end);
        p = end;
    }
    out[o] = '\0';
    return out;
}

char *rt_redact_url(const char *url, char *out, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return out;
    if (strstr(url, "://"))
        return rt_redact(url, out, n);
    put_authority(out, n, &o, url, url + strlen(url));
    out[o] = '\0';
    return out;
}

void rt_scrub(char *buf, size_t n, const char *secret)
{
    size_t sl, bl;
    char *p;
    if (!secret || (sl = strlen(secret)) < 3)
        return;
    bl = strlen(buf);
    while ((p = strstr(buf, secret))) {
        /* "***" is never longer than the secret: shift the tail left */
        memcpy(p, "***", 3);
        memmove(p + 3, p + sl, bl - (size_t)(p - buf) - sl + 1);
        bl -= sl - 3;
    }
    (void)n;
}

int rt_file_readable(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

char *rt_secret_read_file(const char *path, char *err, size_t errlen)
{
    enum { MAX = 65536 };
    char *buf;
    size_t len = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(MAX + 1);
    while (buf && len < MAX && (r = read(fd, buf + len, MAX - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        len += (size_t)r;
    }
    close(fd);
    if (!buf) {
        snprintf(err, errlen, "cannot read %s: out of memory", path);
        return NULL;
    }
    if (len == MAX) {
        snprintf(err, errlen, "%s: too large for a secret (64 KiB or more)", path);
        free(buf);
        return NULL;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (len == 0 || memchr(buf, '\0', len)) {
        snprintf(err, errlen, "%s: %s", path, len == 0 ? "the file is empty" : "the file holds a NUL byte");
        free(buf);
        return NULL;
    }
    return buf;
}

int rt_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t got = 0;
    if (nbytes > sizeof b)
        return -1;
    while (got < nbytes) {
        ssize_t r = getrandom(b + got, nbytes - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
    memset(b, 0, sizeof b);
    return 0;
}
