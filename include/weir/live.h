/* weir/live.h — live streams as an event source (ZeroMQ).
 *
 * Each configured stream is a ZeroMQ socket (PULL or SUB; connect or bind)
 * carrying one protocol; this build speaks STINS. Per stream the acquisition
 * follows dranspose's ingester state machine: messages before the series
 * start (STINS "header") are discarded and counted; the header of every
 * stream forms event 0; image frame f of every stream forms event f + 1
 * (streams are joined by frame number, so gaps, duplicates and reordering
 * are seen and counted — dranspose joins by position and cannot); the
 * series end of every stream forms the last event and ends the acquisition.
 * Malformed messages are counted with the reason and skipped, and so are
 * images or ends of another series than the one the stream's header started
 * (DECTRIS series ids), e.g. left over from an earlier series.
 *
 * Messages are zero-copy: each ZeroMQ frame becomes a weir_buf that closes
 * the zmq_msg_t when its last reference goes. The receive high-water mark is
 * small, so a slow pipeline pushes back on a PUSH sender (it blocks) and a
 * PUB sender drops at its HWM, as the protocols define. */
#ifndef WEIR_LIVE_H
#define WEIR_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/engine.h"

/* What happens to an event when this stream lacks its frame (after the
 * reorder wait / the stream's timeout): WAIT drops the whole event (counted),
 * PARTIAL emits it without this stream (counted). DEFAULT follows
 * weir_live_set_policy. */
enum { WEIR_POLICY_DEFAULT = 0, WEIR_POLICY_WAIT = 1, WEIR_POLICY_PARTIAL = 2 };

typedef struct {
    const char *name;     /* stream name, e.g. "xrd" */
    const char *protocol; /* "stins" */
    const char *endpoint; /* e.g. "tcp://127.0.0.1:9999" */
    int sub;              /* 1: SUB (subscribes to everything), 0: PULL */
    int bind;             /* 1: bind, 0: connect */
    int policy;           /* WEIR_POLICY_* (0 = the global policy) */
    int reorder_ms;       /* wait for a frame once later ones came (0 = global) */
    int timeout_ms;       /* wait for a frame the other streams have (0 = for ever) */
} weir_stream_cfg;

typedef struct weir_live weir_live;

int weir_live_open(const weir_stream_cfg *streams, size_t n, int rcvhwm, weir_live **out, char *err,
                   size_t errlen);
/* Event building by frame number: image frame f of every stream forms event
 * f + 1. A frame that is missing while later ones arrived is waited for
 * reorder_ms (default 1000), then counted missing; partial != 0 emits events
 * with the streams that have the frame, otherwise such events are dropped
 * and counted. Duplicates (a frame seen before) are dropped and counted. */
void weir_live_set_policy(weir_live *l, int partial, int reorder_ms);
/* What the streams' headers announce about an acquisition. */
typedef struct {
    uint64_t frames; /* Merlin frames in acquisition, DECTRIS frame count; 0 = not announced */
    int64_t det[2];  /* the detector's scan shape: Merlin (ScanY, ScanX), DECTRIS
                        (ntrigger, nimages) when both > 1 */
    int ndet;        /* 0 = none */
} weir_acq_info;
/* fn runs on the source thread once every stream's header is in, before the
 * acquisition's first event is returned; a nonzero return ends the run with
 * that error (err says why). */
void weir_live_on_acquisition(weir_live *l,
                              int (*fn)(void *ud, const weir_acq_info *a, char *err, size_t errlen),
                              void *ud);
/* The source for one acquisition; it ends after the series end. Call again
 * for the next acquisition (continuous mode). */
weir_source weir_live_source(weir_live *l);
/* 1 once weir_live_stop was called. */
int weir_live_stopped(const weir_live *l);
/* Makes a waiting source end (safe from a signal handler). */
void weir_live_stop(weir_live *l);
/* Messages received, discarded before a header, malformed, per stream. */
void weir_live_report(const weir_live *l, FILE *f);
uint64_t weir_live_rejected(const weir_live *l);
/* Per-stream counters as of the last event the source built (for the HTTP
 * status; safe from any thread while the source runs). */
typedef struct {
    char name[64], protocol[32];
    uint64_t received, bytes; /* messages and bytes received */
    uint64_t discarded;       /* before a series header */
    uint64_t malformed;       /* could not be decoded */
    uint64_t missing;         /* frames never seen (gaps) */
    uint64_t duplicates;      /* frames seen twice */
    uint64_t out_of_order;    /* frames that came after later ones */
    uint64_t series_mismatch; /* of another series than the header's */
    uint64_t stray_headers;   /* headers in the middle of a series */
    uint64_t timeouts;        /* frames given up after the stream's timeout */
} weir_live_stream_stats;
/* Copies up to cap streams' counters; returns how many. */
size_t weir_live_stream_stats_get(weir_live *l, weir_live_stream_stats *out, size_t cap);
void weir_live_close(weir_live *l);

#endif
