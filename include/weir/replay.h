/* weir/replay.h — replaying dranspose ingester dumps as an event source.
 *
 * Several files are merged by event number as dranspose's replay does: one
 * event is cached per file, the lowest event number is taken, and every
 * cached event with that number is merged into one event (a stream name
 * present in two files is a duplicate: counted and reported, the later copy
 * dropped). Like dranspose, the replay ends when the first file ends —
 * but the events still left in the other files are counted and reported
 * with their numbers instead of vanishing silently; with `drain` they are
 * replayed too, as events missing the ended files' streams.
 *
 * A malformed item ends its file with an error naming the file, offset and
 * what was expected; everything before it has been delivered. */
#ifndef WEIR_REPLAY_H
#define WEIR_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/engine.h"

typedef struct weir_replay weir_replay;

int weir_replay_open(const char *const *files, size_t nfiles, int drain, weir_replay **out,
                     char *err, size_t errlen);
/* The event source to hand to weir_engine_start (valid while r lives). */
weir_source weir_replay_source(weir_replay *r);
/* Events delivered, left over (not replayed), duplicate streams dropped. */
uint64_t weir_replay_delivered(const weir_replay *r);
uint64_t weir_replay_leftover(const weir_replay *r);
uint64_t weir_replay_duplicates(const weir_replay *r);
/* First read error (0 if none) and its message. */
int weir_replay_error(const weir_replay *r, const char **msg);
/* Prints what ended the replay, leftovers and errors (nothing if clean). */
void weir_replay_report(const weir_replay *r, FILE *f);
void weir_replay_close(weir_replay *r);

#endif
