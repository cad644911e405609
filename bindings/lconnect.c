/*
 * lconnect.c - jet.connect: options, credentials, the embedded default, and
 * the first connect without blocking the loop.
 *
 * cnats' natsConnection_Connect does a blocking TCP connect and handshake,
 * and its libuv adapter requires the first attach on the loop thread. So we
 * probe the server first with a non-blocking libuv TCP connect that also
 * reads the server's INFO line; only a server that sent one is handed to
 * natsConnection_Connect, whose handshake is then a few round trips. The
 * INFO also says whether the server wants a client certificate, which
 * cnats' own error for that case ("Expected 'PONG', got ''") does not. A
 * failed first connect is retried here with libuv timers (cnats'
 * RetryOnFailedConnect would attach from its reconnect thread, which the
 * adapter refuses), 0.1 s doubling up to reconnect.wait, for `timeout`
 * seconds (default 10).
 *
 * Secrets: URLs are shown redacted (rt_redact_url) in every log line and
 * error; the embedded server's token is set as an option, never in a URL.
 */
#include "jl.h"
#include "lconn.h"
#include "lconnect_auth.h"
#include "lmux.h"
#include "lperm.h"
#include "rt_mem.h"
#include "rt_natsuv.h"
#include "rt_secret.h"
#include "rt_server.h"

/* cnats reads at most this much per readable event (its default is 32 KiB):
 * the loop parses one buffer per iteration, so a larger one means fewer
 * iterations, reads and epoll waits per message under a flood (4, not 32,
 * per 1 MiB message). */
#define JL_IO_BUF_SIZE (256 * 1024)

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_DEFAULT 10.0   /* seconds of retrying the first connect */
#define RETRY_FIRST_MS 100             /* first wait between attempts, doubling */
#define PROBE_MS_MAX 2000              /* bound on one TCP connect + INFO */

/* ---- jet.connect ---- */

typedef struct connect_op {
    jl_conn   *c;
    rt_co     *co;          /* NULL once abandoned */
    char     **urls;
    int        nurls;
    int        next;        /* server to probe next */
    int        attempts;
    int        max_attempts;/* -1: forever */
    uint64_t   wait_ms;     /* cap of the wait between attempts (reconnect.wait) */
    uint64_t   next_wait_ms;
    double     started;
    double     deadline;    /* 0: none */
    int        pending;     /* libuv requests/handles in flight */
    int        has_cert;    /* a client certificate is configured */
    int        signs;       /* NKey or creds auth: the handshake signs a nonce */
    int        sign_retries;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_tcp_t   tcp;
    uv_connect_t creq;
    uv_timer_t probe_timer;
    const char *probe_why;  /* NULL: the probe got the server's INFO */
    int        probe_connected, probe_over;
    char       info[2048];  /* the server's INFO line, as far as read */
    size_t     info_len;
    int        tls_verify;  /* the INFO says: client certificates required */
    char       host[256], port[16];
    char       shown[256];  /* the current URL, redacted, for logs and errors */
} connect_op;

static void op_unpend(connect_op *op);

static void op_handle_closed(uv_handle_t *h)
{
    op_unpend(h->data);
}

static void op_free(connect_op *op)
{
    for (int i = 0; i < op->nurls; i++)
        free(op->urls[i]);
    free(op->urls);
    jl_conn_release(op->c);
    free(op);
}

/* The op is freed when it is finished (co == NULL) and nothing is pending. */
static void op_unpend(connect_op *op)
{
    if (--op->pending == 0 && op->co == NULL)
        op_free(op);
}

