/*
 * test_log.c - log line formatting: JSON lines stay valid JSON whatever the
 * message holds (invalid UTF-8, control bytes, NUL, quotes, tracebacks, text
 * longer than a line), never cut a character in half and say when they were
 * truncated; text lines say so too.
 */
#include "check.h"
#include "rt_log.h"

#include <stdio.h>
#include <string.h>

static char line[20000];
static const char *stamp = "2026-01-02T03:04:05.678Z";

static const char *fmt(int json, const char *msg, size_t len, size_t cap)
{
    size_t n = rt_log_format(line, cap, json, RT_LOG_WARN, stamp, msg, len, 0);
    line[n] = '\0';
    return line;
}

/* every byte is valid UTF-8, no raw control byte but the final newline */
static int clean_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = rt_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
        if (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) && !(s[i] == '\n' && i == n - 1))
            return 0;
        i += k;
    }
    return 1;
}

int main(void)
{
    const char *s;
    size_t n;

    /* plain */
    s = fmt(1, "hello", 5, sizeof line);
    CHECK(strcmp(s, "{\"time\":\"2026-01-02T03:04:05.678Z\",\"level\":\"warn\",\"msg\":\"hello\"}\n") == 0);
    s = fmt(0, "hello", 5, sizeof line);
    CHECK(strcmp(s, "2026-01-02T03:04:05.678Z WARN  hello\n") == 0);

    /* quotes, backslash, control bytes, NUL, DEL */
    s = fmt(1, "a\"b\\c\nd\te\rf\001g\0h\177i", 17, sizeof line);
    CHECK(strstr(s, "\"msg\":\"a\\\"b\\\\c\\nd\\te\\rf\\u0001g\\u0000h\\u007fi\"}") != NULL);

    /* valid UTF-8 kept: 2, 3 and 4 bytes */
    s = fmt(1, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, sizeof line);
    CHECK(strstr(s, "\"msg\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"") != NULL);

    /* invalid: stray continuation, lone lead, overlong, surrogate, > U+10FFFF, 0xff */
    s = fmt(1, "x\x80y\xc3z\xc0\x80w\xed\xa0\x80v\xf4\x90\x80\x80u\xff", 18, sizeof line);
    CHECK(strstr(s, "\"msg\":\"x\\ufffdy\\ufffdz\\ufffd\\ufffdw\\ufffd\\ufffd\\ufffdv"
                    "\\ufffd\\ufffd\\ufffd\\ufffdu\\ufffd\"") != NULL);
    CHECK(clean_utf8(s, strlen(s)));
    /* a character cut by the end of the message */
    s = fmt(1, "ab\xe2\x82", 4, sizeof line);
    CHECK(strstr(s, "\"msg\":\"ab\\ufffd\\ufffd\"") != NULL);

    /* a traceback goes to its own field */
    {
        const char *m = "handler failed: app.lua:3: boom\nstack traceback:\n\t[C]: in function 'error'\n\tapp.lua:3: in main chunk";
        s = fmt(1, m, strlen(m), sizeof line);
        CHECK(strstr(s, "\"msg\":\"handler failed: app.lua:3: boom\",\"traceback\":\"\\t[C]: in function 'error'\\n\\tapp.lua:3: in main chunk\"}\n") != NULL);
        s = fmt(0, m, strlen(m), sizeof line);
        CHECK(strstr(s, "WARN  handler failed: app.lua:3: boom\nstack traceback:\n\t[C]") != NULL);
    }

    /* too long: cut between characters, marked; every cap, every alignment */
    {
        static char big[12000];
        int bad = 0, unmarked = 0;
        for (size_t i = 0; i + 2 <= sizeof big; i += 2)
            memcpy(big + i, "\xc3\xa9", 2);               /* é é é ... */
        for (size_t cap = 256; cap < 600; cap++) {
            for (int json = 0; json <= 1; json++) {
                for (size_t off = 0; off < 3; off++) {
                    memset(line, 0, sizeof line);
                    n = rt_log_format(line, cap, json, RT_LOG_INFO, stamp, big + off, sizeof big - off, 0);
                    bad += n > cap || line[n - 1] != '\n' || memchr(line, 0, n) != NULL;
                    /* off = 1 starts with a stray continuation byte: one \ufffd in
                     * JSON (text keeps bytes as they are), never more */
                    bad += (!clean_utf8(line, n) && (json || off != 1)) ||
                           (off != 1 && strstr(line, "\\ufffd") != NULL);
                    unmarked += json ? strstr(line, ",\"truncated\":true}\n") == NULL
                                     : strstr(line, " more bytes]\n") == NULL;
                }
            }
        }
        CHECK(bad == 0);
        CHECK(unmarked == 0);
    }
    /* escapes are never cut in half either */
    {
        static char ctl[3000];
        int bad = 0;
        memset(ctl, 1, sizeof ctl);
        for (size_t cap = 256; cap < 300; cap++) {
            n = rt_log_format(line, cap, 1, RT_LOG_INFO, stamp, ctl, sizeof ctl, 0);
            line[n] = '\0';
            /* the message is a whole number of \u0001 escapes */
            const char *b = strstr(line, "\"msg\":\"") + 7, *e = strstr(b, "\"");
            bad += e == NULL || (e - b) % 6 != 0 || strstr(line, ",\"truncated\":true}") == NULL;
        }
        CHECK(bad == 0);
    }
    /* the caller cut it (dropped > 0): marked, and the half character is dropped */
    n = rt_log_format(line, sizeof line, 1, RT_LOG_INFO, stamp, "ab\xe2\x82", 4, 10);
    line[n] = '\0';
    CHECK(strstr(line, "\"msg\":\"ab\",\"truncated\":true}\n") != NULL);
    n = rt_log_format(line, sizeof line, 0, RT_LOG_INFO, stamp, "ab\xe2\x82", 4, 10);
    line[n] = '\0';
    CHECK(strstr(line, "INFO  ab [truncated: 10 more bytes]\n") != NULL);
    /* a long message with a traceback keeps part of both */
    {
        static char m[9000];
        memset(m, 'x', 6000);
        strcpy(m + 6000, "\nstack traceback:\n\tapp.lua:1: in main chunk");
        n = rt_log_format(line, 4096, 1, RT_LOG_ERROR, stamp, m, strlen(m), 0);
        line[n] = '\0';
        CHECK(n <= 4096);
        CHECK(strstr(line, "\"traceback\":\"\\tapp.lua:1: in main chunk\",\"truncated\":true}\n") != NULL);
    }
    return DONE();
}
