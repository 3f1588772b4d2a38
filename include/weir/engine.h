/* weir/engine.h — running a pipeline in one process: source → N worker
 * threads → one reducer thread.
 *
 * The engine owns the threads and the bounded queues between them. Memory
 * stays bounded: each worker has a queue of `worker_queue_depth` events and
 * the reducer one of `result_queue_depth` results; a full queue blocks the
 * stage that feeds it (back-pressure up to the source, which then stops
 * reading). The first event (the stream's start/header) is broadcast to
 * every worker; every other event goes to exactly one worker, the one with
 * the fewest queued events (an idle worker pulls next, as in dranspose).
 * finish() runs once on every worker, then on the reducer.
 *
 * Counters (events/bytes in and out, results, rejected with reasons, queue
 * fill, time in user code, time blocked) are kept per stage by the engine
 * and can be read at any time with weir_engine_stats().
 *
 * Thread-safety: weir_engine_stats, weir_engine_set_param and
 * weir_engine_wait may be called from any thread while the engine runs. */
#ifndef WEIR_ENGINE_H
#define WEIR_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/message.h"
#include "weir/params.h"
#include "weir/plugin.h"
#include "weir/results.h"

/* A source of events. next() returns 0 with *ev (transfer full), 0 with
 * *ev == NULL at the end, or a negative code (the run then ends with that
 * error after draining what was already read). progress() may be NULL. */
typedef struct {
    int (*next)(void *ud, weir_event **ev);
    void (*progress)(void *ud, uint64_t *done, uint64_t *total);
    void *ud;
} weir_source;

/* How events other than the first are spread over the workers. */
typedef enum {
    WEIR_DIST_PULL = 0,    /* the least busy worker takes the next event (default) */
    WEIR_DIST_ROUND_ROBIN, /* event i of the stream to worker (i-1) mod N */
    WEIR_DIST_AFFINITY,    /* key = event number / affinity_group; worker = key mod N */
    WEIR_DIST_SPLIT,       /* signal split: every worker gets rows [k*H/N, (k+1)*H/N)
                              of every STINS image, as in ParCorAna; events without
                              an image go to every worker */
} weir_dist_mode;

/* Parses "pull", "round-robin", "affinity", "split"; -1 if unknown. */
int weir_dist_parse(const char *s);
const char *weir_dist_name(weir_dist_mode m);

typedef struct {
    const weir_plugin *worker;
    const weir_plugin *reducer;
    int nworkers; /* default 2, as dranspose replay */
    weir_dist_mode dist;
    uint64_t affinity_group;   /* events per affinity key (default 1) */
    size_t worker_queue_depth; /* default 8 events per worker */
    size_t result_queue_depth; /* default 256 results */
    int broadcast_first;       /* default on (nonzero); set -1 to turn off */
    const weir_params *params; /* initial values (copied); may be NULL */
    const char *const *inputs; /* names for host->input_name */
    size_t ninputs;
    const char *output_dir;
    /* where the reducer's published values go (borrowed: it must outlive
     * the engine, so a server can keep serving them between runs); NULL =
     * the engine keeps its own store */
    weir_results *results;
} weir_engine_config;

#define WEIR_MAX_REASONS 8

typedef struct {
    char text[120];
    uint64_t count;
} weir_reason;

typedef struct {
    uint64_t events_in, bytes_in;   /* received by this stage */
    uint64_t events_out, bytes_out; /* passed on (source: dispatched; worker: results) */
    uint64_t results;               /* results produced (workers) or consumed (reducer) */
    uint64_t rejected;
    weir_reason reasons[WEIR_MAX_REASONS];
    size_t nreasons;
    uint64_t queue_fill, queue_max_fill, queue_capacity; /* input queue of the stage */
    double user_seconds;                                 /* time inside plug-in callbacks */
    double blocked_seconds; /* time waiting for a full downstream queue */
} weir_stage_stats;

typedef struct {
    weir_stage_stats source;
    weir_stage_stats reducer;
    weir_stage_stats workers_total;
    int nworkers;
    weir_stage_stats worker[64]; /* first 64 workers */
    uint64_t timer_calls;
    double wall_seconds;
    int running;
    int workers_alive; /* worker threads started and not yet ended */
    int aborted;       /* weir_engine_abort was called */
    int error;         /* first fatal error code, 0 if none */
    char error_text[256];
} weir_stats;

typedef struct weir_engine weir_engine;

/* Validates the config, declares the plug-ins' parameters (err says which
 * declaration failed). */
int weir_engine_new(const weir_engine_config *cfg, weir_engine **out, char *err, size_t errlen);
/* Starts the threads; the engine pulls from src until it ends. */
int weir_engine_start(weir_engine *e, weir_source src);
/* Waits up to timeout_ms (-1 forever). Returns 1 when the run is over, 0 on
 * timeout. */
int weir_engine_wait(weir_engine *e, int timeout_ms);
/* Asks the source loop to stop reading; what is queued is still processed. */
void weir_engine_stop(weir_engine *e);
/* Ends the run at once: the source stops, queued events and results are
 * discarded (counted as rejected, "aborted"), finish() still runs, and the
 * run ends with WEIR_EABORTED ("aborted"). Thread-safe. */
void weir_engine_abort(weir_engine *e);
/* Final status of a finished run: 0 or the first fatal error. */
int weir_engine_status(const weir_engine *e);
void weir_engine_stats(weir_engine *e, weir_stats *out);
/* Changes a parameter; applies from the next event each worker takes. */
int weir_engine_set_param(weir_engine *e, const char *name, const void *data, size_t len, char *err,
                          size_t errlen);
/* Changes n parameters at once (values as text, dranspose's byte form):
 * either all change, in one new parameter version, or none (err names the
 * first bad one). Unknown names are refused. */
int weir_engine_set_params(weir_engine *e, size_t n, const char *const *names,
                           const char *const *values, char *err, size_t errlen);
/* A copy of the current parameter set (caller frees); NULL on OOM.
 * Thread-safe, unlike weir_engine_params. */
weir_params *weir_engine_params_copy(weir_engine *e);
/* The results store the reducer publishes into (borrowed). */
weir_results *weir_engine_results(weir_engine *e);
/* Describes the current acquisition for the plug-ins (host->nav_shape):
 * its scan (navigation) shape, ndim 0 when not known, and its frame count
 * (0 = not announced). Sources call it before they return the acquisition's
 * first event. Thread-safe. */
void weir_engine_set_acq(weir_engine *e, const int64_t *nav, int ndim, uint64_t frames);
/* The parameter set (for listing); borrowed, do not modify while running. */
const weir_params *weir_engine_params(const weir_engine *e);
/* Prints the per-stage counters as a table. */
void weir_stats_print(const weir_stats *s, FILE *f);
void weir_engine_free(weir_engine *e);

/* Loads a plug-in from "path.so" or "path.so:symbol" (default symbol
 * "weir_plugin_descriptor"), checking ABI, size and kind. The handle keeps the object
 * loaded; close with weir_plugin_unload. */
typedef struct weir_plugin_handle weir_plugin_handle;
int weir_plugin_load(const char *spec, weir_plugin_kind kind, weir_plugin_handle **out,
                     const weir_plugin **plugin, char *err, size_t errlen);
/* Checks a descriptor (also used for built-ins). */
int weir_plugin_check(const weir_plugin *p, weir_plugin_kind kind, const char *where, char *err,
                      size_t errlen);
void weir_plugin_unload(weir_plugin_handle *h);

#endif
