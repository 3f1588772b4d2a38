/* sardana_http.c — the Sardana recorder's HTTP POSTs as a weir stream.
 *
 * dranspose's Sardana ingester is an HTTP server: the recorder POSTs
 * /v1/data_desc (DataDescription: the scan starts), /v1/record_data (one
 * point), /v1/custom_data (ignored) and /v1/record_end. Here libmicrohttpd
 * takes the bodies (at most 16 MiB each) and hands every one, unchanged, to
 * the stream's ZeroMQ socket through an inproc PUSH socket, so the live
 * source treats Sardana like any other stream (src/formats/sardana.c
 * classifies the messages). The push blocks when the reader is behind, and
 * with it the HTTP answer: back-pressure reaches the recorder. */
#include "sardana_http.h"

#include "weir/error.h"
#include "weir/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MAX_BODY (16u << 20)

struct weir_sardana_http {
    struct MHD_Daemon *d;
    void *push; /* used by the MHD thread only (one internal thread) */
    pthread_mutex_t mu;
    unsigned long refused;
    volatile int stopping; /* set before the daemon stops: a blocked push gives up */
};

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
} body;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", code == 200 ? "application/json" : "text/plain");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static int known_path(const char *url)
{
    return !strcmp(url, "/v1/data_desc") || !strcmp(url, "/v1/record_data") ||
           !strcmp(url, "/v1/record_end") || !strcmp(url, "/v1/custom_data");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    weir_sardana_http *h = cls;
    body *b = *con_cls;
    if (!b) { /* first call: headers only */
        if (strcmp(method, "POST") || !known_path(url)) {
            pthread_mutex_lock(&h->mu);
            h->refused++;
            pthread_mutex_unlock(&h->mu);
            return reply(c, strcmp(method, "POST") ? 405 : 404,
                         "Sardana ingest: POST /v1/data_desc, /v1/record_data, /v1/record_end\n");
        }
        b = calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (b->len + *upload_size > MAX_BODY) {
            b->too_big = 1;
        } else if (!b->too_big) {
            if (b->len + *upload_size > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + *upload_size)
                    cap *= 2;
                char *nb = realloc(b->buf, cap);
                if (!nb) return MHD_NO;
                b->buf = nb;
                b->cap = cap;
            }
            memcpy(b->buf + b->len, upload, *upload_size);
            b->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole body is here */
    if (b->too_big) {
        pthread_mutex_lock(&h->mu);
        h->refused++;
        pthread_mutex_unlock(&h->mu);
        return reply(c, 413, "Sardana ingest: body larger than 16 MiB\n");
    }
    if (!strcmp(url, "/v1/custom_data")) return reply(c, 200, "{}"); /* as dranspose: ignored */
    /* waits while the pipeline is behind (the send times out in slices so a
     * stop is seen) */
    while (zmq_send(h->push, b->buf ? b->buf : "", b->len, 0) < 0)
        if (zmq_errno() != EAGAIN || h->stopping)
            return reply(c, 503, "Sardana ingest: the pipeline is closing\n");
    return reply(c, 200, "{}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    body *b = *con_cls;
    if (b) {
        free(b->buf);
        free(b);
    }
    *con_cls = NULL;
}

int weir_sardana_http_start(void *zctx, const char *endpoint, const char *inproc,
                            weir_sardana_http **out, char *err, size_t errlen)
{
    *out = NULL;
    char host[128];
    int port = 0;
    if (sscanf(endpoint, "http://%127[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535) {
        snprintf(err, errlen, "sardana: endpoint must be http://HOST:PORT, got '%s'", endpoint);
        return WEIR_EINVAL;
    }
    weir_sardana_http *h = calloc(1, sizeof *h);
    if (!h) return WEIR_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    h->push = zmq_socket(zctx, ZMQ_PUSH);
    int linger = 0, slice = 200;
    if (h->push) {
        zmq_setsockopt(h->push, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(h->push, ZMQ_SNDTIMEO, &slice, sizeof slice);
    }
    if (!h->push || zmq_connect(h->push, inproc)) {
        snprintf(err, errlen, "sardana: cannot connect to %s: %s", inproc,
                 zmq_strerror(zmq_errno()));
        weir_sardana_http_stop(h);
        return WEIR_EIO;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "sardana: '%s' is not an IPv4 address", host);
        weir_sardana_http_stop(h);
        return WEIR_EINVAL;
    }
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                            NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_CONNECTION_LIMIT,
                            64u, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "sardana: cannot serve HTTP on %s", endpoint);
        weir_sardana_http_stop(h);
        return WEIR_EIO;
    }
    *out = h;
    return WEIR_OK;
}

unsigned long weir_sardana_http_refused(weir_sardana_http *h)
{
    if (!h) return 0;
    pthread_mutex_lock(&h->mu);
    unsigned long n = h->refused;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void weir_sardana_http_stop(weir_sardana_http *h)
{
    if (!h) return;
    h->stopping = 1;
    if (h->d) MHD_stop_daemon(h->d);
    if (h->push) zmq_close(h->push);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
