/*
 * test_http_addr.c - the --metrics address parser (rt_http_split):
 * HOST:PORT, [IPV6]:PORT, :PORT, and the mistakes people make.
 */
#include "check.h"
#include "rt_http.h"

#include <string.h>

int main(void)
{
    char buf[256], host[64];
    int port = -1;

    /* --metrics addresses */
    CHECK(rt_http_split("127.0.0.1:9464", host, sizeof host, &port, buf, sizeof buf) == 0);
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 9464);
    CHECK(rt_http_split("localhost:0", host, sizeof host, &port, buf, sizeof buf) == 0);
    CHECK(strcmp(host, "localhost") == 0 && port == 0);
    CHECK(rt_http_split("[::1]:9464", host, sizeof host, &port, buf, sizeof buf) == 0);
    CHECK(strcmp(host, "::1") == 0 && port == 9464);
    CHECK(rt_http_split(":9464", host, sizeof host, &port, buf, sizeof buf) == 0);
    CHECK(strcmp(host, "") == 0 && port == 9464);
    CHECK(rt_http_split("[::]:1", host, sizeof host, &port, buf, sizeof buf) == 0);
    CHECK(strcmp(host, "::") == 0 && port == 1);
    CHECK(rt_http_split("nowhere", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(rt_http_split("::1:9464", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(strstr(buf, "brackets") != NULL);
    CHECK(rt_http_split("[::1]9464", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(rt_http_split("h:65536", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(rt_http_split("h:-1", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(rt_http_split("h:", host, sizeof host, &port, buf, sizeof buf) == -1);
    CHECK(rt_http_split("h:12x", host, sizeof host, &port, buf, sizeof buf) == -1);
    return DONE();
}
