/*
 * test_proto.c - control-line lengths and permission-violation texts.
 */
#include "check.h"
#include "rt_proto.h"

#include <string.h>

int main(void)
{
    rt_perm p;

    CHECK(rt_proto_digits(0) == 1);
    CHECK(rt_proto_digits(9) == 1);
    CHECK(rt_proto_digits(10) == 2);
    CHECK(rt_proto_digits(1048576) == 7);
    CHECK(rt_proto_digits(18446744073709551615ull) == 20);
    /* "PUB foo 5\r\n" */
    CHECK(rt_proto_pub_line(3, 0, 0, 5) == strlen("PUB foo 5\r\n"));
    /* "PUB foo bar 12\r\n" */
    CHECK(rt_proto_pub_line(3, 3, 0, 12) == strlen("PUB foo bar 12\r\n"));
    /* "HPUB foo bar 22 27\r\n" */
    CHECK(rt_proto_pub_line(3, 3, 22, 5) == strlen("HPUB foo bar 22 27\r\n"));
    /* "HPUB foo 12 12\r\n" */
    CHECK(rt_proto_pub_line(3, 0, 12, 0) == strlen("HPUB foo 12 12\r\n"));
    /* "SUB foo 1\r\n", "SUB foo q 123\r\n" */
    CHECK(rt_proto_sub_line(3, 0, 1) == strlen("SUB foo 1\r\n"));
    CHECK(rt_proto_sub_line(3, 1, 123) == strlen("SUB foo q 123\r\n"));

    CHECK(rt_proto_perm("Permissions Violation for Publish to \"forbidden.x\"", &p) == RT_PERM_PUBLISH);
    CHECK(strcmp(p.subject, "forbidden.x") == 0 && !p.truncated);
    CHECK(rt_perm_matches(&p, "forbidden.x"));
    CHECK(!rt_perm_matches(&p, "forbidden.xy"));
    CHECK(!rt_perm_matches(&p, NULL));
    CHECK(rt_proto_perm("Permissions Violation for Subscription to \"a.>\"", &p) == RT_PERM_SUBSCRIBE);
    CHECK(strcmp(p.subject, "a.>") == 0 && p.queue[0] == '\0');
    CHECK(rt_proto_perm("Permissions Violation for Subscription to \"a.b\" using queue \"workers\"", &p)
          == RT_PERM_SUBSCRIBE);
    CHECK(strcmp(p.subject, "a.b") == 0 && strcmp(p.queue, "workers") == 0);
    CHECK(rt_proto_perm("Permissions Violation for Publish with Reply of \"_INBOX.x.1\"", &p) == RT_PERM_REPLY);
    CHECK(strcmp(p.subject, "_INBOX.x.1") == 0);
    /* cnats keeps 255 bytes of the text: a long subject arrives cut */
    CHECK(rt_proto_perm("Permissions Violation for Publish to \"very.long.sub", &p) == RT_PERM_PUBLISH);
    CHECK(p.truncated && strcmp(p.subject, "very.long.sub") == 0);
    CHECK(rt_perm_matches(&p, "very.long.subject.that.was.cut"));
    CHECK(!rt_perm_matches(&p, "very.long"));
    CHECK(rt_proto_perm("Maximum Control Line Exceeded", &p) == RT_PERM_NONE);
    CHECK(rt_proto_perm("Permissions Violation", &p) == RT_PERM_NONE);
    CHECK(rt_proto_perm(NULL, &p) == RT_PERM_NONE);
    return DONE();
}
