/* mpi_internal.h — what mpi_transport.c (the channels) and mpi_control.c
 * (the control plane across ranks) share. */
#ifndef WEIR_MPI_INTERNAL_H
#define WEIR_MPI_INTERNAL_H

#include "weir/mpi.h"

#include <mpi.h>

/* Counters of several ranks into one (stage by stage, per worker slot). */
void mpi_merge_stats(weir_stats *dst, const weir_stats *src, int nslots);
void mpi_sum_workers(weir_stats *s);

/* The results store the reducer should publish into on this rank (the
 * control plane's when this is the serving rank), or NULL. */
weir_results *cp_local_results(weir_mpi_cp *cp);
/* Starts the service thread for one run (every rank, engine created, before
 * it starts) and attaches the engine on the serving rank. */
int cp_run_begin(weir_mpi_cp *cp, weir_engine *e, int nslots, int threads_per_rank,
                 double rank_timeout_s);
/* Rank 0's source thread, before each event header: sends the parameters
 * to every rank if the engine's changed; returns the sequence number the
 * event travels under. */
unsigned cp_event_seq(weir_mpi_cp *cp);
/* A worker slot with an event of sequence `seq`: waits until this rank has
 * applied that parameter set. */
void cp_wait_seq(weir_mpi_cp *cp, unsigned seq);
/* After the local engine ended: final results and counters to the serving
 * rank (which waits for everyone's), then the thread ends and the engine is
 * detached. */
void cp_run_end(weir_mpi_cp *cp);

#endif
