/* http_internal.h — state shared by server.c (libmicrohttpd, threads, SSE)
 * and api.c (the request handlers), and the socket-free handler entry
 * point the fuzz harness drives. */
#ifndef WEIR_HTTP_INTERNAL_H
#define WEIR_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "weir/http.h"
#include "weir/live.h"

struct MHD_Daemon;

/* A request as the handlers see it: already unescaped by libmicrohttpd. */
typedef struct {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/api/v1/status" */
    const char *since;        /* ?since= value or NULL */
    const char *auth;         /* Authorization header or NULL */
    const char *content_type; /* Content-Type header or NULL */
    const char *body;         /* not NUL-terminated */
    size_t body_len;
    int body_too_large; /* the body went over the limit (→ 413) */
} http_req;

typedef struct {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd (may be NULL when len == 0) */
    size_t len;
    const char *allow; /* Allow header for 405, static */
    int sse;           /* 1: answer with the event stream instead */
} http_reply;

struct weir_http {
    /* config (own copies) */
    char *addr, *token, *web_dir, *web_real, *cors;
    size_t token_len;
    int sse_period_ms;
    size_t body_limit;
    unsigned conn_limit, conn_timeout_s;
    int (*control)(void *ud, weir_http_cmd cmd, char *err, size_t errlen);
    void (*progress)(void *ud, uint64_t *done, uint64_t *total);
    int (*stats)(void *ud, weir_stats *st);
    size_t (*streams)(void *ud, weir_live_stream_stats *out, size_t cap);
    void *hook_ud;
    int port;

    /* the served engine: requests hold eng_lock for reading while they use
     * it; attach/detach take it for writing */
    pthread_rwlock_t eng_lock;
    weir_engine *eng;
    weir_results *results;
    weir_live *live;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* SSE: new data or stopping */
    weir_http_state state;
    char error[256];
    weir_params *kept_params; /* parameters between runs */
    weir_stats *last_stats;   /* counters of the last detached engine */
    int have_last_stats;
    double events_per_s, bytes_per_s;
    double rate_t; /* time of the rate sample */
    uint64_t rate_events, rate_bytes;
    weir_http_counters ctr;
    /* SSE feed built by the ticker */
    char *sse_status; /* latest status JSON */
    uint64_t sse_status_seq;
    char *sse_results; /* latest {"versions": ...} JSON */
    uint64_t sse_results_seq;
    uint64_t sse_results_version;
    int stopping;

    pthread_t ticker;
    int ticker_started;
    struct MHD_Daemon *d;
};

/* Creates the server state without sockets or threads (the fuzz harness
 * and http_start use it). */
int http_create(const weir_http_config *cfg, weir_http **out, char *err, size_t errlen);
void http_destroy(weir_http *h);
/* Handles one request (everything but the SSE stream itself). */
void http_handle(weir_http *h, const http_req *rq, http_reply *out);
void http_reply_clear(http_reply *r);
/* Refusals checked before the body is read: 401, 415, 413 by
 * Content-Length. Returns 0 when the request may go on. */
int http_precheck(weir_http *h, const http_req *rq, http_reply *out);
/* Status JSON (malloc'd string) from the engine or the kept counters. */
char *http_status_json(weir_http *h);
/* {"versions": {name: version}} of the current snapshot, and its version. */
char *http_versions_json(weir_http *h, uint64_t *version);
/* Updates the rate estimate from the engine's counters. */
void http_sample_rates(weir_http *h);

#endif
