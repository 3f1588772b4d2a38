/* weir/tag_instr.h — time-tag instruments: exact correlation, start-stop,
 * lifetime, coincidences and count-rate traces over sorted weir_tag streams.
 *
 * An instrument is an opaque context (weir_tinstr) made from a plain config.
 * Events are fed in chunks (sorted by time, as the readers deliver them);
 * chunk boundaries never change a result. Every result is an integer
 * histogram (uint64) with its axis: bin edges in picoseconds, floor bins,
 * [lo, hi) edges. Per-channel delays are added to event times first.
 *
 * Tasks. A context's whole state (configuration, pending events, histogram)
 * can be saved to bytes and loaded again, so a later clip continues exactly
 * where the saved one stopped. For parallel runs over K sections of a
 * stream, each section worker feeds its own events, calls
 * weir_tinstr_seal(), then keeps feeding the events that follow its
 * section ("lead-out") until weir_tinstr_wants_more() returns 0: after the
 * seal only pairs with at least one event from before the seal are counted,
 * so every pair is counted by exactly one worker (the one owning its
 * earlier event) and the summed result equals the serial one bit for bit.
 *
 * ETA compatibility (eta_compat, correlation only): reproduces ETA's
 * `CLOCK(c,N,1)` + `record_all` exactly, including its skipped ring slot 0,
 * the N-1 ring capacity and the dropped final event; the default is exact.
 *
 * Thread-safety: a context is used by one thread at a time; distinct
 * contexts are independent (no globals). Errors: 0 or a negative WEIR_E*. */
#ifndef WEIR_TAG_INSTR_H
#define WEIR_TAG_INSTR_H

#include <stddef.h>
#include <stdint.h>

#include "weir/tags.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WEIR_TI_CORR = 1,      /* full correlation: every start with every stop in [lo, hi) */
    WEIR_TI_STARTSTOP = 2, /* classic start-stop: most recent start, first stop, then re-arm */
    WEIR_TI_LIFETIME = 3,  /* T3 micro-time, or T2 delay from the most recent sync */
    WEIR_TI_COINC = 4,     /* coincidences across 2..16 channels within a window */
    WEIR_TI_COUNT = 5,     /* count-rate trace per channel */
} weir_tinstr_kind;

#define WEIR_TI_MAXCH 16
#define WEIR_TI_NOCH INT16_MIN /* "no channel" */

typedef struct {
    int16_t channel;
    int64_t ps; /* added to the time of every event on `channel` */
} weir_tinstr_delay;

typedef struct {
    weir_tinstr_kind kind;
    char name[32]; /* result name (HDF5 dataset / .npy file); default: the kind */

    /* CORR, STARTSTOP: start and stop channels. LIFETIME: `start` = sync
     * channel for T2 mode; `stop` = photon channel (WEIR_TI_NOCH = every
     * photon channel in micro mode). */
    int16_t start, stop;
    /* COINC: channels[0] is the reference; COUNT: the channels traced. */
    int16_t channels[WEIR_TI_MAXCH];
    unsigned nchannels;

    weir_tinstr_delay delays[WEIR_TI_MAXCH];
    unsigned ndelays;

    /* Histogram axis: bin k holds values v with lo + k*bin <= v < lo + (k+1)*bin.
     * CORR/STARTSTOP/LIFETIME(T2): v = delay in ps; LIFETIME(micro): v =
     * micro-time in micro bins (so bin_ps counts micro bins there and
     * micro_ps gives the axis unit); COUNT: v = time in ps, nbins 0 = grow. */
    int64_t bin_ps;
    uint32_t nbins;
    int64_t lo_ps;

    int64_t window_ps;  /* COINC: |t_c - t_ref| <= window for every other channel */
    int lifetime_micro; /* LIFETIME: 1 = histogram T3 micro-times, 0 = T2 sync delays */
    double micro_ps;    /* LIFETIME micro mode: ps per micro bin (axis only) */

    /* Marker gate: when gate_open != WEIR_TI_NOCH, only events between a
     * marker on gate_open and the next marker on gate_close count. */
    int16_t gate_open, gate_close;

    int eta_compat;     /* CORR: reproduce ETA bit for bit (serial only) */
    uint32_t eta_clock; /* ETA CLOCK start-ring size (default 100) */
} weir_tinstr_config;

/* Fills c with defaults for kind (16 ps bins, 10000 bins, no delays, gate
 * off, channels WEIR_TI_NOCH). */
void weir_tinstr_config_init(weir_tinstr_config *c, weir_tinstr_kind kind);

typedef struct weir_tinstr weir_tinstr;

/* Validates cfg and makes a context (caller owns; weir_tinstr_free). On
 * failure err says which field is wrong. */
int weir_tinstr_create(const weir_tinstr_config *cfg, weir_tinstr **out, char *err, size_t errlen);
void weir_tinstr_free(weir_tinstr *t);
const weir_tinstr_config *weir_tinstr_get_config(const weir_tinstr *t);

/* Feeds n events sorted by time (non-decreasing across calls). Returns 0,
 * WEIR_ENOMEM, or WEIR_ERANGE when time runs backwards (nothing counted
 * from that chunk then). */
int weir_tinstr_feed(weir_tinstr *t, const weir_tag *ev, size_t n);
/* Ends the owned part of a section; later events are lead-out (see above).
 * Not allowed with eta_compat (WEIR_EUNSUPPORTED). */
