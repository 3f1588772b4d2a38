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

#include "weir/engine.h"

typedef struct {
    int threads_per_rank;  /* worker threads per worker rank (default 1) */
    double rank_timeout_s; /* default 30 */
    int continue_without;  /* go on without a dead or hung worker rank */
    int window;            /* events in flight per worker slot (default 4) */
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