static void connect_finish(connect_op *op, int ok, const char *code, const char *detail)
{
    rt_co *co = op->co;
    lua_State *T = co ? rt_co_prepare(co) : NULL;
    jl_conn *c = op->c;
    int n = 1;

    op->co = NULL;
    uv_close((uv_handle_t *)&op->timer, op_handle_closed);
    if (T) {
        if (ok) {
            lua_rawgeti(T, LUA_REGISTRYINDEX, c->self_ref);
        } else {
            lua_pushnil(T);
            lua_pushstring(T, code);
            lua_pushstring(T, detail);
            n = 3;
        }
    }
    if (!ok) {
        /* never connected: drop the Lua object's hold on itself */
        c->state = JL_CONN_CLOSED;
        rt_hook_remove(&c->hook);
        luaL_unref(RT->L, LUA_REGISTRYINDEX, c->self_ref);
        c->self_ref = LUA_NOREF;
    }
    if (T)
        rt_co_resume(co, n);
}

static void connect_cancel(rt_co *co, void *p)
{
    connect_op *op = p;
    op->co = NULL;
    /* Stop retrying; in-flight probes finish and see co == NULL. */
    if (!uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, op_handle_closed);
}

static void start_attempt(connect_op *op);

static void retry_fired(uv_timer_t *t)
{
    start_attempt(t->data);
}

static void attempt_failed(connect_op *op, const char *why)
{
    uint64_t wait;
    op->attempts++;
    if (!op->co)
        return;
    if ((op->max_attempts >= 0 && op->attempts > op->max_attempts) ||
        (op->deadline > 0 && rt_now() >= op->deadline)) {
        char detail[768];
        snprintf(detail, sizeof detail, "jet.connect: cannot connect to %s: %s (%d attempt%s in %.1fs)",
                 op->shown, why, op->attempts, op->attempts == 1 ? "" : "s", rt_now() - op->started);
        connect_finish(op, 0, "connect_failed", detail);
        return;
    }
    /* 0.1 s doubling up to reconnect.wait, never past the deadline */
    wait = op->next_wait_ms < op->wait_ms ? op->next_wait_ms : op->wait_ms;
    op->next_wait_ms *= 2;
    if (op->deadline > 0) {
        double left = op->deadline - rt_now();
        if ((double)wait / 1000.0 > left)
            wait = left > 0 ? (uint64_t)(left * 1000.0) : 0;
    }
    rt_warn("connect to %s failed: %s; retrying in %.1fs (attempt %d%s)", op->shown, why,
            (double)wait / 1000.0, op->attempts, op->deadline > 0 ? "" : ", no timeout");
    op->next++;
    uv_timer_start(&op->timer, retry_fired, wait, 0);
}

static int status_retryable(natsStatus s)
{
    return s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR ||
           s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED ||
           s == NATS_STALE_CONNECTION;
}

/* The reason of a failed handshake: cnats' text, its last error, and what
 * we know better. Secrets in URLs are redacted. */
