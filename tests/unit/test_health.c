/*
 * test_health.c - the readiness registry (rt_health.c): what makes the
 * process unready, what a failure outlives, and the heartbeat's arithmetic.
 */
#include "check.h"
#include "rt_health.h"

#include <string.h>

int main(void)
{
    char why[512];
    rt_health *c1, *c2, *k1, *k2, *k3;

    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "no connection") == 0);

    c1 = rt_health_add(RT_HEALTH_CONNECTION, "connection a");
    CHECK(rt_health_ready(why, sizeof why) == 1);
    CHECK(strcmp(why, "") == 0);

    /* a consumer alone does not count as a connection */
    rt_health_remove(c1);
    k1 = rt_health_add(RT_HEALTH_CONSUMER, "consumer S/C");
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "no connection") == 0);
    c1 = rt_health_add(RT_HEALTH_CONNECTION, "connection a");
    CHECK(rt_health_ready(why, sizeof why) == 1);

    /* reconnecting: unready with the reason, then ready again */
    rt_health_fail(c1, "is %s", "reconnecting");
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "connection a is reconnecting") == 0);
    rt_health_ok(c1);
    CHECK(rt_health_ready(why, sizeof why) == 1);

    /* every failure is listed, in registration order */
    c2 = rt_health_add(RT_HEALTH_CONNECTION, "connection b");
    rt_health_fail(c2, "is reconnecting");
    rt_health_fail(k1, "failed: consumer_deleted (409 Consumer Deleted)");
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "consumer S/C failed: consumer_deleted (409 Consumer Deleted); "
                      "connection b is reconnecting") == 0);
    /* a small buffer holds whole reasons only */
    CHECK(rt_health_ready(why, 40) == 0);
    CHECK(strcmp(why, "") == 0 || strchr(why, ';') == NULL);
    CHECK(rt_health_ready(why, 80) == 0);
    CHECK(strcmp(why, "consumer S/C failed: consumer_deleted (409 Consumer Deleted)") == 0);
    rt_health_remove(c2);

    /* the owner goes away: an ok item goes, a failed one stays */
    k2 = rt_health_add(RT_HEALTH_CONSUMER, "consumer S/D");
    rt_health_release(k2);
    rt_health_release(k1);                     /* failed: kept, ownerless */
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strstr(why, "consumer S/C failed") != NULL);
    CHECK(strstr(why, "S/D") == NULL);

    /* starting the same consumer again ends the old failure */
    k3 = rt_health_add(RT_HEALTH_CONSUMER, "consumer S/C");
    CHECK(rt_health_ready(why, sizeof why) == 1);
    /* ... also one whose owner is still there (it goes when released) */
    rt_health_fail(k3, "failed: x");
    k1 = rt_health_add(RT_HEALTH_CONSUMER, "consumer S/C");
    CHECK(rt_health_ready(why, sizeof why) == 1);
    rt_health_release(k3);
    rt_health_remove(k1);
    CHECK(rt_health_ready(why, sizeof why) == 1);

    /* removing on purpose forgets even a failure */
    k1 = rt_health_add(RT_HEALTH_CONSUMER, "consumer S/E");
    rt_health_fail(k1, "failed: bad_request (400)");
    rt_health_remove(k1);
    CHECK(rt_health_ready(why, sizeof why) == 1);

    /* NULL is safe everywhere (fetch engines have no item) */
    rt_health_ok(NULL);
    rt_health_fail(NULL, "x");
    rt_health_remove(NULL);
    rt_health_release(NULL);

    /* shutting down: never ready again */
    rt_health_set_stopping();
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "shutting down") == 0);

    /* heartbeat */
    CHECK(rt_health_stalled_ms(5000) == 0);        /* no beat yet */
    rt_health_beat(1000);
    CHECK(rt_health_stalled_ms(1000) == 0);
    CHECK(rt_health_stalled_ms(7500) == 6500);
    CHECK(rt_health_stalled_ms(999) == 0);          /* clocks read out of order */

    rt_health_reset();
    CHECK(rt_health_ready(why, sizeof why) == 0);
    CHECK(strcmp(why, "no connection") == 0);
    return DONE();
}
