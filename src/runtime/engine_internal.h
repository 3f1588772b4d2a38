/* engine_internal.h — state shared by engine.c (threads, queues) and host.c
 * (the service table plug-ins call). */
#ifndef WEIR_ENGINE_INTERNAL_H
#define WEIR_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "chan.h"
#include "weir/engine.h"

typedef struct weir_engine weir_engine;

/* One per plug-in instance; the weir_pctx handed to callbacks points here. */
typedef struct {
    weir_pctx pub;
    weir_engine *eng;
    int worker; /* -1 for the reducer */
    weir_params *params;
    unsigned params_version;
    uint64_t cur_event;
    const char *cur_hash; /* reducer: params hash of the result being processed */
    weir_stage_stats *stats;
    pthread_mutex_t *stats_mu;
    double emit_blocked_s; /* time blocked in emit() during the current callback */
    const weir_plugin *plugin;
    void *self;
    /* monotonic ns when the current callback started, 0 when idle: lets a
     * transport tell a hung plug-in from an idle one */
    _Atomic int64_t busy_since_ns;
} role_ctx;

struct weir_engine {
    weir_engine_config cfg;
    weir_params *params; /* master copy, guarded by params_mu */
    pthread_mutex_t params_mu;
    atomic_uint params_version;
    char **inputs;
    char *output_dir;

    chan **wq; /* per-worker input */
    chan *rq;  /* reducer input */
    pthread_t source_thread, reducer_thread, *worker_threads;
    role_ctx *wctx, rctx;
    int started, threads_started;
    /* which roles run in this process (all, unless a transport such as MPI
     * spreads them over processes) and which threads were started */
    int has_source, has_reducer;
    unsigned char *local, *w_started;
    int src_started, red_started;
    int active;        /* role threads still running, guarded by mu */
    int workers_alive; /* guarded by mu */

    weir_source src;
    atomic_int stop;
    atomic_int aborting;
    weir_results *results; /* cfg.results or own_results */
    weir_results *own_results;

    pthread_mutex_t mu; /* guards the fields below and the stats */
    pthread_cond_t done_cv;
    int done;
    int error;
    char error_text[256];
    weir_stage_stats s_source, s_reducer, *s_worker;
    pthread_mutex_t s_source_mu, s_reducer_mu, *s_worker_mu;
    uint64_t timer_calls;
    double t_start, t_end;
    /* the current acquisition (weir_engine_set_acq), guarded by mu */
    int64_t nav[8];
    int nav_ndim; /* 0 = not known */
    uint64_t acq_frames;
};

extern const weir_host weir_host_table;

void engine_reject(weir_stage_stats *st, pthread_mutex_t *mu, const char *reason);
void engine_fail(weir_engine *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double engine_now(void);
/* For transports: run only some roles here (local_workers: one flag per
 * worker slot, NULL = all), and replace a channel (worker -1 = the
 * reducer's input; the engine destroys the old one and owns the new). Call
 * before weir_engine_start. */
void engine_set_roles(weir_engine *e, int source, int reducer, const unsigned char *local_workers);
void engine_replace_chan(weir_engine *e, int worker, chan *c);
/* Longest time (s) any local worker has been inside one callback; 0 if all
 * are idle. */
double engine_longest_busy(weir_engine *e);

#endif
