/* weir/mpi.h — running the pipeline on MPI ranks (Open MPI).
 *
 * Under `mpirun -n N`, rank 0 is the source, rank N-1 the reducer and ranks
 * 1..N-2 are worker ranks, each running `threads_per_rank` worker threads
 * (worker slots). The same plug-ins and the same engine role code run; only
 * the channels between roles are MPI messages instead of thread queues.
 * Events travel as a small binary header plus one message holding the raw
 * frames back to back (sent from the frames in place, never re-encoded);
 * results travel as their CBOR bytes. Every link has a window of messages in
 * flight (credits), so back-pressure crosses ranks.
 *
 * Faults: a worker slot that takes no event for `rank_timeout_s` while the
 * source has work for it, or a worker rank whose heartbeat stops for that
 * long, ends the run with an error naming the rank and the events lost — or,
 * with `continue_without`, the run goes on without it and reports the lost
 * events. A rank that dies is reported by mpirun itself (Open MPI ends the
 * job when a rank exits), naming the rank. */
#ifndef WEIR_MPI_H
#define WEIR_MPI_H

#include <stdint.h>

#include "weir/engine.h"
#include "weir/live.h"
#include "weir/params.h"
#include "weir/results.h"

/* ---- the control plane across ranks (mpi_control.c) ----
 *
 * One rank (the serving rank, rank 0 by default) runs the HTTP server; the
 * control plane object, created on every rank before weir_mpi_run, carries
 * what the server needs across ranks, each by a service thread per rank on
 * a communicator of its own:
 *
 *  - results: the reducer rank's results store is sent to the serving rank
 *    at most every results_period_ms (only values changed since the last
 *    send; newest wins). Sends are nonblocking, at most `backlog` in flight;
 *    a tick that finds the backlog full skips (counted) and the next one
 *    sends everything changed. The reducer thread never waits for it.
 *  - parameters: a change on the serving rank's engine (POST /parameters)
 *    goes to rank 0, which sends the whole set to every rank before its next
 *    event; every event header carries the parameter sequence number it was
 *    sent under, so a worker applies the change exactly from that event on.
 *  - status: every rank sends its counters to the serving rank every 200 ms
 *    (rank 0 with the source's progress); a rank silent for the rank
 *    timeout counts as dead in workers_alive.
 *  - control: start/stop go to rank 0 (source), abort to every rank.
 *  - streams: rank 0's live per-stream counters travel with its counters
 *    (at most WEIR_MPI_CP_STREAMS streams).
 *  - several acquisitions (weir run --continuous): between two runs every
 *    rank calls weir_mpi_cp_idle_begin, rank 0 waits for the next
 *    acquisition (stop and abort from the serving rank reach its source
 *    meanwhile), weir_mpi_cp_next tells every rank whether it comes and
 *    weir_mpi_cp_share_params gives every rank the serving rank's current
 *    parameters for it. */
#define WEIR_MPI_CP_STREAMS 16
typedef struct weir_mpi_cp weir_mpi_cp;

typedef enum { WEIR_MPI_START = 1, WEIR_MPI_STOP, WEIR_MPI_ABORT } weir_mpi_cmd;

typedef struct {
    int http_rank;         /* the serving rank (default 0) */
    weir_results *results; /* serving rank: where the reducer's snapshots land */
    int results_period_ms; /* least interval between results sends (default 50) */
    int backlog;           /* result sends in flight at most (default 2) */
    /* rank 0: the source's own control (pausing, pacing); may be NULL */
    int (*source_control)(void *ud, weir_mpi_cmd cmd);
    /* rank 0: the source's progress, thread-safe; may be NULL */
    void (*progress)(void *ud, uint64_t *done, uint64_t *total);
    /* rank 0: the live source's per-stream counters, thread-safe; may be NULL */
    size_t (*streams)(void *ud, weir_live_stream_stats *out, size_t cap);
    /* serving rank: the local engine once it exists, NULL before it is freed */
    void (*attach)(void *ud, weir_engine *e);
    void *ud;
} weir_mpi_cp_config;

