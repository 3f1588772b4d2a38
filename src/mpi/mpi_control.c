/* mpi_control.c — the HTTP control plane's view of a run on MPI ranks.
 *
 * Under mpirun one rank (the serving rank) runs the HTTP server, but the
 * results are published on the reducer rank, the source and its progress
 * live on rank 0 and the counters are spread over every rank. This file
 * moves what the server needs between the ranks, so the server itself works
 * exactly as in the threaded mode: a results store updated from the
 * reducer's commits, parameters that reach every rank from a defined event
 * on, merged counters, and start/stop/abort across ranks (weir/mpi.h).
 *
 * Each rank runs one service thread for the run, talking on a communicator
 * of its own (so the transport's probes for any tag never see these
 * messages). It polls with a short sleep, never blocking on a peer: results
 * and counters are sent nonblocking with a bounded number in flight. The
 * parameter sets themselves are sent by rank 0's source thread right before
 * the first event that must use them (cp_event_seq), and workers wait for
 * the set an event names (cp_wait_seq): that gives "from the next event"
 * across ranks without any extra round trip per event. */
#include "mpi_internal.h"

#include "../runtime/engine_internal.h"
#include "weir/error.h"
#include "weir/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMP "mpi-http"
#define TAG_CP_PARAMS 1  /* rank 0 → all: u32 seq + parameter set */
#define TAG_CP_PREQ 2    /* serving rank → rank 0: parameter set to adopt */
#define TAG_CP_CTRL 3    /* serving rank → rank 0 / all: int command */
#define TAG_CP_STATS 4   /* all → serving rank: stats_msg */
#define TAG_CP_RESULTS 5 /* reducer rank → serving rank: changed values */
#define TAG_CP_RELEASE 6 /* serving rank → all: keep-alive is over */
#define STATS_PERIOD 0.2

typedef struct {
    weir_stats st;
    uint64_t done, total;
    int32_t final;
    uint32_t nstreams; /* rank 0: its live source's per-stream counters */
    weir_live_stream_stats streams[WEIR_MPI_CP_STREAMS];
} stats_msg;

struct weir_mpi_cp {
    weir_mpi_cp_config c;
    int rank, size, R;
    MPI_Comm ctl;
    pthread_mutex_t mu; /* guards the fields below up to the thread's */
    weir_engine *e;     /* during a run */
    int ran;            /* a run has begun */
    int nslots, T, reducer;
    double timeout;
    stats_msg *got; /* serving rank: per rank, as last reported */
    double *got_t;
    unsigned char *have;
    weir_stats own_last; /* the local engine's final counters */
    weir_mpi_cp_counters ctr;
    unsigned applied_version; /* serving rank: engine params version after our own apply */
    /* the service thread */
    pthread_t th;
    int th_started;
    atomic_int ending;
    atomic_uint seq;                   /* parameter set applied on this rank */
    unsigned bcast_seq, bcast_version; /* rank 0, source thread only */
    /* between acquisitions (weir_mpi_cp_idle_begin .. weir_mpi_cp_next) */
    int idle;          /* guarded by mu */
    pthread_t idle_th; /* rank 0: takes stop/abort for the source */
    int idle_started;
    atomic_int idle_end;
};

