/* weir/results.h — live results: named values a reducer publishes, read as
 * consistent snapshots (by the HTTP control plane, tests, tools).
 *
 * A store holds the committed values. A publisher (the reducer thread)
 * stages values with weir_results_stage_*; nothing staged is visible until
 * weir_results_commit, which makes everything staged visible at once under
 * a new version number. Readers take a snapshot (an immutable, refcounted
 * list of values) and see either everything of a commit or nothing of it,
 * never a half-updated set. A commit copies only the values staged since
 * the previous one; unchanged values are shared between snapshots.
 *
 * Each value records the commit version at which it last changed and the
 * hash of the parameters it was computed with.
 *
 * Thread-safety: staging and commit are serialised by the store (meant for
 * one publisher at a time); snapshot, version and the snapshot accessors may
 * be called from any thread at any time. */
#ifndef WEIR_RESULTS_H
#define WEIR_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"

typedef enum {
    WEIR_RV_F64 = 1, /* scalar double */
    WEIR_RV_I64,     /* scalar integer */
    WEIR_RV_STR,     /* UTF-8 string */
    WEIR_RV_ARRAY    /* n-d array, C-contiguous, host byte order */
} weir_rv_kind;

typedef struct {
    const char *name;
    weir_rv_kind kind;
    double f64;
    int64_t i64;
    const char *str;
    weir_array array;     /* WEIR_RV_ARRAY: a view of immutable data */
    uint64_t version;     /* commit at which this value last changed */
    char params_hash[17]; /* parameters it was computed with ("" = unknown) */
} weir_result_value;

typedef struct weir_results weir_results;
typedef struct weir_results_snap weir_results_snap;

/* A new empty store (version 0). NULL on OOM. */
weir_results *weir_results_new(void);
/* Frees the store; snapshots still held stay valid until released. */
void weir_results_free(weir_results *s);

/* Stage a value (copied); params_hash may be NULL. Staging a name twice
 * before a commit keeps the later value. 0 or WEIR_ENOMEM / WEIR_EINVAL
 * (empty name or name over 200 bytes, unsupported dtype). */
int weir_results_stage_f64(weir_results *s, const char *name, double v, const char *params_hash);
int weir_results_stage_i64(weir_results *s, const char *name, int64_t v, const char *params_hash);
int weir_results_stage_str(weir_results *s, const char *name, const char *v,
                           const char *params_hash);
/* Copies the elements (any strides, any byte order) into a C-contiguous
 * host-order array. */
int weir_results_stage_array(weir_results *s, const char *name, const weir_array *a,
                             const char *params_hash);
/* Makes everything staged visible together; returns 0 (nothing staged is
 * fine: no new version) or WEIR_ENOMEM (the staged values stay staged). */
int weir_results_commit(weir_results *s);
/* Removes every value (a new acquisition); versions keep increasing. */
int weir_results_clear(weir_results *s);
/* Version of the latest commit (0 before the first). */
uint64_t weir_results_version(weir_results *s);

/* The current snapshot (transfer full: release it). Never NULL unless OOM
 * at creation of the store. */
weir_results_snap *weir_results_snapshot(weir_results *s);
void weir_results_snap_release(weir_results_snap *snap);
uint64_t weir_results_snap_version(const weir_results_snap *snap);
size_t weir_results_snap_count(const weir_results_snap *snap);
/* Borrowed; valid while the snapshot is held. NULL past the end / if absent. */
const weir_result_value *weir_results_snap_at(const weir_results_snap *snap, size_t i);
const weir_result_value *weir_results_snap_find(const weir_results_snap *snap, const char *name);

#endif
