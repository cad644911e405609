/*
 * test_subject.c - NATS subject validation used by publish and subscribe.
 */
#include "check.h"
#include "jl.h"

#include <string.h>

static int valid(const char *s, int wild) { return jl_subject_invalid(s, strlen(s), wild) == NULL; }

int main(void)
{
    CHECK(valid("foo", 0));
    CHECK(valid("foo.bar.baz", 0));
    CHECK(valid("$JS.API.INFO", 0));
    CHECK(valid("_INBOX.abc.1", 0));
    CHECK(!valid("", 0));
    CHECK(!valid("foo..bar", 0));
    CHECK(!valid(".foo", 0));
    CHECK(!valid("foo.", 0));
    CHECK(!valid("foo bar", 0));
    CHECK(!valid("foo\tbar", 0));
    CHECK(!valid("foo\nbar", 0));
    CHECK(!valid("foo.*", 0));        /* no wildcards in a publish subject */
    CHECK(!valid("foo.>", 0));
    CHECK(valid("foo.*", 1));
    CHECK(valid("foo.>", 1));
    CHECK(valid("*.*.>", 1));
    CHECK(valid(">", 1));
    CHECK(!valid("foo.>.bar", 1));    /* '>' only last */
    CHECK(!valid("foo.b*", 1));       /* partial wildcard tokens */
    CHECK(!valid("foo.>x", 1));
    CHECK(!valid("foo..*", 1));
    CHECK(strcmp(jl_subject_invalid("a..b", 4, 0), "empty token") == 0);
    CHECK(strcmp(jl_subject_invalid("", 0, 0), "empty subject") == 0);
    return DONE();
}