typedef struct {
    uint64_t results_sent;    /* reducer rank: snapshot messages sent */
    uint64_t results_skipped; /* reducer rank: ticks with the backlog full */
    uint64_t results_applied; /* serving rank: snapshot messages applied */
    uint64_t params_sent;     /* rank 0: parameter sets broadcast */
} weir_mpi_cp_counters;

/* Every rank, after weir_mpi_init. NULL on OOM or a bad http_rank (err). */
weir_mpi_cp *weir_mpi_cp_new(const weir_mpi_cp_config *c, char *err, size_t errlen);
void weir_mpi_cp_free(weir_mpi_cp *cp);
/* Serving rank, any thread: the counters of all ranks merged (the local
 * engine's live, the others' as last reported; after the run, the final
 * ones). Returns 1 if there is anything, 0 before the first run. */
int weir_mpi_cp_stats(weir_mpi_cp *cp, weir_stats *st);
/* Serving rank: the source's progress (from rank 0). */
void weir_mpi_cp_progress(weir_mpi_cp *cp, uint64_t *done, uint64_t *total);
/* Serving rank: start/stop are forwarded to rank 0 (unless this is rank 0),
 * abort to every other rank. 0, or WEIR_EINVAL when no run is in progress. */
int weir_mpi_cp_control(weir_mpi_cp *cp, weir_mpi_cmd cmd);
void weir_mpi_cp_counters_get(weir_mpi_cp *cp, weir_mpi_cp_counters *out);
/* Serving rank: rank 0's live per-stream counters (its own on rank 0, else
 * as last reported); returns how many it filled (up to cap). */
size_t weir_mpi_cp_streams(weir_mpi_cp *cp, weir_live_stream_stats *out, size_t cap);
/* Between acquisitions, every rank (cp may be NULL: no control plane).
 * idle_begin: until weir_mpi_cp_next, stop and abort from the serving rank
 * go to rank 0's source_control (start is refused with WEIR_EINVAL).
 * next: rank 0's `go` to every rank (the others pass anything and sleep
 * while they wait); returns it. share_params: the serving rank passes the
 * parameters the next run should use (owned; NULL = none) and gets them
 * back; every other rank gets a new set (base plus the serving rank's
 * values; NULL if the serving rank had none). The caller frees it. */
void weir_mpi_cp_idle_begin(weir_mpi_cp *cp);
int weir_mpi_cp_next(weir_mpi_cp *cp, int go);
weir_params *weir_mpi_cp_share_params(weir_mpi_cp *cp, weir_params *mine, const weir_params *base);
/* Keep-alive: ranks other than the serving one wait (sleeping, not
 * spinning) until the serving rank calls weir_mpi_cp_release. */
void weir_mpi_cp_wait_release(weir_mpi_cp *cp);
void weir_mpi_cp_release(weir_mpi_cp *cp);

typedef struct {
    int threads_per_rank;  /* worker threads per worker rank (default 1) */
    double rank_timeout_s; /* default 30 */
    int continue_without;  /* go on without a dead or hung worker rank */
    int window;            /* events in flight per worker slot (default 4) */
    weir_mpi_cp *cp;       /* the control plane (NULL = none) */
} weir_mpi_opts;

/* 1 if this weir was built with MPI. */
int weir_mpi_compiled(void);
/* 1 if started by mpirun with more than one rank (looks at the environment;
 * safe to call before weir_mpi_init). */
int weir_mpi_launched(void);
/* MPI_Init_thread(MPI_THREAD_MULTIPLE). */
int weir_mpi_init(int *argc, char ***argv, int *rank, int *size, char *err, size_t errlen);
void weir_mpi_finalize(void);
/* Ends every rank of the job with exit code `code`. */
void weir_mpi_abort(int code);
/* Runs cfg on the ranks (cfg->nworkers is replaced by the number of worker
 * slots). src is used on rank 0 only. On rank 0, *stats receives the
 * counters of all ranks merged and *lost the number of events lost to dead
 * ranks. Returns 0 or the first fatal error, with a message. */
int weir_mpi_run(const weir_engine_config *cfg, const weir_mpi_opts *o, weir_source *src,
                 weir_stats *stats, uint64_t *lost, char *err, size_t errlen);

#endif
