/*
 * lperm.c - asynchronous server errors: permission violations above all.
 *
 * nats-server answers a publish or subscribe the user may not make with
 * -ERR 'Permissions Violation for Publish to "x"' (or 'Subscription to
 * "x" [using queue "q"]', or 'Publish with Reply of "r"') and keeps the
 * connection. cnats 3.4.1 passes NATS_NOT_PERMITTED to the async error
 * handler, with the server's sentence as that thread's last error text
 * (lconn.c carries it here). The publish itself had returned true long
 * before; what waits on its outcome hears it now instead of timing out:
 *  - requests (nc:request, js:publish) to that subject, or whose reply
 *    subject was refused: nil, "permission_denied", detail;
 *  - async publishes (the connection's clients): their futures fail alike;
 *  - a refused subscription is stopped (it would never get a message, yet
 *    keep the process alive; cnats would re-send it at every reconnect);
 *  - nc:on("error") gets ("permission_denied", sentence, subject).
 */
#include "jl.h"
#include "lconn.h"

#include <stdio.h>
#include <string.h>

static void publish_denied(jl_conn *c, const rt_perm *p, const char *text)
{
    unsigned gen;
    jl_conn_fail_replies(c, p, "permission_denied", text);
again:
    gen = c->list_gen;
    for (jl_client *k = c->clients, *next; k; k = next) {
        next = k->next;
        if (k->denied)
            k->denied(k, p, text);
        if (c->list_gen != gen)
            goto again;
    }
}

void jl_conn_server_error(jl_conn *c, natsStatus s, const char *text)
{
    rt_perm p;

    if (s == NATS_SLOW_CONSUMER) {
        rt_warn("connection %s: slow consumer: a subscription reached its pending limit, messages "
                "were dropped", c->name);
        jl_conn_fire_error(c, "slow_consumer", "a subscription reached its pending limit: messages were dropped",
                           NULL);
        return;
    }
    if (s == NATS_NOT_PERMITTED && rt_proto_perm(text, &p) != RT_PERM_NONE) {
        rt_warn("connection %s: %s", c->name, text);
        if (p.op == RT_PERM_SUBSCRIBE)
            jl_conn_subs_denied(c, &p, text);
        else
            publish_denied(c, &p, text);
        if (c->state != JL_CONN_CLOSED)
            jl_conn_fire_error(c, "permission_denied", text, p.subject);
        return;
    }
    if (!text || !*text)
        text = natsStatus_GetText(s);
    rt_warn("connection %s: %s", c->name, text);
    jl_conn_fire_error(c, jl_status_code(s), text, NULL);
}
