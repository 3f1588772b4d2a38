/* weir/http.h — the HTTP control plane: parameters, status, progress, live
 * results, control and a Server-Sent Events stream under /api/v1, and the
 * live web page's static files (libmicrohttpd).
 *
 * Ownership: the server owns its sockets, threads and copies of the config
 * strings. It never owns an engine: weir_http_attach borrows one until
 * weir_http_detach (or the next attach), which waits for every request
 * using it to finish, so the caller may free the engine right after. The
 * results store handed to attach is borrowed too and must outlive the
 * server (a CLI keeps one store across acquisitions, so values stay
 * visible between runs). Between runs the server keeps a copy of the last
 * engine's parameters; POSTs change that copy and weir_http_params gives it
 * to the next engine.
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by
 * conn_limit); a ticker thread samples the engine's counters every
 * sse_period_ms to compute rates and feed the SSE streams. Requests read the
 * engine only through its thread-safe calls (stats, parameter copies,
 * results snapshots), so no client, however slow, can make the pipeline
 * wait. Every function here is thread-safe. */
#ifndef WEIR_HTTP_H
#define WEIR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "weir/engine.h"
#include "weir/live.h"
#include "weir/results.h"

typedef enum {
    WEIR_HTTP_IDLE = 0, /* no acquisition yet / between acquisitions */
    WEIR_HTTP_ARMED,    /* waiting for data or for a start command */
    WEIR_HTTP_RUNNING,
    WEIR_HTTP_FINISHED,
    WEIR_HTTP_ERROR
} weir_http_state;

typedef enum { WEIR_HTTP_START = 1, WEIR_HTTP_STOP, WEIR_HTTP_ABORT } weir_http_cmd;

typedef struct {
    const char *addr;        /* IPv4 address to bind; NULL = "127.0.0.1" */
    int port;                /* 0 = any free port (see weir_http_port) */
    const char *token;       /* bearer token every POST needs; NULL/"" = none */
    const char *web_dir;     /* static files; NULL = WEIR_WEB_DIR if the build defines it,
                                else "web" beside the executable (build/web) */
    const char *cors_origin; /* Access-Control-Allow-Origin for this origin; NULL = none */
    int sse_period_ms;       /* minimum interval between SSE events (default 100) */
    size_t body_limit;       /* request body bytes (default 65536) → 413 */
    unsigned conn_limit;     /* concurrent connections (default 64) */
    unsigned conn_timeout_s; /* idle connection timeout (default 10) */
    /* Control hooks, called from a request thread; each may be NULL.
     * control(): start/stop/abort beyond what the server does itself (it
     * calls weir_engine_stop/abort on the attached engine first); return 0
     * or a negative code with a message in err (→ 409). progress(): the
     * source's done/total (bytes for replays), thread-safe. */
    int (*control)(void *ud, weir_http_cmd cmd, char *err, size_t errlen);
    void (*progress)(void *ud, uint64_t *done, uint64_t *total);
    /* stats(): the counters /status and the rates show, instead of the
     * attached engine's (an MPI run: all ranks merged); returns 1 if it
     * filled st, 0 if there is nothing yet. Thread-safe. */
    int (*stats)(void *ud, weir_stats *st);
    /* streams(): the per-stream counters /status shows when no live source
     * is attached (weir_http_attach_live) — a live source on another MPI
     * rank; returns how many it filled (up to cap). Thread-safe. */
    size_t (*streams)(void *ud, weir_live_stream_stats *out, size_t cap);
    void *hook_ud;
} weir_http_config;

typedef struct weir_http weir_http;

/* Binds and starts serving. err says why not (address in use, ...). */
int weir_http_start(const weir_http_config *cfg, weir_http **out, char *err, size_t errlen);
/* The bound port. */
int weir_http_port(const weir_http *h);
/* Serves e (borrowed) and its results store; e may be NULL (then only the
 * results store is served). */
void weir_http_attach(weir_http *h, weir_engine *e, weir_results *results);
/* Also reports the per-stream counters of a live source in /status
 * (borrowed until replaced or NULL). */
void weir_http_attach_live(weir_http *h, weir_live *l);
/* Stops serving the engine; keeps its final counters and a copy of its
 * parameters for /status and /parameters. Returns once no request uses it. */
void weir_http_detach(weir_http *h);
/* The state /status reports; error is shown with WEIR_HTTP_ERROR. */
void weir_http_set_state(weir_http *h, weir_http_state st, const char *error);
weir_http_state weir_http_get_state(weir_http *h);
/* A copy of the parameters the next engine should start with (caller
 * frees): those of the attached engine, or the kept copy; NULL if none. */
weir_params *weir_http_params(weir_http *h);
/* Counters of refused requests (also in /status under "http"). */
typedef struct {
    uint64_t requests, refused, unauthorized, too_large, bad_type, not_found, bad_method,
        bad_request, sse_clients, sse_dropped, timeouts;
} weir_http_counters;
void weir_http_counters_get(weir_http *h, weir_http_counters *out);
/* Stops the server (closing every connection) and frees it. NULL is fine. */
void weir_http_stop(weir_http *h);

/* Constant-time comparison of two byte strings: 1 if equal. The time
 * depends only on the length of `secret`, not on where they differ. */
int weir_http_token_equal(const char *given, size_t given_len, const char *secret,
                          size_t secret_len);

#endif