int weir_tinstr_seal(weir_tinstr *t);
/* After the seal: 1 while events up to time `t_next` could still pair with
 * owned events, 0 when the lead-out is complete. Before the seal: 1. */
int weir_tinstr_wants_more(const weir_tinstr *t, int64_t t_next);
/* End of the stream: counts everything still pending. Idempotent; after it
 * feeding is an error (WEIR_EINVAL). */
int weir_tinstr_finish(weir_tinstr *t);

/* Adds src's counts into dst (same configuration; WEIR_EINVAL otherwise).
 * Both should be finished. */
int weir_tinstr_merge(weir_tinstr *dst, const weir_tinstr *src);

/* The whole state as bytes (malloc'd, caller frees): a versioned binary
 * ("WEIRTI" magic, version, config, pending buffers, counts). */
int weir_tinstr_save(const weir_tinstr *t, uint8_t **buf, size_t *len);
/* A context from saved bytes (caller owns). WEIR_EFORMAT with a message on
 * bad or truncated input. */
int weir_tinstr_load(const uint8_t *buf, size_t len, weir_tinstr **out, char *err, size_t errlen);
int weir_tinstr_save_file(const weir_tinstr *t, const char *path, char *err, size_t errlen);
int weir_tinstr_load_file(const char *path, weir_tinstr **out, char *err, size_t errlen);

/* A result: rows x nbins uint64 counts plus the axis. Borrowed from the
 * context; valid until the next feed/finish/free. */
typedef struct {
    const char *name;
    const uint64_t *counts; /* rows * nbins, row-major */
    size_t rows;            /* COUNT: one row per channel; else 1 */
    size_t nbins;
    int64_t lo;           /* first edge, in axis units */
    int64_t bin;          /* bin width, in axis units */
    const char *unit;     /* "ps", or "micro bin" (lifetime micro mode) */
    double unit_ps;       /* ps per axis unit */
    const char *quantity; /* "delay", "micro-time", "time" */
    uint64_t events;      /* events counted into the instrument */
    uint64_t extra[2];    /* COINC: {coincidences, reference events}; ETA: skipped pairs */
} weir_tinstr_result;
void weir_tinstr_get_result(const weir_tinstr *t, weir_tinstr_result *r);

/* Which kernels a correlation's fast path runs: "avx2" (chosen at run time
 * when the CPU has AVX2), "scalar" (no AVX2, or the environment variable
 * WEIR_TAGS_SIMD=scalar when the instrument was created), or "general"
 * (not on the fast path, or not a correlation). Both kernels give the same
 * result bit for bit. */
const char *weir_tinstr_kernels(const weir_tinstr *t);

/* ---- running over files (instr_run.c) ---- */

/* 1 when the instrument can run over sections (seal + lead-out) with a
 * result equal to the serial one: correlations, count traces and micro-time
 * lifetimes always; start-stop and T2 lifetimes when start and stop have the
 * same delay; coincidences and the ETA emulation never (they run serially). */
int weir_tinstr_parallel_ok(const weir_tinstr *t);

/* Progress callback: records done of total; return nonzero to stop. */
typedef int (*weir_tinstr_progress_fn)(void *ud, uint64_t done, uint64_t total);

typedef struct {
    unsigned threads; /* sections run in parallel (>= 1) */
    size_t chunk;     /* events per read (default 1 << 16) */
    weir_tinstr_progress_fn progress;
    void *progress_ud;
} weir_tinstr_run_opts;

/* Runs the instruments insts[0..n) over every record of the file behind r
 * (serially from r's position when threads == 1; else over `threads`
 * sections, each worker with its own reader on the same path, results
 * merged into insts). The instruments are left un-finished when threads
 * == 1 (so they can be saved and resumed) and finished otherwise. */
int weir_tinstr_run_file(weir_tag_reader *r, weir_tinstr **insts, size_t n,
                         const weir_tinstr_run_opts *o, char *err, size_t errlen);

/* The same split done on an in-memory sorted array: k sections, each with
 * its lead-out, summed into insts (fresh contexts made from cfgs). Used by
 * tests and by callers that hold events already. */
int weir_tinstr_run_sections(const weir_tag *ev, size_t n, unsigned k, weir_tinstr **insts,
                             size_t ninst, char *err, size_t errlen);

/* Rewrites T3 event times the way ETA computes them (eta.md §3.1): sync
 * period and micro resolution truncated to whole ps, time = nsync *
 * trunc(GlobalRes) + micro * trunc(Res). T2 and other formats are left
 * alone. Used for eta_compat instruments by weir_tinstr_run_file. */
void weir_tinstr_eta_times(const weir_tag_info *info, weir_tag *ev, size_t n);

/* ---- recipes (instr_recipe.c) ---- */

/* Parses a JSON recipe {"instruments": [{"kind": "corr", "name": .., "start": 1,
 * "stop": 2, "binwidth": "16ps", "bins": 10000, "lo": "-160ns", "delays":
 * {"2": "1.5ns"}, "eta_compat": false, ...}, ...]} into n configs (malloc'd
 * array, caller frees). */
int weir_tinstr_recipe_parse(const char *json, weir_tinstr_config **cfgs, size_t *n, char *err,
                             size_t errlen);

/* Parses a time with unit ("16ps", "1.5ns", "2us", "1ms", "1s", or bare ps)
 * into integer picoseconds; rejects values that are not whole ps. */
int weir_tinstr_parse_time(const char *s, int64_t *ps);

#ifdef __cplusplus
}
#endif
#endif