static const char *handshake_error(connect_op *op, natsStatus s, char *out, size_t n)
{
    char raw[512];
    const char *last = nats_GetLastError(NULL);
    snprintf(raw, sizeof raw, "%s%s%s", natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
    rt_redact(raw, out, n);
    return out;
}

/* The probe got an INFO: now the (short) cnats handshake on the loop thread. */
static void do_connect(connect_op *op)
{
    jl_conn *c = op->c;
    const char *url = op->urls[op->next % op->nurls];
    const char **order = rt_xmalloc((size_t)op->nurls * sizeof *order);
    natsStatus s;

    /* The server that answered goes first; cnats keeps the rest for reconnects. */
    order[0] = url;
    for (int i = 0, k = 1; i < op->nurls; i++)
        if (i != op->next % op->nurls)
            order[k++] = op->urls[i];
    natsOptions_SetServers(c->opts, order, op->nurls);
    free(order);
    /* messages of this connection's clients (subscriptions, consumers) are
     * taken on the loop right after each read event (rt_natsuv.c) */
    rt_natsuv_next_hook(jl_conn_after_read, c);
    s = natsConnection_Connect(&c->nc, c->opts);
    rt_natsuv_next_hook(NULL, NULL);
    if (s == NATS_OK) {
        rt_natsuv_learn(c->nc);
        if (jl_conn_mux_start(c) != 0) {
            natsConnection_Close(c->nc);
            connect_finish(op, 0, "nats_error", "jet.connect: cannot subscribe the reply inbox");
            return;
        }
        c->state = JL_CONN_CONNECTED;
        jl_conn_track(c);
        rt_hook_add(&c->hook);
        jl_conn_retain(c);        /* the connection's own ref, until closed */
        {
            char cu[256] = "", shown[256];
            natsConnection_GetConnectedUrl(c->nc, cu, sizeof cu);
            rt_info("connected to %s as %s", rt_redact_url(cu, shown, sizeof shown), c->name);
        }
        connect_finish(op, 1, NULL, NULL);
        return;
    }
    if (c->nc) {
        natsConnection_Destroy(c->nc);
        c->nc = NULL;
    }
    {
        char why[512], detail[1024];
        handshake_error(op, s, why, sizeof why);
        if ((s == NATS_NOT_PERMITTED || s == NATS_CONNECTION_AUTH_FAILED) && op->signs && op->sign_retries < 3) {
            /* cnats 3.4.1 sends an empty "sig" when the Ed25519 signature
             * of the server's nonce begins with a zero byte (its base64
             * encoder takes that for an empty input): 1 handshake in 256
             * fails with Authorization Violation. A new connection gets a
             * new nonce. */
            op->sign_retries++;
            rt_debug("connect to %s: %s; signing a new nonce (retry %d)", op->shown, why, op->sign_retries);
            do_connect(op);
            return;
        }
        if (op->tls_verify && !op->has_cert && s != NATS_NOT_PERMITTED && s != NATS_CONNECTION_AUTH_FAILED &&
            (s != NATS_SSL_ERROR || strstr(why, "alert"))) {
            /* our side of the TLS handshake went through (TLS 1.3), then the
             * server hung up: cnats says "Expected 'PONG', got ''" (with TLS
             * 1.2, an SSL alert); the INFO said it verifies client
             * certificates */
            snprintf(detail, sizeof detail, "jet.connect: %s: the server requires a client certificate "
                     "(tls = {cert=, key=}, or --tls-cert and --tls-key) and none was given (%s)", op->shown, why);
            connect_finish(op, 0, "tls_error", detail);
        } else if (status_retryable(s)) {
            attempt_failed(op, why);
        } else {
            snprintf(detail, sizeof detail, "jet.connect: %s: %s", op->shown, why);
            connect_finish(op, 0, jl_status_code(s), detail);
        }
    }
}

static void probe_done(connect_op *op)
{
    if (!op->co)
        return;
    if (op->probe_why)
        attempt_failed(op, op->probe_why);
    else
        do_connect(op);
}

static void probe_tcp_closed(uv_handle_t *h)
{
    connect_op *op = h->data;
    probe_done(op);
    op_unpend(op);
}

static void probe_timer_closed(uv_handle_t *h) { op_unpend(h->data); }

/* End the probe: why == NULL means the server sent its INFO. */
static void probe_over(connect_op *op, const char *why)
{
    if (op->probe_over)
        return;
    op->probe_over = 1;
    op->probe_why = why;
    uv_timer_stop(&op->probe_timer);
    uv_close((uv_handle_t *)&op->probe_timer, probe_timer_closed);
    uv_close((uv_handle_t *)&op->tcp, probe_tcp_closed);
}

static void info_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    connect_op *op = h->data;
    size_t room = sizeof op->info - 1 - op->info_len;
    buf->base = op->info + op->info_len;
    buf->len = room;
}

static void on_info(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    connect_op *op = st->data;
    if (nread == 0 || op->probe_over)
        return;
    if (nread > 0) {
        op->info_len += (size_t)nread;
        op->info[op->info_len] = '\0';
        if (!strstr(op->info, "\r\n") && op->info_len < sizeof op->info - 1)
            return;
        op->tls_verify = strstr(op->info, "\"tls_verify\":true") != NULL;
    }
    /* an INFO, or the server closed at once (too many connections, ...):
     * either way cnats tells the rest */
    probe_over(op, NULL);
}

