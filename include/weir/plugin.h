/* weir/plugin.h — the plug-in ABI: the one header a plug-in includes.
 *
 * A plug-in is a shared object exporting one `weir_plugin` descriptor (by
 * default under the symbol `weir_plugin_descriptor`; `-w path.so:symbol` names another).
 * The descriptor carries the ABI version, its own size, the kind (worker or
 * reducer), a name, a parameter table and callbacks. The loader refuses a
 * different ABI major version, a newer minor version than the engine knows,
 * or a struct_size smaller than the engine expects, with a message saying
 * which.
 *
 * Plug-ins never link against libweir: every engine service is reached
 * through the `weir_host` table in `ctx->host` (logging, parameters, STINS
 * parsing, results, HDF5). That keeps plug-ins independent of the engine's
 * internals and of how messages travel (threads today, MPI ranks later).
 *
 * State lives in the `void *self` a plug-in allocates in init() and frees in
 * destroy(). Callbacks on one instance are never called concurrently; each
 * worker thread has its own instance. Return 0 or a negative WEIR_E* code: a
 * failing process_event/process_result is counted as a rejected event with
 * the reason, and the run goes on.
 *
 * Lifecycle per run: init → process_event (workers) / process_result
 * (reducer) → finish (once, after the last event) → destroy. The reducer may
 * ask for timer() calls: set `timer_period_s` > 0 in the descriptor or return
 * a new period from timer() through *next_period_s (<= 0 stops the timer). */
#ifndef WEIR_PLUGIN_H
#define WEIR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/concert.h"
#include "weir/dectris.h"
#include "weir/merlin.h"
#include "weir/error.h"
#include "weir/message.h"
#include "weir/params.h"
#include "weir/stins.h"

#define WEIR_ABI_MAJOR 1
/* 1.1: DECTRIS parsing; 1.2: Merlin frames; 1.3: Concert; 1.4: nav_shape;
 * 1.5: ASI TPX3 frames; 1.6: live results (publish_*) */
#define WEIR_ABI_MINOR 6

typedef enum { WEIR_PLUGIN_WORKER = 1, WEIR_PLUGIN_REDUCER = 2 } weir_plugin_kind;

typedef struct weir_host weir_host;
typedef struct weir_result weir_result;
typedef struct weir_h5 weir_h5;

/* Handed to every callback. `host` is the engine's service table; `priv_` is
 * the engine's (do not touch). */
typedef struct weir_pctx {
    const weir_host *host;
    void *priv_;
} weir_pctx;

typedef struct weir_plugin {
    uint32_t abi_major;   /* WEIR_ABI_MAJOR */
    uint32_t abi_minor;   /* WEIR_ABI_MINOR */
    uint32_t struct_size; /* sizeof(weir_plugin) */
    weir_plugin_kind kind;
    const char *name;
    const char *description;
    const weir_param_desc *params; /* may be NULL */
    size_t nparams;
    double timer_period_s; /* reducer: first timer() after this many seconds; 0 = none */

    int (*init)(weir_pctx *ctx, void **self);
    /* worker: called for every event routed to this instance */
    int (*process_event)(weir_pctx *ctx, void *self, const weir_event *ev);
    /* reducer: called for every result, in arrival order (not event order) */
    int (*process_result)(weir_pctx *ctx, void *self, const weir_result *res);
    int (*timer)(weir_pctx *ctx, void *self, double *next_period_s);
    int (*finish)(weir_pctx *ctx, void *self);
    void (*destroy)(void *self);

    void *reserved[8]; /* zero; room for growth without breaking the ABI */
} weir_plugin;

/* Convenience initialiser for the version fields. */
#define WEIR_PLUGIN_HEADER                                                                         \
    .abi_major = WEIR_ABI_MAJOR, .abi_minor = WEIR_ABI_MINOR, .struct_size = sizeof(weir_plugin)

/* The engine's services. Functions taking weir_pctx* may only be called from
 * within a callback with the ctx it received. Strings returned are borrowed
 * and valid until the callback returns unless stated otherwise. */
struct weir_host {
    uint32_t abi_major, abi_minor, struct_size;