/* ---- byte buffers -------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int bad;
} wb;

static void put(wb *w, const void *d, size_t n)
{
    if (w->bad) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *np = realloc(w->p, cap);
        if (!np) {
            w->bad = 1;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void put_bytes(wb *w, const void *d, size_t n)
{
    uint64_t l = n;
    put(w, &l, 8);
    put(w, d, n);
}

typedef struct {
    const uint8_t *p;
    size_t len, off;
} rb;

static int get(rb *r, void *d, size_t n)
{
    if (r->len - r->off < n) return -1;
    memcpy(d, r->p + r->off, n);
    r->off += n;
    return 0;
}

/* A borrowed pointer to n bytes (n read first). */
static const uint8_t *get_bytes(rb *r, size_t *n)
{
    uint64_t l;
    if (get(r, &l, 8) || r->len - r->off < l) return NULL;
    const uint8_t *p = r->p + r->off;
    r->off += (size_t)l;
    *n = (size_t)l;
    return p;
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* ---- parameters -------------------------------------------------------------- */

/* A whole parameter set as (name, stored bytes) pairs. */
static void params_encode_set(const weir_params *p, wb *w)
{
    uint32_t n = (uint32_t)weir_params_count(p);
    put(w, &n, 4);
    for (uint32_t i = 0; i < n; i++) {
        const char *name = weir_params_name(p, i), *data = NULL;
        size_t len = 0;
        weir_params_get_bytes(p, name, &data, &len);
        put_bytes(w, name, strlen(name));
        put_bytes(w, data, len);
    }
}

/* The engine's whole parameter set. */
static void params_encode(weir_engine *e, wb *w)
{
    pthread_mutex_lock(&e->params_mu);
    params_encode_set(e->params, w);
    pthread_mutex_unlock(&e->params_mu);
}

/* Sets the encoded values on p. */
static int params_decode(weir_params *p, rb *r, char *err, size_t errlen)
{
    uint32_t n;
    if (get(r, &n, 4)) return WEIR_ETRUNCATED;
    int rc = WEIR_OK;
    for (uint32_t i = 0; i < n && !rc; i++) {
        size_t nl = 0, dl = 0;
        const uint8_t *nm = get_bytes(r, &nl), *d = nm ? get_bytes(r, &dl) : NULL;
        char *name = nm && d ? strndup((const char *)nm, nl) : NULL;
        rc = name ? weir_params_set(p, name, d, dl, 0, err, errlen) : WEIR_ETRUNCATED;
        free(name);
    }
    return rc;
}

/* Adopts a parameter set: the engine's instances pick it up at their next
 * event, as after weir_engine_set_params. */
static int params_apply(weir_engine *e, rb *r)
{
    char err[256] = "";
    pthread_mutex_lock(&e->params_mu);
    weir_params *next = weir_params_clone(e->params);
    int rc = next ? params_decode(next, r, err, sizeof err) : WEIR_ENOMEM;
    if (!rc) {
        weir_params *old = e->params;
        e->params = next;
        next = old;
        atomic_fetch_add(&e->params_version, 1);
    }
    weir_params_free(next);
    pthread_mutex_unlock(&e->params_mu);
    if (rc) WEIR_LOGE(COMP, "a parameter set from another rank was refused: %s", err);
    return rc;
}

unsigned cp_event_seq(weir_mpi_cp *cp)
{
    if (!cp || cp->rank != 0 || !cp->e) return 0;
    weir_engine *e = cp->e;
    if (atomic_load(&e->params_version) == cp->bcast_version) return cp->bcast_seq;
    wb w = {0};
    uint32_t seq = cp->bcast_seq + 1;
    put(&w, &seq, 4);
    pthread_mutex_lock(&e->params_mu);
    cp->bcast_version = atomic_load(&e->params_version);
    pthread_mutex_unlock(&e->params_mu);
    params_encode(e, &w);
    if (w.bad) {
        free(w.p);
        WEIR_LOGE(COMP, "out of memory sending the parameters");
        return cp->bcast_seq;
    }
    /* small and before the event's header on the same pair of ranks: the
     * workers hold the event until they have applied it */
    for (int r = 1; r < cp->size; r++)
        MPI_Send(w.p, (int)w.len, MPI_BYTE, r, TAG_CP_PARAMS, cp->ctl);
    free(w.p);
    cp->bcast_seq = seq;
    pthread_mutex_lock(&cp->mu);
    cp->ctr.params_sent++;
    pthread_mutex_unlock(&cp->mu);
    WEIR_LOGI(COMP, "parameter set %u sent to every rank", seq);
    return seq;
}

void cp_wait_seq(weir_mpi_cp *cp, unsigned seq)
{
    if (!cp) return;
    double t0 = engine_now();
    while (atomic_load(&cp->seq) < seq) {
        if (engine_now() - t0 > cp->timeout) {
            WEIR_LOGE(COMP, "parameter set %u never arrived; going on with the previous one", seq);
            return;
        }
        nap(100000);
    }
}

/* ---- results ---------------------------------------------------------------------- */

/* Values of the store changed after commit `since` (all of them for 0). */
static void results_encode(weir_results *s, uint64_t since, uint64_t *version, wb *w)
{
    weir_results_snap *snap = weir_results_snapshot(s);
    *version = snap ? weir_results_snap_version(snap) : 0;
    uint32_t n = 0;
    size_t at = w->len;
    put(w, &n, 4);
    for (size_t i = 0; snap && i < weir_results_snap_count(snap); i++) {
        const weir_result_value *v = weir_results_snap_at(snap, i);
        if (v->version <= since) continue;
        uint8_t kind = (uint8_t)v->kind;
        put_bytes(w, v->name, strlen(v->name));
        put(w, &kind, 1);
        put(w, v->params_hash, sizeof v->params_hash);
        if (v->kind == WEIR_RV_F64) put(w, &v->f64, 8);
        if (v->kind == WEIR_RV_I64) put(w, &v->i64, 8);
        if (v->kind == WEIR_RV_STR) put_bytes(w, v->str, strlen(v->str));
        if (v->kind == WEIR_RV_ARRAY) {
            uint8_t dk = (uint8_t)v->array.dtype.kind, nd = (uint8_t)v->array.ndim;
            put(w, &dk, 1);
            put(w, &nd, 1);
            for (int d = 0; d < v->array.ndim; d++) {
                uint64_t sh = v->array.shape[d];
                put(w, &sh, 8);
            }
            put_bytes(w, v->array.data, weir_array_nbytes(&v->array));
        }
        n++;
    }
    if (!w->bad) memcpy(w->p + at, &n, 4);
    weir_results_snap_release(snap);
}

static int results_apply(weir_results *s, rb *r)
{
    uint32_t n;
    int rc = get(r, &n, 4) ? WEIR_ETRUNCATED : WEIR_OK;
    for (uint32_t i = 0; i < n && !rc; i++) {
        size_t nl = 0, l = 0;
        const uint8_t *nm = get_bytes(r, &nl);
        uint8_t kind = 0;
        char hash[17];
        if (!nm || get(r, &kind, 1) || get(r, hash, sizeof hash)) return WEIR_ETRUNCATED;
        hash[16] = 0;
        char *name = strndup((const char *)nm, nl);
        if (!name) return WEIR_ENOMEM;
        if (kind == WEIR_RV_F64) {
            double v;
            rc = get(r, &v, 8) ? WEIR_ETRUNCATED : weir_results_stage_f64(s, name, v, hash);
        } else if (kind == WEIR_RV_I64) {
            int64_t v;
            rc = get(r, &v, 8) ? WEIR_ETRUNCATED : weir_results_stage_i64(s, name, v, hash);
        } else if (kind == WEIR_RV_STR) {
            const uint8_t *p = get_bytes(r, &l);
            char *str = p ? strndup((const char *)p, l) : NULL;
            rc = str ? weir_results_stage_str(s, name, str, hash) : WEIR_ETRUNCATED;
            free(str);
        } else if (kind == WEIR_RV_ARRAY) {
            uint8_t dk = 0, nd = 0;
            weir_array a;
            memset(&a, 0, sizeof a);
            rc = get(r, &dk, 1) || get(r, &nd, 1) || nd > WEIR_MAX_DIMS ? WEIR_EFORMAT : WEIR_OK;
            for (int d = 0; d < nd && !rc; d++) {
                uint64_t sh = 0;
                rc = get(r, &sh, 8) ? WEIR_ETRUNCATED : WEIR_OK;
                a.shape[d] = (size_t)sh;
            }
            a.dtype = (weir_dtype){(weir_dtype_kind)dk, weir_host_order()};
            a.ndim = nd;
            ptrdiff_t stride = (ptrdiff_t)weir_dtype_size(a.dtype.kind);
            for (int d = nd - 1; d >= 0; d--) {
                a.strides[d] = stride;
                stride *= (ptrdiff_t)a.shape[d];
            }
            a.data = rc ? NULL : get_bytes(r, &l);
            if (!rc && (!a.data || l != weir_array_nbytes(&a))) rc = WEIR_EFORMAT;
            if (!rc) rc = weir_results_stage_array(s, name, &a, hash);
        } else {
            rc = WEIR_EFORMAT;
        }
        free(name);
    }
    if (!rc) rc = weir_results_commit(s);
    return rc;
}

/* ---- the service thread -------------------------------------------------------------- */

static void handle(weir_mpi_cp *cp, MPI_Status *st)
{
    int n = 0;
    MPI_Get_count(st, MPI_BYTE, &n);
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    if (!buf) {
        MPI_Recv(NULL, 0, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, cp->ctl, MPI_STATUS_IGNORE);
        return;
    }
    MPI_Recv(buf, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, cp->ctl, MPI_STATUS_IGNORE);
    rb r = {buf, (size_t)n, 0};
    weir_engine *e = cp->e;
    int src = st->MPI_SOURCE;
    if (st->MPI_TAG == TAG_CP_PARAMS) {
        uint32_t seq = 0;
        if (!get(&r, &seq, 4) && !params_apply(e, &r) && cp->rank == cp->R) {
            pthread_mutex_lock(&cp->mu);
            cp->applied_version = atomic_load(&e->params_version);
            pthread_mutex_unlock(&cp->mu);
        }
        atomic_store(&cp->seq, seq); /* even if refused: never hold events forever */
    } else if (st->MPI_TAG == TAG_CP_PREQ && cp->rank == 0) {
        params_apply(e, &r); /* the source thread sends it on with the next event */
    } else if (st->MPI_TAG == TAG_CP_CTRL && n >= 4) {
        int32_t cmd;
        get(&r, &cmd, 4);
        WEIR_LOGI(COMP, "rank %d: %s from the serving rank", cp->rank,
                  cmd == WEIR_MPI_ABORT  ? "abort"
                  : cmd == WEIR_MPI_STOP ? "stop"
                                         : "start");
        if (cmd == WEIR_MPI_ABORT && e) weir_engine_abort(e);
        if (cmd == WEIR_MPI_STOP && cp->rank == 0 && e) weir_engine_stop(e);
        if (cp->rank == 0 && cp->c.source_control) cp->c.source_control(cp->c.ud, cmd);
    } else if (st->MPI_TAG == TAG_CP_STATS && cp->rank == cp->R && n == (int)sizeof(stats_msg)) {
        pthread_mutex_lock(&cp->mu);
        memcpy(&cp->got[src], buf, sizeof(stats_msg));
        cp->got_t[src] = engine_now();
        cp->have[src] = 1;
        pthread_mutex_unlock(&cp->mu);
    } else if (st->MPI_TAG == TAG_CP_RESULTS && cp->rank == cp->R && cp->c.results) {
        int rc = results_apply(cp->c.results, &r);
        if (rc) WEIR_LOGE(COMP, "results from rank %d refused: %s", src, weir_strerror(rc));
        pthread_mutex_lock(&cp->mu);
        cp->ctr.results_applied++;
        pthread_mutex_unlock(&cp->mu);
    }
    free(buf);
}

static int all_done(MPI_Request *reqs, int n)
{
    int flag = 0;
    MPI_Testall(n, reqs, &flag, MPI_STATUSES_IGNORE);
    return flag;
}

static void *cp_main(void *arg)
{
    weir_mpi_cp *cp = arg;
    weir_engine *e = cp->e;
    int B = cp->c.backlog;
    /* slot 0: counters; 1..B: results */
    MPI_Request *req = malloc((size_t)(B + 1) * sizeof *req);
    uint8_t **bufs = calloc((size_t)B + 1, sizeof *bufs);
    stats_msg *sm = calloc(1, sizeof *sm);
    if (!req || !bufs || !sm) {
        WEIR_LOGE(COMP, "out of memory: no control plane on rank %d", cp->rank);
        free(req);
        free(bufs);
        free(sm);
        return NULL;
    }
    for (int i = 0; i <= B; i++)
        req[i] = MPI_REQUEST_NULL;
    int forward_results = cp->rank == cp->reducer && cp->R != cp->reducer;
    uint64_t sent_version = 0;
    double next_stats = 0, next_res = 0, end_t = 0;
    int finals = 0;
    for (;;) {
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, cp->ctl, &flag, &st);
            if (!flag || st.MPI_TAG == TAG_CP_RELEASE) break;
            handle(cp, &st);
        }
        double now = engine_now();
        int ending = atomic_load(&cp->ending);
        if (ending && end_t == 0) end_t = now;
        if (cp->rank == cp->R) {
            /* a POST changed this engine's parameters: rank 0 sends them on */
            pthread_mutex_lock(&cp->mu);
            unsigned v = atomic_load(&e->params_version);
            int changed = cp->R != 0 && v != cp->applied_version;
            cp->applied_version = v;
            pthread_mutex_unlock(&cp->mu);
            if (changed) {
                wb w = {0};
                params_encode(e, &w);
                if (!w.bad) MPI_Send(w.p, (int)w.len, MPI_BYTE, 0, TAG_CP_PREQ, cp->ctl);
                free(w.p);
            }
            if (!ending) {
                nap(2000000);
                continue;
            }
            int missing = 0;
            pthread_mutex_lock(&cp->mu);
            for (int r = 0; r < cp->size; r++)
                if (r != cp->R && !(cp->have[r] && cp->got[r].final)) missing++;
            pthread_mutex_unlock(&cp->mu);
            if (!missing) break;
            if (now - end_t > cp->timeout) {
                WEIR_LOGW(COMP, "%d rank(s) sent no final counters within %.1f s", missing,
                          cp->timeout);
                break;
            }
            nap(2000000);
            continue;
        }
        /* every other rank: results (the reducer), counters */
        int can_send = !ending || all_done(req, B + 1);
        if (forward_results && (now >= next_res || (ending && !finals)) && can_send) {
            next_res = now + cp->c.results_period_ms / 1000.0;
            if (weir_results_version(e->results) != sent_version) {
                int slot = 0;
                for (int i = 1; i <= B && !slot; i++) {
                    int done = 1;
                    if (req[i] != MPI_REQUEST_NULL) MPI_Test(&req[i], &done, MPI_STATUS_IGNORE);
                    if (done) {
                        free(bufs[i]);
                        bufs[i] = NULL;
                        slot = i;
                    }
                }
                if (!slot) {
                    pthread_mutex_lock(&cp->mu);
                    cp->ctr.results_skipped++;
                    pthread_mutex_unlock(&cp->mu);
                } else {
                    wb w = {0};
                    uint64_t v = 0;
                    results_encode(e->results, sent_version, &v, &w);
                    if (!w.bad && w.len <= (size_t)INT32_MAX) {
                        bufs[slot] = w.p;
                        MPI_Isend(w.p, (int)w.len, MPI_BYTE, cp->R, TAG_CP_RESULTS, cp->ctl,
                                  &req[slot]);
                        sent_version = v;
                        pthread_mutex_lock(&cp->mu);
                        cp->ctr.results_sent++;
                        pthread_mutex_unlock(&cp->mu);
                    } else {
                        free(w.p);
                    }
                }
            }
        }
        int stats_done = 1;
        if (req[0] != MPI_REQUEST_NULL) MPI_Test(&req[0], &stats_done, MPI_STATUS_IGNORE);
        if (stats_done && !finals && (ending ? can_send : now >= next_stats)) {
            next_stats = now + STATS_PERIOD;
            weir_engine_stats(e, &sm->st);
            if (cp->rank == 0 && cp->c.progress) cp->c.progress(cp->c.ud, &sm->done, &sm->total);
            if (cp->rank == 0 && cp->c.streams)
                sm->nstreams = (uint32_t)cp->c.streams(cp->c.ud, sm->streams, WEIR_MPI_CP_STREAMS);
            sm->final = ending;
            finals = ending;
            MPI_Isend(sm, (int)sizeof *sm, MPI_BYTE, cp->R, TAG_CP_STATS, cp->ctl, &req[0]);
        }
        if (finals && all_done(req, B + 1)) break;
        if (ending && now - end_t > cp->timeout) {
            /* the serving rank stopped receiving: the pending sends still
             * point at their buffers, so those are deliberately kept */
            WEIR_LOGW(COMP, "rank %d: the serving rank took no final counters", cp->rank);
            return NULL;
        }
        nap(2000000);
    }
    for (int i = 0; i <= B; i++)
        free(bufs[i]);
    free(bufs);
    free(req);
    free(sm);
    return NULL;
}