static void on_probe(uv_connect_t *req, int status)
{
    connect_op *op = req->handle->data;
    if (status == UV_ECANCELED || op->probe_over)
        return;          /* probe_timeout closed the handles already */
    if (status < 0) {
        probe_over(op, uv_strerror(status));
        return;
    }
    op->probe_connected = 1;
    if (uv_read_start((uv_stream_t *)&op->tcp, info_alloc, on_info) != 0)
        probe_over(op, NULL);
}

static void probe_timeout(uv_timer_t *t)
{
    connect_op *op = t->data;
    /* closing the socket makes a pending on_probe run with UV_ECANCELED */
    probe_over(op, op->probe_connected ? "the server accepted the connection but sent no INFO"
                                       : "no answer (connect timed out)");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    connect_op *op = req->data;
    uint64_t ms = PROBE_MS_MAX;
    if (status < 0 || !op->co) {
        if (op->co)
            attempt_failed(op, uv_strerror(status));
        if (res)
            uv_freeaddrinfo(res);
        op_unpend(op);
        return;
    }
    if (op->deadline > 0) {
        /* never much past the deadline, never too short to answer */
        double left = (op->deadline - rt_now()) * 1000.0;
        ms = left < 250 ? 250 : left < PROBE_MS_MAX ? (uint64_t)left : PROBE_MS_MAX;
    }
    uv_tcp_init(RT->loop, &op->tcp);
    op->tcp.data = op;
    uv_timer_init(RT->loop, &op->probe_timer);
    op->probe_timer.data = op;
    op->pending += 2;     /* tcp + probe timer */
    op->probe_why = NULL;
    op->probe_connected = op->probe_over = 0;
    op->info_len = 0;
    op->info[0] = '\0';
    op->tls_verify = 0;
    if (uv_tcp_connect(&op->creq, &op->tcp, res->ai_addr, on_probe) != 0)
        probe_over(op, "cannot start a TCP connect");
    else
        uv_timer_start(&op->probe_timer, probe_timeout, ms, 0);
    uv_freeaddrinfo(res);
    op_unpend(op);
}

/* host and port of a NATS URL: [scheme://][user[:pass]@]host[:port] */
static void split_url(const char *url, char *host, size_t hl, char *port, size_t pl)
{
    const char *p = strstr(url, "://");
    const char *at, *end, *colon;
    p = p ? p + 3 : url;
    at = strrchr(p, '@');
    if (at)
        p = at + 1;
    end = p + strcspn(p, "/?");
    if (*p == '[') {                       /* [::1]:4222 */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        size_t n = rb ? (size_t)(rb - p - 1) : 0;
        snprintf(host, hl, "%.*s", (int)n, p + 1);
        colon = rb && rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        snprintf(host, hl, "%.*s", (int)((colon ? colon : end) - p), p);
    }
    if (colon)
        snprintf(port, pl, "%.*s", (int)(end - colon - 1), colon + 1);
    else
        snprintf(port, pl, "4222");
    if (!*host)
        snprintf(host, hl, "127.0.0.1");
}

