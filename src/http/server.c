/* server.c — the HTTP control plane's server (weir/http.h): libmicrohttpd
 * glue, the engine attachment, the ticker and the Server-Sent Events feed.
 *
 * libmicrohttpd runs a thread per connection, bounded by a connection
 * limit, a per-IP limit and an idle timeout, so a slow or stuck client
 * holds only its own thread until the timeout drops it. The access handler
 * gathers a request (refusing bad tokens, content types and oversized
 * bodies before reading them) and passes it to api.c's http_handle.
 *
 * SSE: a ticker thread wakes every sse_period_ms, refreshes the rate
 * estimate, and when anyone listens builds the status JSON and (when the
 * results store has a new version) the result versions; it then wakes the
 * streams. Each stream's content reader sends only the latest of each, so
 * a client that reads slowly skips updates instead of queueing them, and
 * the engine is read by the ticker alone, through snapshots — a client can
 * never make the pipeline wait. */
#include "http_internal.h"

#include "weir/error.h"
#include "weir/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define COMP "http"

/* The default web directory: WEIR_WEB_DIR when the build defines it, else
 * "web" beside the running executable — build/weir and the tests in build/
 * find the page the web build puts in build/web. */
static char *default_web_dir(void)
{
#ifdef WEIR_WEB_DIR
    return strdup(WEIR_WEB_DIR);
#else
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return strdup("web");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    size_t len = strlen(exe) + 5;
    char *d = malloc(len);
    if (d) snprintf(d, len, "%s/web", exe);
    return d;
#endif
}

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

/* ---- state, attach ---- */