/* ---- the object ------------------------------------------------------------------------ */

weir_mpi_cp *weir_mpi_cp_new(const weir_mpi_cp_config *c, char *err, size_t errlen)
{
    weir_mpi_cp *cp = calloc(1, sizeof *cp);
    if (!cp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cp->c = *c;
    if (cp->c.results_period_ms <= 0) cp->c.results_period_ms = 50;
    if (cp->c.backlog <= 0) cp->c.backlog = 2;
    MPI_Comm_rank(MPI_COMM_WORLD, &cp->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &cp->size);
    cp->R = c->http_rank;
    if (cp->R < 0 || cp->R >= cp->size) {
        snprintf(err, errlen, "--http-rank %d: there are ranks 0..%d", cp->R, cp->size - 1);
        free(cp);
        return NULL;
    }
    cp->got = calloc((size_t)cp->size, sizeof *cp->got);
    cp->got_t = calloc((size_t)cp->size, sizeof *cp->got_t);
    cp->have = calloc((size_t)cp->size, 1);
    if (!cp->got || !cp->got_t || !cp->have) {
        free(cp->got);
        free(cp->got_t);
        free(cp->have);
        free(cp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&cp->mu, NULL);
    MPI_Comm_dup(MPI_COMM_WORLD, &cp->ctl);
    return cp;
}

void weir_mpi_cp_free(weir_mpi_cp *cp)
{
    if (!cp) return;
    if (cp->idle_started) {
        atomic_store(&cp->idle_end, 1);
        pthread_join(cp->idle_th, NULL);
    }
    MPI_Comm_free(&cp->ctl);
    pthread_mutex_destroy(&cp->mu);
    free(cp->got);
    free(cp->got_t);
    free(cp->have);
    free(cp);
}

weir_results *cp_local_results(weir_mpi_cp *cp)
{
    return cp && cp->rank == cp->R ? cp->c.results : NULL;
}

int cp_run_begin(weir_mpi_cp *cp, weir_engine *e, int nslots, int threads_per_rank,
                 double rank_timeout_s)
{
    if (!cp) return WEIR_OK;
    pthread_mutex_lock(&cp->mu);
    cp->e = e;
    cp->ran = 1;
    cp->nslots = nslots;
    cp->T = threads_per_rank;
    cp->reducer = cp->size - 1;
    cp->timeout = rank_timeout_s;
    cp->applied_version = atomic_load(&e->params_version);
    memset(cp->have, 0, (size_t)cp->size);
    pthread_mutex_unlock(&cp->mu);
    cp->bcast_version = atomic_load(&e->params_version);
    cp->bcast_seq = 0;
    atomic_store(&cp->seq, 0);
    atomic_store(&cp->ending, 0);
    if (pthread_create(&cp->th, NULL, cp_main, cp)) return WEIR_ENOMEM;
    cp->th_started = 1;
    if (cp->rank == cp->R && cp->c.attach) cp->c.attach(cp->c.ud, e);
    return WEIR_OK;
}

void cp_run_end(weir_mpi_cp *cp)
{
    if (!cp || !cp->e) return;
    atomic_store(&cp->ending, 1);
    if (cp->th_started) pthread_join(cp->th, NULL);
    cp->th_started = 0;
    if (cp->rank == cp->R && cp->c.attach) cp->c.attach(cp->c.ud, NULL);
    pthread_mutex_lock(&cp->mu);
    weir_engine_stats(cp->e, &cp->own_last);
    cp->e = NULL;
    pthread_mutex_unlock(&cp->mu);
}

int weir_mpi_cp_stats(weir_mpi_cp *cp, weir_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&cp->mu);
    if (!cp->ran) {
        pthread_mutex_unlock(&cp->mu);
        return 0;
    }
    weir_stats *own = malloc(sizeof *own);
    if (!own) {
        pthread_mutex_unlock(&cp->mu);
        return 0;
    }
    if (cp->e)
        weir_engine_stats(cp->e, own);
    else
        *own = cp->own_last;
    double now = engine_now();
    st->nworkers = cp->nslots;
    mpi_merge_stats(st, own, cp->nslots);
    for (int r = 0; r < cp->size; r++)
        if (r != cp->R && cp->have[r]) mpi_merge_stats(st, &cp->got[r].st, cp->nslots);
    mpi_sum_workers(st);
    /* alive: worker threads of ranks heard from within the rank timeout */
    for (int r = 1; r < cp->reducer; r++) {
        if (r == cp->R)
            st->workers_alive += own->workers_alive;
        else if (cp->have[r] && (cp->got[r].final || now - cp->got_t[r] <= cp->timeout))
            st->workers_alive += cp->got[r].st.workers_alive;
    }
    const weir_stats *src = cp->R == 0 ? own : cp->have[0] ? &cp->got[0].st : NULL;
    st->running = src ? src->running : 0;
    st->aborted = own->aborted;
    for (int r = 0; r < cp->size; r++)
        if (r != cp->R && cp->have[r] && cp->got[r].st.aborted) st->aborted = 1;
    pthread_mutex_unlock(&cp->mu);
    free(own);
    return 1;
}

void weir_mpi_cp_progress(weir_mpi_cp *cp, uint64_t *done, uint64_t *total)
{
    if (cp->rank == 0 && cp->c.progress) {
        cp->c.progress(cp->c.ud, done, total);
        return;
    }
    pthread_mutex_lock(&cp->mu);
    *done = cp->have[0] ? cp->got[0].done : 0;
    *total = cp->have[0] ? cp->got[0].total : 0;
    pthread_mutex_unlock(&cp->mu);
}

int weir_mpi_cp_control(weir_mpi_cp *cp, weir_mpi_cmd cmd)
{
    pthread_mutex_lock(&cp->mu);
    int running = cp->e != NULL, idle = cp->idle;
    pthread_mutex_unlock(&cp->mu);
    int32_t c = (int32_t)cmd;
    if (!running && idle && cmd != WEIR_MPI_START) {
        /* between acquisitions: only rank 0's source is waiting */
        if (cp->rank == 0) return cp->c.source_control ? cp->c.source_control(cp->c.ud, cmd) : 0;
        MPI_Send(&c, 1, MPI_INT32_T, 0, TAG_CP_CTRL, cp->ctl);
        return 0;
    }
    if (!running) return WEIR_EINVAL;
    int rc = 0;
    if (cp->rank == 0 && cp->c.source_control) rc = cp->c.source_control(cp->c.ud, cmd);
    if (cmd != WEIR_MPI_ABORT && cp->rank != 0)
        MPI_Send(&c, 1, MPI_INT32_T, 0, TAG_CP_CTRL, cp->ctl);
    for (int r = 0; cmd == WEIR_MPI_ABORT && r < cp->size; r++)
        if (r != cp->rank) MPI_Send(&c, 1, MPI_INT32_T, r, TAG_CP_CTRL, cp->ctl);
    return rc;
}

void weir_mpi_cp_counters_get(weir_mpi_cp *cp, weir_mpi_cp_counters *out)
{
    pthread_mutex_lock(&cp->mu);
    *out = cp->ctr;
    pthread_mutex_unlock(&cp->mu);
}

void weir_mpi_cp_wait_release(weir_mpi_cp *cp)
{
    if (cp->rank == cp->R) return;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(cp->R, TAG_CP_RELEASE, cp->ctl, &flag, &st);
        if (flag) break;
        nap(50000000);
    }
    int v;
    MPI_Recv(&v, 1, MPI_INT, cp->R, TAG_CP_RELEASE, cp->ctl, MPI_STATUS_IGNORE);
}

