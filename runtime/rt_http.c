/*
 * rt_http.c - the --metrics endpoint (see rt_http.h). One request per
 * connection (Connection: close), small fixed responses; a client that sends
 * more than 16 KiB of headers or garbage gets 400 and is closed.
 */
#include "rt_http.h"
#include "rt.h"
#include "rt_metrics.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int (*rt_http_ready)(const char **why);

static uv_tcp_t server;
static int      port;

typedef struct client {
    uv_tcp_t              tcp;
    http_parser           parser;
    char                  url[256];
    size_t                url_len;
    size_t                seen;
    int                   responded;
    uv_write_t            wr;
    char                 *out;
} client;

static http_parser_settings settings;

static void client_closed(uv_handle_t *h)
{
    client *c = h->data;
    free(c->out);
    free(c);
}

static void close_client(client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void written(uv_write_t *w, int status)
{
    close_client(w->data);
}

static void respond(client *c, int code, const char *type, const char *body, size_t len)
{
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
                       : code == 503 ? "Service Unavailable" : "Bad Request";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      code, reason, type, len);
    uv_buf_t b;
    c->responded = 1;
    c->out = malloc((size_t)hn + len);
    memcpy(c->out, head, (size_t)hn);
    memcpy(c->out + hn, body, len);
    b = uv_buf_init(c->out, (unsigned)((size_t)hn + len));
    c->wr.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, written) != 0)
        close_client(c);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    client *c = p->data;
    if (c->url_len + len >= sizeof c->url)
        return 1;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    client *c = p->data;
    char *q = strchr(c->url, '?');
    if (q)
        *q = '\0';
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        respond(c, 405, "text/plain", "GET only\n", 9);
    } else if (strcmp(c->url, "/metrics") == 0) {
        size_t n;
        char *text = rt_metrics_render(&n);
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
        free(text);
    } else if (strcmp(c->url, "/healthz") == 0) {
        const char *why = "no connection yet";
        char body[256];
        int ok = rt_http_ready ? rt_http_ready(&why) : 0;
        if (ok)
            respond(c, 200, "text/plain", "ok\n", 3);
        else {
            int n = snprintf(body, sizeof body, "not ready: %s\n", why);
            respond(c, 503, "text/plain", body, (size_t)n);
        }
    } else {
        respond(c, 404, "text/plain", "not found (try /metrics or /healthz)\n", 37);
    }
    return 1;   /* one request per connection */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char slab[4096];
    *b = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    client *c = s->data;
    size_t done;
    if (n < 0) {
        close_client(c);
        return;
    }
    if (n == 0 || c->responded)
        return;
    c->seen += (size_t)n;
    done = http_parser_execute(&c->parser, &settings, b->base, (size_t)n);
    if (c->responded)
        return;
    if (done != (size_t)n || c->seen > 16384)
        respond(c, 400, "text/plain", "bad request\n", 12);
}

static void on_connection(uv_stream_t *srv, int status)
{
    client *c;
    if (status < 0)
        return;
    c = calloc(1, sizeof *c);
    uv_tcp_init(RT->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        close_client(c);
        return;
    }
    uv_unref((uv_handle_t *)&c->tcp);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

int rt_http_start(const char *hostport, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    struct sockaddr_in addr;
    struct sockaddr_in bound;
    int len = sizeof bound, r;
    char *end;
    long p;

    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host) {
        snprintf(err, errlen, "'%s' is not HOST:PORT (for example 127.0.0.1:9090)", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || end == colon + 1) {
        snprintf(err, errlen, "'%s': the port must be a number from 0 to 65535", hostport);
        return -1;
    }
    if (uv_ip4_addr(host, (int)p, &addr) != 0) {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 address", hostport, host);
        return -1;
    }
    settings.on_url = on_url;
    settings.on_message_complete = on_complete;
    uv_tcp_init(RT->loop, &server);
    if ((r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&server, 64, on_connection)) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", hostport, uv_strerror(r));
        uv_close((uv_handle_t *)&server, NULL);
        return -1;
    }
    uv_unref((uv_handle_t *)&server);
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    port = ntohs(bound.sin_port);
    rt_info("metrics on http://%s:%d/metrics (health: /healthz)", host, port);
    return 0;
}

int rt_http_port(void) { return port; }