static void start_attempt(connect_op *op)
{
    struct addrinfo hints;
    const char *url;

    if (!op->co)
        return;
    url = op->urls[op->next % op->nurls];
    rt_redact_url(url, op->shown, sizeof op->shown);
    split_url(url, op->host, sizeof op->host, op->port, sizeof op->port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    op->gai.data = op;
    op->pending++;
    if (uv_getaddrinfo(RT->loop, &op->gai, on_resolved, op->host, op->port, &hints) != 0) {
        op->pending--;
        attempt_failed(op, "cannot resolve host");
    }
}

static void embedded_ready(const char *url, const char *token, const char *err, void *data)
{
    connect_op *op = data;
    if (!op->co) {
        op_unpend(op);
        return;
    }
    if (!url) {
        op->pending--;
        connect_finish(op, 0, "no_server", err);
        return;
    }
    natsOptions_SetToken(op->c->opts, token);
    op->urls = rt_xcalloc(1, sizeof *op->urls);
    op->urls[0] = rt_xstrdup(url);
    op->nurls = 1;
    op->pending--;
    start_attempt(op);
}

/* Collect a list of URL strings from a string or a table at idx. */
static int read_servers(lua_State *L, int idx, connect_op *op)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        op->urls = rt_xcalloc(1, sizeof *op->urls);
        op->urls[0] = rt_xstrdup(lua_tostring(L, idx));
        op->nurls = 1;
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        jl_argerror(L, "jet.connect", "servers", "string or list of strings expected, got %s", jl_typename(L, idx));
    int n = (int)lua_objlen(L, idx);
    if (n == 0)
        jl_argerror(L, "jet.connect", "servers", "the list is empty");
    op->urls = rt_xcalloc((size_t)n, sizeof *op->urls);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            jl_argerror(L, "jet.connect", "servers", "entry %d: string expected, got %s", i, luaL_typename(L, -1));
        op->urls[op->nurls++] = rt_xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return 1;
}

/* jet.connect{servers=, name=, user=, password=, password_file=, token=,
 *             token_file=, creds=, nkey=, tls={ca=, cert=, key=},
 *             reconnect={max=, wait=}, timeout=}
 * (credentials and TLS: lconnect_auth.c) */
