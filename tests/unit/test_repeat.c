/*
 * test_repeat.c - repeated-error suppression (rt_repeat): first occurrence
 * logged, repeats counted per (where, text), one summary per window.
 */
#include "check.h"
#include "rt_repeat.h"

#include <stdio.h>
#include <string.h>

static char last[512];
static int summaries;

static void sum(const char *where, const char *text, uint64_t count, uint64_t ms, void *ud)
{
    (void)ud;
    summaries++;
    snprintf(last, sizeof last, "%s: %s (repeated %llu times in the last %llu s)", where, text,
             (unsigned long long)count, (unsigned long long)(ms / 1000));
}

static int hit(rt_repeat *r, const char *where, const char *msg, uint64_t now)
{
    return rt_repeat_hit(r, where, msg, rt_repeat_text_len(msg), now, sum, NULL);
}

int main(void)
{
    rt_repeat r;
    const char *e1 = "app.lua:3: boom\nstack traceback:\n\tapp.lua:3: in function <app.lua:1>";
    const char *e1b = "app.lua:3: boom\nstack traceback:\n\t[C]: in function 'error'\n\tapp.lua:3: other";
    const char *e2 = "app.lua:9: other failure";

    CHECK(rt_repeat_text_len(e1) == strlen("app.lua:3: boom"));
    CHECK(rt_repeat_text_len(e2) == strlen(e2));
    CHECK(rt_repeat_text_len(NULL) == 0);

    rt_repeat_init(&r, 10000);
    /* the first is logged, the same error again (other traceback) is counted */
    CHECK(hit(&r, "handler failed on S/C", e1, 0) == 1);
    for (int i = 0; i < 500; i++)
        CHECK(hit(&r, "handler failed on S/C", e1b, 100 + (uint64_t)i) == 0);
    /* another place or another text is news */
    CHECK(hit(&r, "handler failed on S/D", e1, 700) == 1);
    CHECK(hit(&r, "handler failed on S/C", e2, 800) == 1);
    CHECK(r.n == 3);
    /* nothing to report before the window ends */
    CHECK(rt_repeat_flush(&r, 9999, 0, sum, NULL) == 3 && summaries == 0);
    /* window over: one summary; entries without repeats are forgotten */
    CHECK(rt_repeat_flush(&r, 10800, 0, sum, NULL) == 1);
    CHECK(summaries == 1);
    CHECK(strcmp(last, "handler failed on S/C: app.lua:3: boom (repeated 500 times in the last 10 s)") == 0);
    /* still repeating: quiet, counted in the next window */
    CHECK(hit(&r, "handler failed on S/C", e1, 12000) == 0);
    CHECK(hit(&r, "handler failed on S/D", e1, 12000) == 1);    /* it was forgotten: logged again */
    CHECK(rt_repeat_flush(&r, 20000, 0, sum, NULL) == 2 && summaries == 1);
    CHECK(rt_repeat_flush(&r, 22000, 0, sum, NULL) == 1 && summaries == 2);
    CHECK(strstr(last, "repeated 1 times") != NULL);
    /* a whole quiet window: forgotten, then logged in full again */
    CHECK(rt_repeat_flush(&r, 32000, 0, sum, NULL) == 0 && summaries == 2);
    CHECK(hit(&r, "handler failed on S/C", e1, 32001) == 1);
    /* an entry whose window passed with no repeat and no flush yet: logged afresh */
    CHECK(hit(&r, "handler failed on S/C", e1, 45000) == 1);
    /* final: every pending count is reported, the table emptied */
    CHECK(hit(&r, "handler failed on S/C", e1, 45001) == 0);
    CHECK(rt_repeat_flush(&r, 45002, 1, sum, NULL) == 0 && summaries == 3);
    /* a full table reports and starts over instead of growing */
    for (int i = 0; i < RT_REPEAT_MAX; i++) {
        char w[32];
        snprintf(w, sizeof w, "where %d", i);
        CHECK(hit(&r, w, e2, 50000) == 1);
        CHECK(hit(&r, w, e2, 50001) == 0);
    }
    CHECK(r.n == RT_REPEAT_MAX);
    CHECK(hit(&r, "one more", e2, 50002) == 1);
    CHECK(r.n == 1 && summaries == 3 + RT_REPEAT_MAX);
    /* long texts are cut to the key length, and still match */
    {
        char big[1000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        CHECK(hit(&r, "w", big, 60000) == 1);
        big[900] = 'y';
        CHECK(hit(&r, "w", big, 60001) == 0);
    }
    rt_repeat_free(&r);
    CHECK(r.n == 0);
    return DONE();
}