void weir_http_set_state(weir_http *h, weir_http_state st, const char *error)
{
    pthread_mutex_lock(&h->mu);
    h->state = st;
    snprintf(h->error, sizeof h->error, "%s", error ? error : "");
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

weir_http_state weir_http_get_state(weir_http *h)
{
    pthread_mutex_lock(&h->mu);
    weir_http_state s = h->state;
    pthread_mutex_unlock(&h->mu);
    return s;
}

void weir_http_attach(weir_http *h, weir_engine *e, weir_results *results)
{
    weir_http_detach(h);
    pthread_rwlock_wrlock(&h->eng_lock);
    h->eng = e;
    if (results) h->results = results;
    pthread_rwlock_unlock(&h->eng_lock);
    pthread_mutex_lock(&h->mu);
    h->rate_t = 0;
    h->events_per_s = h->bytes_per_s = 0;
    pthread_mutex_unlock(&h->mu);
}

void weir_http_attach_live(weir_http *h, weir_live *l)
{
    pthread_rwlock_wrlock(&h->eng_lock);
    h->live = l;
    pthread_rwlock_unlock(&h->eng_lock);
}

void weir_http_detach(weir_http *h)
{
    pthread_rwlock_wrlock(&h->eng_lock);
    weir_engine *e = h->eng;
    h->eng = NULL;
    weir_params *p = e ? weir_engine_params_copy(e) : NULL;
    if (e) weir_engine_stats(e, h->last_stats);
    pthread_rwlock_unlock(&h->eng_lock);
    if (!e) return;
    pthread_mutex_lock(&h->mu);
    h->have_last_stats = 1;
    if (p) {
        weir_params_free(h->kept_params);
        h->kept_params = p;
    }
    h->events_per_s = h->bytes_per_s = 0;
    pthread_mutex_unlock(&h->mu);
}

void weir_http_counters_get(weir_http *h, weir_http_counters *out)
{
    pthread_mutex_lock(&h->mu);
    *out = h->ctr;
    pthread_mutex_unlock(&h->mu);
}

int weir_http_port(const weir_http *h)
{
    return h->port;
}

/* ---- creation ---- */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int http_create(const weir_http_config *cfg, weir_http **out, char *err, size_t errlen)
{
    *out = NULL;
    weir_http *h = calloc(1, sizeof *h);
    if (!h) return WEIR_ENOMEM;
    pthread_rwlock_init(&h->eng_lock, NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->addr = strdup(cfg->addr && *cfg->addr ? cfg->addr : "127.0.0.1");
    h->token = dup_or_null(cfg->token);
    h->token_len = h->token ? strlen(h->token) : 0;
    h->web_dir = cfg->web_dir && *cfg->web_dir ? strdup(cfg->web_dir) : default_web_dir();
    h->cors = dup_or_null(cfg->cors_origin);
    h->sse_period_ms = cfg->sse_period_ms > 0 ? cfg->sse_period_ms : 100;
    h->body_limit = cfg->body_limit ? cfg->body_limit : 65536;
    h->conn_limit = cfg->conn_limit ? cfg->conn_limit : 64;
    h->conn_timeout_s = cfg->conn_timeout_s ? cfg->conn_timeout_s : 10;
    h->control = cfg->control;
    h->progress = cfg->progress;
    h->stats = cfg->stats;
    h->streams = cfg->streams;
    h->hook_ud = cfg->hook_ud;
    h->port = cfg->port;
    h->last_stats = calloc(1, sizeof *h->last_stats);
    if (!h->addr || !h->web_dir || !h->last_stats || (cfg->token && *cfg->token && !h->token) ||
        (cfg->cors_origin && *cfg->cors_origin && !h->cors)) {
        http_destroy(h);
        snprintf(err, errlen, "out of memory");
        return WEIR_ENOMEM;
    }
    /* A missing web directory is not fatal: the API still works, and every
     * static path answers 404. */
    h->web_real = realpath(h->web_dir, NULL);
    *out = h;
    return WEIR_OK;
}

void http_destroy(weir_http *h)
{
    if (!h) return;
    free(h->addr);
    free(h->token);
    free(h->web_dir);
    free(h->web_real);
    free(h->cors);
    free(h->last_stats);
    free(h->sse_status);
    free(h->sse_results);
    weir_params_free(h->kept_params);
    pthread_rwlock_destroy(&h->eng_lock);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ---- SSE ---- */

typedef struct {
    weir_http *h;
    uint64_t status_seq, results_seq;
    char *pending;
    size_t len, off;
} sse_stream;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int append_event(sse_stream *s, const char *name, const char *data)
{
    size_t add = strlen(name) + strlen(data) + 32;
    char *p = realloc(s->pending, s->len + add);
    if (!p) return 0;
    s->pending = p;
    s->len += (size_t)snprintf(p + s->len, add, "event: %s\ndata: %s\n\n", name, data);
    return 1;
}

/* Runs in the connection's own thread; blocking here holds only this
 * client. Returns bytes written, or END_OF_STREAM when the server stops. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_stream *s = cls;
    weir_http *h = s->h;
    if (s->off == s->len) {
        s->off = s->len = 0;
        pthread_mutex_lock(&h->mu);
        for (;;) {
            if (h->stopping) {
                pthread_mutex_unlock(&h->mu);
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            int fresh = 0;
            if (h->sse_status && h->sse_status_seq != s->status_seq) {
                s->status_seq = h->sse_status_seq;
                fresh |= append_event(s, "status", h->sse_status);
            }
            if (h->sse_results && h->sse_results_seq != s->results_seq) {
                s->results_seq = h->sse_results_seq;
                fresh |= append_event(s, "results", h->sse_results);
            }
            if (fresh) break;
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&h->cv, &h->mu, &dl);
        }
        pthread_mutex_unlock(&h->mu);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->pending + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse_stream *s = cls;
    pthread_mutex_lock(&s->h->mu);
    s->h->ctr.sse_clients--;
    pthread_mutex_unlock(&s->h->mu);
    free(s->pending);
    free(s);
}

static void *ticker_main(void *arg)
{
    weir_http *h = arg;
    double last_status = 0;
    char *prev = NULL;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        long ns = dl.tv_nsec + (long)(h->sse_period_ms % 1000) * 1000000L;
        dl.tv_sec += h->sse_period_ms / 1000 + ns / 1000000000L;
        dl.tv_nsec = ns % 1000000000L;
        while (!h->stopping && pthread_cond_timedwait(&h->cv, &h->mu, &dl) == 0)
            ;
        if (h->stopping) break;
        uint64_t listeners = h->ctr.sse_clients;
        uint64_t last_rv = h->sse_results_version;
        int have_results = h->sse_results != NULL;
        pthread_mutex_unlock(&h->mu);
        http_sample_rates(h);
        char *status = NULL, *res = NULL;
        uint64_t rv = 0;
        double now = mono_now();
        if (listeners) {
            status = http_status_json(h);
            /* unchanged status is re-sent once a second as a heartbeat */
            if (status && prev && !strcmp(status, prev) && now - last_status < 1.0) {
                free(status);
                status = NULL;
            }
            if (h->results && (weir_results_version(h->results) != last_rv || !have_results))
                res = http_versions_json(h, &rv);
        }
        pthread_mutex_lock(&h->mu);
        if (status) {
            free(prev);
            prev = strdup(status);
            last_status = now;
            free(h->sse_status);
            h->sse_status = status;
            h->sse_status_seq++;
        }
        if (res) {
            free(h->sse_results);
            h->sse_results = res;
            h->sse_results_seq++;
            h->sse_results_version = rv;
        }
        if (status || res) pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    free(prev);
    return NULL;
}

/* ---- libmicrohttpd glue ---- */

typedef struct {
    char *body;
    size_t len;
    int too_large;
    int refused; /* a response was queued before the body */
} req_state;

static void add_common_headers(weir_http *h, struct MHD_Response *r, const http_reply *rep)
{
    if (rep->content_type) MHD_add_response_header(r, "Content-Type", rep->content_type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (rep->allow) MHD_add_response_header(r, "Allow", rep->allow);
    if (h->cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", h->cors);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static mhd_result send_reply(weir_http *h, struct MHD_Connection *c, http_reply *rep)
{
    struct MHD_Response *r;
    if (rep->sse) {
        sse_stream *s = calloc(1, sizeof *s);
        if (!s) return MHD_NO;
        s->h = h;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
        if (!r) {
            free(s);
            return MHD_NO;
        }
        pthread_mutex_lock(&h->mu);
        h->ctr.sse_clients++;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        add_common_headers(h, r, rep);
    } else {
        r = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
        if (!r) return MHD_NO;
        rep->body = NULL; /* libmicrohttpd frees it */
        add_common_headers(h, r, rep);
    }
    mhd_result ret = MHD_queue_response(c, (unsigned)rep->status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    weir_http *h = cls;
    req_state *st = *con_cls;
    http_req rq = {
        .method = method,
        .path = url,
        .since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
        .auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE),
    };
    http_reply rep = {0};
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        /* Refuse before reading the body: a bad token, a wrong content
         * type or an announced length over the limit. */
        const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->body_limit) rq.body_too_large = 1;
        if (http_precheck(h, &rq, &rep)) {
            pthread_mutex_lock(&h->mu);
            h->ctr.requests++;
            pthread_mutex_unlock(&h->mu);
            st->refused = 1;
            mhd_result ret = send_reply(h, c, &rep);
            http_reply_clear(&rep);
            return ret;
        }
        return MHD_YES;
    }
    if (st->refused) {
        *upload_data_size = 0; /* discard the body of a refused request */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (!st->too_large && st->len + n <= h->body_limit) {
            char *b = realloc(st->body, st->len + n);
            if (!b) return MHD_NO;
            memcpy(b + st->len, upload_data, n);
            st->body = b;
            st->len += n;
        } else {
            st->too_large = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    rq.body = st->body;
    rq.body_len = st->len;
    rq.body_too_large = st->too_large;
    http_handle(h, &rq, &rep);
    mhd_result ret = send_reply(h, c, &rep);
    http_reply_clear(&rep);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    weir_http *h = cls;
    req_state *st = *con_cls;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED || toe == MHD_REQUEST_TERMINATED_WITH_ERROR) {
        pthread_mutex_lock(&h->mu);
        if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) h->ctr.timeouts++;
        h->ctr.refused++;
        pthread_mutex_unlock(&h->mu);
    }
    if (st) {
        free(st->body);
        free(st);
    }
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    WEIR_LOGD(COMP, "libmicrohttpd: %s", msg);
}

int weir_http_start(const weir_http_config *cfg, weir_http **out, char *err, size_t errlen)
{
    weir_http *h = NULL;
    int rc = http_create(cfg, &h, err, errlen);
    if (rc) return rc;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (cfg->port < 0 || cfg->port > 65535 || inet_pton(AF_INET, h->addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bad HTTP address '%s:%d' (expected IPv4 ADDR:PORT)", h->addr,
                 cfg->port);
        http_destroy(h);
        return WEIR_EINVAL;
    }
    if (!h->web_real)
        WEIR_LOGW(COMP, "web directory %s not found: only the API is served", h->web_dir);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, h->conn_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        h->conn_limit, MHD_OPTION_CONNECTION_TIMEOUT, h->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not local?)", h->addr,
                 cfg->port);
        http_destroy(h);
        return WEIR_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (di) h->port = di->port;
    if (pthread_create(&h->ticker, NULL, ticker_main, h) != 0) {
        MHD_stop_daemon(h->d);
        http_destroy(h);
        snprintf(err, errlen, "cannot start the HTTP ticker thread");
        return WEIR_ETHREAD;
    }
    h->ticker_started = 1;
    WEIR_LOGI(COMP, "serving http://%s:%d/ (web files from %s)%s", h->addr, h->port, h->web_dir,
              h->token ? ", writes need the bearer token" : "");
    *out = h;
    return WEIR_OK;
}

void weir_http_stop(weir_http *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->d) MHD_stop_daemon(h->d);
    if (h->ticker_started) pthread_join(h->ticker, NULL);
    http_destroy(h);
}