void weir_mpi_cp_release(weir_mpi_cp *cp)
{
    if (cp->rank != cp->R) return;
    int v = 1;
    for (int r = 0; r < cp->size; r++)
        if (r != cp->R) MPI_Send(&v, 1, MPI_INT, r, TAG_CP_RELEASE, cp->ctl);
}

size_t weir_mpi_cp_streams(weir_mpi_cp *cp, weir_live_stream_stats *out, size_t cap)
{
    if (cp->rank == 0) return cp->c.streams ? cp->c.streams(cp->c.ud, out, cap) : 0;
    pthread_mutex_lock(&cp->mu);
    size_t n = cp->have[0] ? cp->got[0].nstreams : 0;
    if (n > cap) n = cap;
    if (n > WEIR_MPI_CP_STREAMS) n = WEIR_MPI_CP_STREAMS;
    memcpy(out, cp->got[0].streams, n * sizeof *out);
    pthread_mutex_unlock(&cp->mu);
    return n;
}

/* ---- between acquisitions ------------------------------------------------------------------ */

/* Rank 0 while it waits for the next acquisition: stop and abort from the
 * serving rank reach the source (which is what is waiting). */
static void *idle_main(void *arg)
{
    weir_mpi_cp *cp = arg;
    while (!atomic_load(&cp->idle_end)) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_CP_CTRL, cp->ctl, &flag, &st);
        if (flag)
            handle(cp, &st);
        else
            nap(5000000);
    }
    return NULL;
}