static int jet_connect(lua_State *L)
{
    static const char *const keys[] = {"servers", "name", "user", "password", "password_file", "token",
                                       "token_file", "creds", "nkey", "tls", "reconnect", "timeout", NULL};
    static const char *const rkeys[] = {"max", "wait", NULL};
    const rt_cfg *cfg = &RT->cfg;
    int has = jl_opt_table(L, 1, "jet.connect", "opts");
    int explicit_servers = 0;
    const char *name = NULL;
    jl_connect_auth auth;
    double max = -1, wait = 2.0, timeout = CONNECT_TIMEOUT_DEFAULT;
    rt_co *co = rt_co_current(L, "jet.connect");
    connect_op *op;
    jl_conn *c;
    conn_ud *ud;

    if (has) {
        jl_check_keys(L, 1, "jet.connect", keys);
        lua_getfield(L, 1, "servers");
        explicit_servers = !lua_isnil(L, -1);
        lua_pop(L, 1);
        name = jl_field_string(L, 1, "name", "jet.connect", NULL);
        lua_getfield(L, 1, "timeout");
        if (!lua_isnil(L, -1)) {
            timeout = jl_field_number(L, 1, "timeout", "jet.connect", 0);
            if (!(timeout > 0))
                jl_argerror(L, "jet.connect", "timeout", "must be > 0 seconds, got %g (math.huge: retry forever)",
                            timeout);
        }
        lua_pop(L, 1);
        lua_getfield(L, 1, "reconnect");
        if (jl_opt_table(L, -1, "jet.connect", "reconnect")) {
            int r = lua_gettop(L);
            jl_check_keys(L, r, "jet.connect reconnect", rkeys);
            max = jl_field_number_as(L, r, "max", "reconnect.max", "jet.connect", -1);
            wait = jl_field_number_as(L, r, "wait", "reconnect.wait", "jet.connect", 2.0);
            if (wait < 0)
                jl_argerror(L, "jet.connect", "reconnect.wait", "must be >= 0 seconds");
        }
        lua_pop(L, 1);
    }
    jl_connect_auth_read(L, has, explicit_servers, &auth);
    if (!explicit_servers && !name)
        name = cfg->name;

    c = rt_xcalloc(1, sizeof *c);
    c->self_ref = LUA_NOREF;
    for (int i = 0; i < JL_EV_COUNT; i++)
        c->ev_ref[i] = LUA_NOREF;
    c->hook.begin = jl_conn_hook_begin;
    c->hook.force = jl_conn_hook_force;
    c->hook.data = c;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "jetlua");
    /* From here the userdata owns c: an error raised below frees it via __gc. */
    ud = lua_newuserdata(L, sizeof *ud);
    ud->c = c;
    jl_conn_retain(c);
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);

    NATS_CHECK(natsOptions_Create(&c->opts), "opts");
    natsOptions_SetEventLoop(c->opts, RT->loop, rt_natsuv_attach, rt_natsuv_read,
                             rt_natsuv_write, rt_natsuv_detach);
    natsOptions_SetNoRandomize(c->opts, true);
    natsOptions_SetIOBufSize(c->opts, JL_IO_BUF_SIZE);
    natsOptions_SetTimeout(c->opts, 5000);
    natsOptions_SetAllowReconnect(c->opts, true);
    natsOptions_SetMaxReconnect(c->opts, max < 0 ? -1 : (int)max);
    natsOptions_SetReconnectWait(c->opts, (int64_t)(wait * 1000.0));
    natsOptions_SetName(c->opts, c->name);
    natsOptions_SetDisconnectedCB(c->opts, jl_conn_on_disconnected, c);
    natsOptions_SetReconnectedCB(c->opts, jl_conn_on_reconnected, c);
    natsOptions_SetClosedCB(c->opts, jl_conn_on_closed, c);
    natsOptions_SetErrorHandler(c->opts, jl_conn_on_error, c);
    jl_connect_auth_apply(L, c->opts, &auth);

    op = rt_xcalloc(1, sizeof *op);
    if (explicit_servers) {
        lua_getfield(L, 1, "servers");
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TTABLE) {
            free(op);
            jl_argerror(L, "jet.connect", "servers", "string or list of strings expected, got %s",
                        luaL_typename(L, -1));
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            /* every entry checked here, before anything is allocated that a
             * raise would leak */
            int n = (int)lua_objlen(L, -1);
            if (n == 0) {
                free(op);
                jl_argerror(L, "jet.connect", "servers", "the list is empty");
            }
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) != LUA_TSTRING) {
                    free(op);
                    jl_argerror(L, "jet.connect", "servers", "entry %d: string expected, got %s", i,
                                luaL_typename(L, -1));
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops the userdata */
    op->c = c;
    jl_conn_retain(c);
    op->max_attempts = max < 0 ? -1 : (int)max;
    op->wait_ms = (uint64_t)(wait * 1000.0);
    op->next_wait_ms = RETRY_FIRST_MS;
    op->started = rt_now();
    op->deadline = isinf(timeout) ? 0 : op->started + timeout;
    op->has_cert = auth.cert != NULL;
    op->signs = auth.nkey != NULL || auth.creds != NULL;
    uv_timer_init(RT->loop, &op->timer);
    op->timer.data = op;
    op->pending = 1;                 /* the retry timer, closed at finish */
    op->co = co;

    if (explicit_servers) {
        lua_getfield(L, 1, "servers");
        read_servers(L, lua_gettop(L), op);
        lua_pop(L, 1);
    } else if (cfg->nservers > 0) {
        op->urls = rt_xcalloc((size_t)cfg->nservers, sizeof *op->urls);
        for (int i = 0; i < cfg->nservers; i++)
            op->urls[op->nurls++] = rt_xstrdup(cfg->servers[i]);
    }
    if (op->nurls > 0) {
        start_attempt(op);
    } else {
        op->pending++;
        rt_server_ensure(embedded_ready, op);
    }
    if (!op->co) {
        /* finished synchronously (cannot happen today: probes are async) */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);
        return 1;
    }
    return rt_co_wait(co, connect_cancel, op);
}


void jl_inject_connect(lua_State *L)
{
    rt_natsuv_init();
    lua_pushcfunction(L, jet_connect);
    lua_setfield(L, -2, "connect");
}
