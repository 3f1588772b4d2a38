/* results.c — the live-results store (weir/results.h).
 *
 * Values are immutable, refcounted entries. A snapshot is an immutable,
 * refcounted array of entry pointers plus its version. The publisher stages
 * new entries in a private list; commit builds the next snapshot from the
 * current one (sharing unchanged entries by reference, so only what changed
 * was copied) and swaps the store's pointer under a mutex. Readers take a
 * reference to the current snapshot under the same mutex and then read it
 * without any lock: nothing they can reach ever changes, so a reader sees
 * a whole commit or none of it. The lock is held only for a pointer swap or
 * a refcount increment, so the publisher (the reducer thread) never waits
 * for a reader, however slow. */
#include "weir/results.h"

#include "weir/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 200

typedef struct entry {
    weir_result_value v; /* must be first: snap_at returns &entry->v */
    atomic_int refs;
    char *name;
    char *str;
    weir_buf *buf;
} entry;

struct weir_results_snap {
    atomic_int refs;
    uint64_t version;
    size_t n;
    entry **e;
};

struct weir_results {
    pthread_mutex_t mu;       /* guards cur and version */
    pthread_mutex_t stage_mu; /* guards staged (publisher side) */
    weir_results_snap *cur;
    uint64_t version;
    entry **staged;
    size_t nstaged, capstaged;
    int clear_pending;
};

static void entry_unref(entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
    free(e->name);
    free(e->str);
    if (e->buf) weir_buf_unref(e->buf);
    free(e);
}

static entry *entry_new(const char *name, weir_rv_kind kind, const char *params_hash)
{
    if (!name || !*name || strlen(name) > MAX_NAME) return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    atomic_init(&e->refs, 1);
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return NULL;
    }
    e->v.name = e->name;
    e->v.kind = kind;
    if (params_hash) {
        strncpy(e->v.params_hash, params_hash, sizeof e->v.params_hash - 1);
        e->v.params_hash[sizeof e->v.params_hash - 1] = 0;
    }
    return e;
}

static weir_results_snap *snap_new(size_t n, uint64_t version)
{
    weir_results_snap *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->e = calloc(n ? n : 1, sizeof *s->e);
    if (!s->e) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->version = version;
    return s;
}

void weir_results_snap_release(weir_results_snap *snap)
{
    if (!snap || atomic_fetch_sub(&snap->refs, 1) != 1) return;
    for (size_t i = 0; i < snap->n; i++)
        entry_unref(snap->e[i]);
    free(snap->e);
    free(snap);
}

weir_results *weir_results_new(void)
{
    weir_results *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cur = snap_new(0, 0);
    if (!s->cur) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stage_mu, NULL);
    return s;
}

void weir_results_free(weir_results *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nstaged; i++)
        entry_unref(s->staged[i]);
    free(s->staged);
    weir_results_snap_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stage_mu);
    free(s);
}

/* Takes e (transfer full), replacing a staged entry of the same name. */
static int stage(weir_results *s, entry *e)
{
    if (!e) return WEIR_ENOMEM;
    int rc = WEIR_OK;
    pthread_mutex_lock(&s->stage_mu);
    size_t i;
    for (i = 0; i < s->nstaged; i++)
        if (!strcmp(s->staged[i]->name, e->name)) break;
    if (i < s->nstaged) {
        entry_unref(s->staged[i]);
        s->staged[i] = e;
        goto out;
    }
    if (s->nstaged == s->capstaged) {
        size_t cap = s->capstaged ? s->capstaged * 2 : 8;
        entry **v = realloc(s->staged, cap * sizeof *v);
        if (!v) {
            entry_unref(e);
            rc = WEIR_ENOMEM;
            goto out;
        }
        s->staged = v;
        s->capstaged = cap;
    }
    s->staged[s->nstaged++] = e;
out:
    pthread_mutex_unlock(&s->stage_mu);
    return rc;
}

static int bad_name(const char *name)
{
    return !name || !*name || strlen(name) > MAX_NAME;
}

int weir_results_stage_f64(weir_results *s, const char *name, double v, const char *params_hash)
{
    if (bad_name(name)) return WEIR_EINVAL;
    entry *e = entry_new(name, WEIR_RV_F64, params_hash);
    if (e) e->v.f64 = v;
    return stage(s, e);
}

int weir_results_stage_i64(weir_results *s, const char *name, int64_t v, const char *params_hash)
{
    if (bad_name(name)) return WEIR_EINVAL;
    entry *e = entry_new(name, WEIR_RV_I64, params_hash);
    if (e) e->v.i64 = v;
    return stage(s, e);
}

int weir_results_stage_str(weir_results *s, const char *name, const char *v,
                           const char *params_hash)
{
    if (bad_name(name)) return WEIR_EINVAL;
    entry *e = entry_new(name, WEIR_RV_STR, params_hash);
    if (e && !(e->str = strdup(v ? v : ""))) {
        entry_unref(e);
        e = NULL;
    }
    if (e) e->v.str = e->str;
    return stage(s, e);
}