void weir_mpi_cp_idle_begin(weir_mpi_cp *cp)
{
    if (!cp) return;
    pthread_mutex_lock(&cp->mu);
    cp->idle = 1;
    pthread_mutex_unlock(&cp->mu);
    if (cp->rank != 0 || cp->idle_started) return;
    atomic_store(&cp->idle_end, 0);
    cp->idle_started = pthread_create(&cp->idle_th, NULL, idle_main, cp) == 0;
    if (!cp->idle_started) WEIR_LOGW(COMP, "no thread for stop/abort between acquisitions");
}

/* Waits for a nonblocking collective, sleeping between tests. */
static void wait_req(MPI_Request *rq)
{
    for (;;) {
        int flag = 0;
        MPI_Test(rq, &flag, MPI_STATUS_IGNORE);
        if (flag) return;
        nap(5000000);
    }
}

int weir_mpi_cp_next(weir_mpi_cp *cp, int go)
{
    if (cp && cp->idle_started) {
        atomic_store(&cp->idle_end, 1);
        pthread_join(cp->idle_th, NULL);
        cp->idle_started = 0;
    }
    int32_t v = go;
    MPI_Request rq;
    MPI_Ibcast(&v, 1, MPI_INT32_T, 0, cp ? cp->ctl : MPI_COMM_WORLD, &rq);
    wait_req(&rq);
    if (cp) {
        pthread_mutex_lock(&cp->mu);
        cp->idle = 0;
        pthread_mutex_unlock(&cp->mu);
    }
    return v;
}

