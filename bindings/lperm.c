/*
 * lperm.c - asynchronous server errors: permission violations above all.
 *
 * nats-server answers a publish or subscribe the user may not make with
 * -ERR 'Permissions Violation for Publish to "x"' (or 'Subscription to
 * "x" [using queue "q"]', or 'Publish with Reply of "r"') and keeps the
 * connection. cnats 3.4.1 passes NATS_NOT_PERMITTED to the async error
 * handler (jl_conn_on_error, on its own thread), with the server's sentence
 * as that thread's last error text; it is carried to the loop here. The
 * publish itself had returned true long before; what waits on its outcome
 * hears it now instead of timing out:
 *  - requests (nc:request, js:publish) to that subject, or whose reply
 *    subject was refused: nil, "permission_denied", detail;
 *  - async publishes (the connection's clients, `denied`): their futures
 *    fail alike;
 *  - a refused subscription (the clients' `sub_denied`) is stopped: it
 *    would never get a message, yet keep the process alive; cnats would
 *    re-send it at every reconnect;
 *  - nc:on("error") gets ("permission_denied", sentence, subject).
 */
#include "jl.h"
#include "lconn.h"
#include "lperm.h"
#include "rt_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tell every client (p->op says which kind of refusal). A client may stop
 * and free another: start over when the list changed (each is idempotent). */
static void clients_denied(jl_conn *c, const rt_perm *p, const char *text)
{
    unsigned gen;
again:
    gen = c->list_gen;
    for (jl_client *k = c->clients, *next; k; k = next) {
        void (*fn)(jl_client *, const rt_perm *, const char *) =
            p->op == RT_PERM_SUBSCRIBE ? k->sub_denied : k->denied;
        next = k->next;
        if (fn)
            fn(k, p, text);
        if (c->list_gen != gen)
            goto again;
    }
}

static void server_error(jl_conn *c, natsStatus s, const char *text)
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
        if (p.op != RT_PERM_SUBSCRIBE)
            jl_conn_fail_replies(c, &p, "permission_denied", text);
        clients_denied(c, &p, text);
        if (c->state != JL_CONN_CLOSED)
            jl_conn_fire_error(c, "permission_denied", text, p.subject);
        return;
    }
    if (!text || !*text)
        text = natsStatus_GetText(s);
    rt_warn("connection %s: %s", c->name, text);
    jl_conn_fire_error(c, jl_status_code(s), text, NULL);
}

/* An asynchronous error from cnats, with the server's sentence when there
 * is one (cnats hands it to the error handler's thread as its last error). */
typedef struct srv_err {
    natsStatus s;
    char       text[];
} srv_err;

static void conn_error(void *a, void *b)
{
    jl_conn *c = a;
    srv_err *e = b;
    if (c->state != JL_CONN_CLOSED)
        server_error(c, e->s, e->text);
    free(e);
}

void jl_conn_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *cl)
{
    const char *t = err == NATS_SLOW_CONSUMER ? NULL : jl_last_error();
    size_t n = t ? strlen(t) : 0;
    srv_err *e = rt_xmalloc(sizeof *e + n + 1);
    e->s = err;
    memcpy(e->text, t ? t : "", n);
    e->text[n] = '\0';
    if (rt_post_try(conn_error, cl, e) != 0)
        free(e);
}
