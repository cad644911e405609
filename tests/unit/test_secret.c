/* rt_secret: URL redaction, scrubbing, secret files, random hex. */
#include "check.h"
#include "rt_secret.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int red(const char *in, const char *want)
{
    char out[256];
    rt_redact(in, out, sizeof out);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "rt_redact(%s) = %s, want %s\n", in, out, want);
        return 0;
    }
    return 1;
}

static int red_url(const char *in, const char *want)
{
    char out[256];
    rt_redact_url(in, out, sizeof out);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "rt_redact_url(%s) = %s, want %s\n", in, out, want);
        return 0;
    }
    return 1;
}

int main(void)
{
    char buf[256], err[256], hex[65];

    CHECK(red("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"));
    CHECK(red("nats://alice:s3cret@127.0.0.1:4222", "nats://alice:***@127.0.0.1:4222"));
    CHECK(red("tls://t0ken@host:4443", "tls://***@host:4443"));
    CHECK(red("nats://u:p@ss@host", "nats://u:***@host"));          /* an unescaped @ in the password */
    CHECK(red("nats://[::1]:4222", "nats://[::1]:4222"));
    CHECK(red("nats://a:b@[::1]:4222/", "nats://a:***@[::1]:4222/"));
    CHECK(red("connect to nats://a:pw@h:1 failed: refused (nats://tok@h:2)",
              "connect to nats://a:***@h:1 failed: refused (nats://***@h:2)"));
    CHECK(red("no url here", "no url here"));
    CHECK(red("", ""));
    CHECK(red("nats://@host", "nats://@host"));
    CHECK(red_url("alice:pw@127.0.0.1:4222", "alice:***@127.0.0.1:4222"));
    CHECK(red_url("tok@127.0.0.1", "***@127.0.0.1"));
    CHECK(red_url("127.0.0.1:4222", "127.0.0.1:4222"));
    CHECK(red_url("nats://a:pw@h", "nats://a:***@h"));
    /* truncation never leaves the secret half-printed */
    rt_redact("nats://alice:s3cret@127.0.0.1:4222", buf, 16);
    CHECK(strlen(buf) == 15 && strstr(buf, "s3") == NULL);

    strcpy(buf, "auth failed for hunter22 (hunter22)");
    rt_scrub(buf, sizeof buf, "hunter22");
    CHECK(strcmp(buf, "auth failed for *** (***)") == 0);
    strcpy(buf, "ab");
    rt_scrub(buf, sizeof buf, "ab");            /* too short to scrub safely */
    CHECK(strcmp(buf, "ab") == 0);
    rt_scrub(buf, sizeof buf, NULL);
    CHECK(strcmp(buf, "ab") == 0);

    {
        char path[] = "/tmp/jetlua-secret-XXXXXX";
        int fd = mkstemp(path);
        char *s;
        CHECK(fd >= 0);
        if (fd < 0)
            return DONE();
        CHECK(write(fd, "pa ss\r\n\n", 8) == 8);
        close(fd);
        s = rt_secret_read_file(path, err, sizeof err);
        CHECK(s && strcmp(s, "pa ss") == 0);
        free(s);
        fd = open(path, O_TRUNC | O_WRONLY);
        close(fd);
        s = rt_secret_read_file(path, err, sizeof err);
        CHECK(s == NULL && strstr(err, path) && strstr(err, "empty"));
        unlink(path);
        s = rt_secret_read_file(path, err, sizeof err);
        CHECK(s == NULL && strstr(err, path) && strstr(err, "No such file"));
        CHECK(rt_file_readable(path, err, sizeof err) == -1 && strstr(err, "cannot read /tmp/jetlua-secret-"));
        CHECK(rt_file_readable("/", err, sizeof err) == 0);
    }

    CHECK(rt_random_hex(hex, 32) == 0 && strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64);
    {
        char hex2[65];
        CHECK(rt_random_hex(hex2, 32) == 0 && strcmp(hex, hex2) != 0);
    }
    return DONE();
}