weir_params *weir_mpi_cp_share_params(weir_mpi_cp *cp, weir_params *mine, const weir_params *base)
{
    if (!cp) return mine;
    wb w = {0};
    uint64_t len = 0;
    if (cp->rank == cp->R && mine) {
        params_encode_set(mine, &w);
        len = w.bad ? 0 : w.len;
        if (w.bad) WEIR_LOGE(COMP, "out of memory sending the parameters");
    }
    MPI_Request rq;
    MPI_Ibcast(&len, 1, MPI_UINT64_T, cp->R, cp->ctl, &rq);
    wait_req(&rq);
    uint8_t *buf = cp->rank == cp->R ? w.p : malloc(len ? (size_t)len : 1);
    if (!buf && len) {
        WEIR_LOGE(COMP, "rank %d: out of memory receiving the parameters", cp->rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    uint8_t dummy[1];
    MPI_Ibcast(buf ? buf : dummy, (int)len, MPI_BYTE, cp->R, cp->ctl, &rq);
    wait_req(&rq);
    if (cp->rank == cp->R) {
        free(w.p);
        return mine;
    }
    weir_params *p = NULL;
    if (len && buf) {
        char err[256] = "";
        rb r = {buf, (size_t)len, 0};
        p = base ? weir_params_clone(base) : weir_params_new();
        int rc = p ? params_decode(p, &r, err, sizeof err) : WEIR_ENOMEM;
        if (rc) {
            WEIR_LOGE(COMP, "rank %d: the serving rank's parameters were refused: %s", cp->rank,
                      err[0] ? err : weir_strerror(rc));
            weir_params_free(p);
            p = NULL;
        }
    }
    free(buf);
    return p;
}