/* Converts the elements of a (any order) to host order in place. */
static void to_host_order(uint8_t *d, size_t n, size_t isz)
{
    for (size_t i = 0; i < n; i++, d += isz)
        for (size_t a = 0, b = isz - 1; a < b; a++, b--) {
            uint8_t t = d[a];
            d[a] = d[b];
            d[b] = t;
        }
}

int weir_results_stage_array(weir_results *s, const char *name, const weir_array *a,
                             const char *params_hash)
{
    if (bad_name(name) || !a || a->ndim < 0 || a->ndim > WEIR_MAX_DIMS) return WEIR_EINVAL;
    size_t isz = weir_dtype_size(a->dtype.kind);
    if (!isz) return WEIR_EDTYPE;
    entry *e = entry_new(name, WEIR_RV_ARRAY, params_hash);
    if (!e) return WEIR_ENOMEM;
    size_t n = weir_array_nelem(a);
    weir_buf *b = weir_buf_new(n * isz); /* 0 bytes is fine */
    if (!b) {
        entry_unref(e);
        return WEIR_ENOMEM;
    }
    if (n) weir_array_pack(a, weir_buf_mutable(b));
    weir_dtype dt = a->dtype;
    if (isz > 1 && dt.order != weir_host_order()) {
        to_host_order(weir_buf_mutable(b), n, isz);
        dt.order = weir_host_order();
    }
    if (isz == 1) dt.order = weir_host_order();
    int rc = weir_array_init(&e->v.array, dt, a->ndim, a->shape, b, 0);
    weir_buf_unref(b); /* the array holds its own reference */
    if (rc) {
        entry_unref(e);
        return rc;
    }
    e->buf = e->v.array.buf;
    e->v.array.buf = NULL; /* the entry owns it; readers see a borrowed view */
    return stage(s, e);
}

int weir_results_commit(weir_results *s)
{
    int rc = WEIR_OK;
    pthread_mutex_lock(&s->stage_mu);
    if (!s->nstaged && !s->clear_pending) goto out;
    /* cur only changes in commit and clear, both under stage_mu: reading it
     * here without mu is safe. */
    weir_results_snap *old = s->clear_pending ? NULL : s->cur;
    size_t nold = old ? old->n : 0;
    weir_results_snap *nw = snap_new(nold + s->nstaged, 0);
    if (!nw) {
        rc = WEIR_ENOMEM;
        goto out;
    }
    uint64_t version = s->version + 1;
    unsigned char *used = calloc(s->nstaged, 1);
    if (!used) {
        weir_results_snap_release(nw);
        rc = WEIR_ENOMEM;
        goto out;
    }
    /* A replaced value keeps its place in the listing; new ones go last. */
    for (size_t i = 0; i < nold; i++) {
        entry *e = old->e[i];
        for (size_t k = 0; k < s->nstaged; k++)
            if (!strcmp(s->staged[k]->name, e->name)) {
                e = s->staged[k];
                used[k] = 1;
                break;
            }
        if (e == old->e[i]) atomic_fetch_add(&e->refs, 1);
        nw->e[nw->n++] = e;
    }
    for (size_t k = 0; k < s->nstaged; k++)
        if (!used[k]) nw->e[nw->n++] = s->staged[k];
    for (size_t k = 0; k < s->nstaged; k++)
        s->staged[k]->v.version = version;
    free(used);
    nw->version = version;
    s->nstaged = 0;
    s->clear_pending = 0;
    pthread_mutex_lock(&s->mu);
    weir_results_snap *prev = s->cur;
    s->cur = nw;
    s->version = version;
    pthread_mutex_unlock(&s->mu);
    weir_results_snap_release(prev);
out:
    pthread_mutex_unlock(&s->stage_mu);
    return rc;
}

int weir_results_clear(weir_results *s)
{
    pthread_mutex_lock(&s->stage_mu);
    for (size_t i = 0; i < s->nstaged; i++)
        entry_unref(s->staged[i]);
    s->nstaged = 0;
    s->clear_pending = 1;
    pthread_mutex_unlock(&s->stage_mu);
    return weir_results_commit(s);
}

uint64_t weir_results_version(weir_results *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->version;
    pthread_mutex_unlock(&s->mu);
    return v;
}

weir_results_snap *weir_results_snapshot(weir_results *s)
{
    pthread_mutex_lock(&s->mu);
    weir_results_snap *snap = s->cur;
    atomic_fetch_add(&snap->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return snap;
}

uint64_t weir_results_snap_version(const weir_results_snap *snap)
{
    return snap->version;
}

size_t weir_results_snap_count(const weir_results_snap *snap)
{
    return snap->n;
}

const weir_result_value *weir_results_snap_at(const weir_results_snap *snap, size_t i)
{
    return i < snap->n ? &snap->e[i]->v : NULL;
}

const weir_result_value *weir_results_snap_find(const weir_results_snap *snap, const char *name)
{
    for (size_t i = 0; name && i < snap->n; i++)
        if (!strcmp(snap->e[i]->name, name)) return &snap->e[i]->v;
    return NULL;
}