    /* --- logging and errors --- */
    void (*log)(weir_pctx *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4))); /* level: WEIR_LOG_* from weir/log.h (0..4) */
    const char *(*strerror)(int err);
    /* 0-based worker index, -1 in the reducer; number of workers. */
    int (*worker_index)(weir_pctx *ctx);
    int (*nworkers)(weir_pctx *ctx);

    /* --- parameters (the current snapshot; changes apply from the next event) --- */
    int64_t (*param_int)(weir_pctx *ctx, const char *name);
    double (*param_float)(weir_pctx *ctx, const char *name);
    int (*param_bool)(weir_pctx *ctx, const char *name);
    /* string and binary parameters; *len may be NULL */
    const char *(*param_bytes)(weir_pctx *ctx, const char *name, size_t *len);
    const char *(*params_hash)(weir_pctx *ctx);

    /* --- STINS --- */
    /* Parses the stream `stream` of ev (decompressing bslz4). WEIR_ENOTFOUND
     * when the event has no such stream. Release with stins_clear. */
    int (*stins_parse)(weir_pctx *ctx, const weir_event *ev, const char *stream,
                       weir_stins_packet *out);
    void (*stins_clear)(weir_stins_packet *p);
    int (*stins_get_f64)(const weir_stins_packet *p, const char *key, double *out);
    int (*stins_get_str)(const weir_stins_packet *p, const char *key, const char **out);

    /* --- arrays --- */
    double (*array_get_f64)(const weir_array *a, size_t flat_index);
    int (*array_alloc)(weir_array *a, weir_dtype dt, int ndim, const size_t *shape);
    void (*array_release)(weir_array *a);

    /* --- results (worker side) --- */
    /* A new empty result for the event being processed. Owned by the caller
     * until emit() (which always takes it, also on error) or result_free(). */
    weir_result *(*result_new)(weir_pctx *ctx);
    int (*result_set_i64)(weir_result *r, const char *key, int64_t v);
    int (*result_set_f64)(weir_result *r, const char *key, double v);
    int (*result_set_str)(weir_result *r, const char *key, const char *v);
    int (*result_set_bytes)(weir_result *r, const char *key, const void *data, size_t len);
    /* Copies the array's elements (any strides) into the result. */
    int (*result_set_array)(weir_result *r, const char *key, const weir_array *a);
    int (*emit)(weir_pctx *ctx, weir_result *r);
    void (*result_free)(weir_result *r);

    /* --- results (reducer side) --- */
    uint64_t (*result_event)(const weir_result *r);
    int (*result_worker)(const weir_result *r);
    const char *(*result_params_hash)(const weir_result *r);
    int (*result_has)(const weir_result *r, const char *key);
    int (*result_get_i64)(const weir_result *r, const char *key, int64_t *out);
    int (*result_get_f64)(const weir_result *r, const char *key, double *out);
    int (*result_get_str)(const weir_result *r, const char *key, const char **out);
    int (*result_get_bytes)(const weir_result *r, const char *key, const void **data, size_t *len);
    /* A view (borrowed, valid during the callback) of an array value. */
    int (*result_get_array)(const weir_result *r, const char *key, weir_array *out);

    /* --- HDF5 output (see weir/h5.h for semantics) --- */
    int (*h5_create)(weir_pctx *ctx, const char *path, weir_h5 **out);
    int (*h5_close)(weir_h5 *h);
    int (*h5_create_rows)(weir_h5 *h, const char *name, weir_dtype_kind dt, int row_ndim,
                          const size_t *row_shape);
    int (*h5_write_row)(weir_h5 *h, const char *name, uint64_t index, const void *data);
    int (*h5_write_i64)(weir_h5 *h, const char *name, int64_t v);
    int (*h5_write_f64)(weir_h5 *h, const char *name, double v);
    int (*h5_write_str)(weir_h5 *h, const char *name, const char *v);
    int (*h5_write_array)(weir_h5 *h, const char *name, const weir_array *a);
    int (*h5_attr_str)(weir_h5 *h, const char *obj, const char *attr, const char *v);
    int (*h5_attr_i64)(weir_h5 *h, const char *obj, const char *attr, int64_t v);
    int (*h5_attr_f64)(weir_h5 *h, const char *obj, const char *attr, double v);
    const char *(*h5_error)(const weir_h5 *h);

    /* --- run information --- */
    /* The i-th input file of a replay (NULL past the end / in live runs). */
    const char *(*input_name)(weir_pctx *ctx, size_t i);
    /* Directory for outputs given with --output-dir ("" = current dir). */
    const char *(*output_dir)(weir_pctx *ctx);

    /* --- DECTRIS (ABI 1.1; check host->abi_minor >= 1) --- */
    /* Parses the stream `stream` of ev as DECTRIS stream v1 (typ
     * "EIGER_LEGACY") or v2 ("DECTRIS_STREAM2"), decompressing the images.
     * WEIR_ENOTFOUND when the event has no such stream. Release with
     * dectris_clear. */
    int (*dectris_parse)(weir_pctx *ctx, const weir_event *ev, const char *stream,
                         weir_dectris_packet *out);
    void (*dectris_clear)(weir_dectris_packet *p);

    /* --- Merlin (ABI 1.2) --- */
    /* The stream `stream` of ev (typ "MERLIN"): *is_header = 1 for the
     * acquisition header (out left empty), else the decoded frame in out
     * (release with array_release) and its header in *hdr (may be NULL).
     * Merlin sends no end message: the last event of an acquisition has an
     * empty packet, for which out is left empty (ndim 0). */
    int (*merlin_parse)(weir_pctx *ctx, const weir_event *ev, const char *stream, int *is_header,
                        weir_array *out, weir_merlin_frame_header *hdr);

    /* --- Concert (ABI 1.3) --- */
    /* The stream `stream` of ev (typ "CONCERT") with its pixels viewed;
     * release with concert_clear. An empty packet (event 0: Concert has no
     * start message) gives WEIR_OK with out->end = 0 and no data. */
    int (*concert_parse)(weir_pctx *ctx, const weir_event *ev, const char *stream,
                         weir_concert_packet *out);
    void (*concert_clear)(weir_concert_packet *p);

    /* --- acquisition (ABI 1.4) --- */
    /* The scan (navigation) shape of the current acquisition, as inferred
     * from the run's nav_shape, its on_determine_nav_shape hook and the
     * detector (Merlin ScanX/ScanY, DECTRIS ntrigger x nimages): writes up
     * to `cap` dims to shape, returns ndim, or 0 when not known (replays, MPI
     * ranks other than the source's). *frames (may be NULL) gets the frame
     * count the detector announced, 0 if none. */
    int (*nav_shape)(weir_pctx *ctx, int64_t *shape, int cap, uint64_t *frames);

    /* --- ASI TPX3 (ABI 1.5) --- */
    /* The stream `stream` of ev (typ "ASI_TPX3"): *kind = 1 for the scan
     * start, 3 for its end (out left empty), 2 for a frame, decoded from its
     * CSR row into a dense (sig_h, sig_w) uint32 array in out (release with
     * array_release). An empty packet gives *kind 0. */
    int (*tpx3_frame)(weir_pctx *ctx, const weir_event *ev, const char *stream, int *kind,
                      weir_array *out);

    /* --- live results (ABI 1.6; reducer only) --- */
    /* Stage a named value for the live view (HTTP /api/v1/results); the
     * value is copied (arrays: any strides, stored C-contiguous). Nothing
     * staged is visible until publish_commit, which makes every value staged
     * since the previous commit visible together, so readers never see a
     * half-updated set. Each value records the parameters hash of the
     * result being processed (or the reducer's current one in timer and
     * finish). Names: 1..200 bytes. WEIR_EINVAL when called from a worker. */
    int (*publish_f64)(weir_pctx *ctx, const char *name, double v);
    int (*publish_i64)(weir_pctx *ctx, const char *name, int64_t v);
    int (*publish_str)(weir_pctx *ctx, const char *name, const char *v);
    int (*publish_array)(weir_pctx *ctx, const char *name, const weir_array *a);
    int (*publish_commit)(weir_pctx *ctx);
};

#endif
