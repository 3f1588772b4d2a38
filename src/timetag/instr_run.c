/* instr_run.c — running instruments over a file or an array, serially or
 * over K sections in parallel.
 *
 * Parallel runs split the records into K contiguous sections
 * (weir_tag_sections gives exact start positions, overflow base included).
 * Worker j feeds its own section to fresh copies of the instruments, seals
 * them, then keeps reading past its end ("lead-out") for as long as an
 * instrument says later events could still pair with its own
 * (weir_tinstr_wants_more: up to the last owned time + the histogram reach
 * + the delay difference). Every pair is counted by the worker owning its
 * earlier event, so the sum of the workers equals the serial result bit
 * for bit, whatever K. Instruments that cannot be split this way
 * (weir_tinstr_parallel_ok) run serially over the whole input on their own
 * thread alongside the workers. */
#include "instr_impl.h"

#include "weir/error.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

int weir_tinstr_parallel_ok(const weir_tinstr *t)
{
    const weir_tinstr_config *c = &t->cfg;
    if (c->eta_compat) return 0;
    if (c->gate_open != WEIR_TI_NOCH) return 0; /* gate state at a section start is unknown */
    switch (c->kind) {
    case WEIR_TI_CORR:
    case WEIR_TI_COUNT:
        return 1;
    case WEIR_TI_LIFETIME:
        if (c->lifetime_micro) return 1;
        /* fall through */
    case WEIR_TI_STARTSTOP:
        return ti_delay(c, c->start) == ti_delay(c, c->stop);
    case WEIR_TI_COINC:
        return 0;
    }
    return 0;
}

static double header_float(const weir_tag_info *info, const char *name, double dflt)
{
    for (size_t i = 0; i < info->ntags; i++)
        if (!strcmp(info->tags[i].name, name)) return info->tags[i].f;
    return dflt;
}

void weir_tinstr_eta_times(const weir_tag_info *info, weir_tag *ev, size_t n)
{
    if (!info->t3 || info->tick.den == 0 || info->micro.den == 0) return;
    const double sync_ps = (double)info->tick.num / (double)info->tick.den;
    const double micro_ps = (double)info->micro.num / (double)info->micro.den;
    const int64_t eta_sync =
        (int64_t)(header_float(info, "MeasDesc_GlobalResolution", sync_ps * 1e-12) * 1e12);
    const int64_t eta_micro =
        (int64_t)(header_float(info, "MeasDesc_Resolution", micro_ps * 1e-12) * 1e12);
    for (size_t i = 0; i < n; i++) {
        const int32_t m = ev[i].micro > 0 ? ev[i].micro : 0;
        const double sync_t = (double)ev[i].time - (double)m * micro_ps;
        const int64_t nsync = (int64_t)nearbyint(sync_t / sync_ps);
        ev[i].time = nsync * eta_sync + (int64_t)m * eta_micro;
    }
}

/* Feeds the prefix of ev that inst still wants after its seal. Returns the
 * number fed (n when it wants all of them). */
static size_t feed_leadout(weir_tinstr *t, const weir_tag *ev, size_t n, int *rc)
{
    size_t m = 0;
    while (m < n && weir_tinstr_wants_more(t, ev[m].time))
        m++;
    if (m) *rc = weir_tinstr_feed(t, ev, m);
    return m;
}

static int clone_fresh(const weir_tinstr *src, weir_tinstr **out)
{
    char err[128];
    return weir_tinstr_create(&src->cfg, out, err, sizeof err);
}

/* Adds a finished worker context into dst and marks dst finished. */
static int absorb(weir_tinstr *dst, weir_tinstr *w)
{
    int rc = weir_tinstr_finish(w);
    if (!rc) rc = weir_tinstr_merge(dst, w);
    dst->finished = 1;
    return rc;
}

int weir_tinstr_run_sections(const weir_tag *ev, size_t n, unsigned k, weir_tinstr **insts,
                             size_t ninst, char *err, size_t errlen)
{
    if (k == 0) k = 1;
    int rc = 0;
    for (size_t i = 0; i < ninst && !rc; i++) {
        weir_tinstr *dst = insts[i];
        if (!weir_tinstr_parallel_ok(dst)) {
            rc = weir_tinstr_feed(dst, ev, n);
            if (!rc) rc = weir_tinstr_finish(dst);
            continue;
        }
        for (unsigned j = 0; j < k && !rc; j++) {
            size_t s = (size_t)((unsigned __int128)n * j / k);
            size_t e = (size_t)((unsigned __int128)n * (j + 1) / k);
            weir_tinstr *w = NULL;
            rc = clone_fresh(dst, &w);
            if (rc) break;
            if (e > s) rc = weir_tinstr_feed(w, ev + s, e - s);
            if (!rc) rc = weir_tinstr_seal(w);
            if (!rc && e < n) feed_leadout(w, ev + e, n - e, &rc);
            if (!rc) rc = absorb(dst, w);
            weir_tinstr_free(w);
        }
    }
    if (rc) snprintf(err, errlen, "section run failed: %s", weir_strerror(rc));
    return rc;
}

/* ---- files ---- */

typedef struct {
    const char *path;
    weir_tag_format fmt;
    weir_tag_pos pos;
    uint64_t end;       /* section end record (UINT64_MAX: to the end, serial) */
    weir_tinstr **mine; /* this worker's contexts */
    size_t n;
    int serial; /* feed everything, no seal */
    size_t chunk;
    _Atomic uint64_t *done;
    _Atomic int *stop;
    size_t *finished; /* under *lock; *cond signalled when it grows */
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int rc;
    char err[256];
} job;

static void *worker(void *arg)
{
    job *j = arg;
    weir_tag_reader *r = NULL;
    weir_tag *buf = malloc(j->chunk * sizeof *buf);
    int rc = buf ? weir_tag_open(j->path, j->fmt, &r, j->err, sizeof j->err) : WEIR_ENOMEM;
    if (!rc) rc = weir_tag_seek(r, &j->pos);
    if (rc) goto out;
    weir_tag_set_end(r, j->end);
    uint64_t last = j->pos.record;
    for (;;) {
        if (atomic_load(j->stop)) break;
        if (j->n == 1 && ti_corr_fused_ok(j->mine[0], r)) {
            long got = ti_corr_fused(j->mine[0], r, j->chunk);
            if (got >= 0 || got == WEIR_ERANGE) {
                if (got < 0) {
                    rc = (int)got;
                    goto out;
                }
                uint64_t now = weir_tag_tell(r).record;
                atomic_fetch_add(j->done, now - last);
                last = now;
                if (got == 0) break;
                continue;
            }
            /* WEIR_EUNSUPPORTED: extreme times; decode and feed instead */
        }
        long got = weir_tag_read(r, buf, j->chunk, j->err, sizeof j->err);
        if (got < 0) {
            rc = (int)got;
            goto out;
        }
        uint64_t now = weir_tag_tell(r).record;
        atomic_fetch_add(j->done, now - last);
        last = now;
        if (got == 0) break;
        for (size_t i = 0; i < j->n && !rc; i++)
            rc = weir_tinstr_feed(j->mine[i], buf, (size_t)got);
        if (rc) goto out;
    }
    if (j->serial) goto out;
    for (size_t i = 0; i < j->n && !rc; i++)
        rc = weir_tinstr_seal(j->mine[i]);
    weir_tag_set_end(r, UINT64_MAX);
    size_t wanting = j->n;
    while (!rc && wanting) {
        long got = weir_tag_read(r, buf, j->chunk, j->err, sizeof j->err);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got == 0) break;
        wanting = 0;
        for (size_t i = 0; i < j->n && !rc; i++)
            if (feed_leadout(j->mine[i], buf, (size_t)got, &rc) == (size_t)got) wanting++;
    }
out:
    if (rc && !j->err[0]) snprintf(j->err, sizeof j->err, "%s", weir_strerror(rc));
    j->rc = rc;
    weir_tag_close(r);
    free(buf);
    pthread_mutex_lock(j->lock);
    (*j->finished)++;
    pthread_cond_signal(j->cond);
    pthread_mutex_unlock(j->lock);
    return NULL;
}

int weir_tinstr_run_file(weir_tag_reader *r, weir_tinstr **insts, size_t n,
                         const weir_tinstr_run_opts *o, char *err, size_t errlen)
{
    weir_tinstr_run_opts def = {1, 1 << 16, NULL, NULL};
    if (!o) o = &def;
    size_t chunk = o->chunk ? o->chunk : (1u << 16);
    const weir_tag_info *info = weir_tag_reader_info(r);
    weir_tag_pos start = weir_tag_tell(r);
    uint64_t total = info->nrecords > start.record ? info->nrecords - start.record : 0;
    unsigned k = o->threads ? o->threads : 1;
    int rc = 0;

    if (k == 1) {
        weir_tag *buf = malloc(chunk * sizeof *buf), *ebuf = malloc(chunk * sizeof *buf);
        if (!buf || !ebuf) {
            free(buf);
            free(ebuf);
            return WEIR_ENOMEM;
        }
        for (;;) {
            long got = 0;
            if (n == 1 && ti_corr_fused_ok(insts[0], r)) {
                /* decode + correlate in one loop (instr_corr.c) */
                got = ti_corr_fused(insts[0], r, chunk);
                if (got == WEIR_ERANGE) {
                    rc = (int)got;
                    snprintf(err, errlen, "instrument '%s': events are not sorted by time",
                             insts[0]->cfg.name);
                    break;
                }
                if (got == 0) break;
                if (got > 0) goto progress;
                /* WEIR_EUNSUPPORTED: extreme times; decode and feed instead */
            }
            got = weir_tag_read(r, buf, chunk, err, errlen);
            if (got < 0) {
                rc = (int)got;
                break;
            }
            if (got == 0) break;
            int eta = 0;
            for (size_t i = 0; i < n; i++)
                eta |= insts[i]->cfg.eta_compat;
            if (eta) {
                memcpy(ebuf, buf, (size_t)got * sizeof *buf);
                weir_tinstr_eta_times(info, ebuf, (size_t)got);
            }
            for (size_t i = 0; i < n && !rc; i++) {
                rc = weir_tinstr_feed(insts[i], insts[i]->cfg.eta_compat ? ebuf : buf, (size_t)got);
                if (rc)
                    snprintf(err, errlen, "instrument '%s': %s", insts[i]->cfg.name,
                             rc == WEIR_ERANGE ? "events are not sorted by time"
                                               : weir_strerror(rc));
            }
            if (rc) break;
        progress:
            if (o->progress &&
                o->progress(o->progress_ud, weir_tag_tell(r).record - start.record, total)) {
                rc = WEIR_ECLOSED;
                snprintf(err, errlen, "stopped");
                break;
            }
        }
        free(buf);
        free(ebuf);
        return rc;
    }

    /* Parallel: K section jobs for splittable instruments, one serial job
     * for the rest. */
    weir_tag_pos *pos = calloc(k, sizeof *pos);
    uint64_t *ends = calloc(k, sizeof *ends);
    job *jobs = calloc(k + 1, sizeof *jobs);
    pthread_t *th = calloc(k + 1, sizeof *th);
    weir_tinstr **ctx = calloc((size_t)(k + 1) * (n ? n : 1), sizeof *ctx);
    _Atomic uint64_t done = 0;
    _Atomic int stop = 0;
    size_t finished = 0;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &cattr);
    pthread_condattr_destroy(&cattr);
    size_t njobs = 0, nstarted = 0;
    if (!pos || !ends || !jobs || !th || !ctx) {
        rc = WEIR_ENOMEM;
        goto out;
    }
    rc = weir_tag_sections(r, start.record, info->nrecords, k, pos, ends, err, errlen);
    if (rc) goto out;
    size_t npar = 0, nser = 0;
    for (size_t i = 0; i < n; i++)
        weir_tinstr_parallel_ok(insts[i]) ? npar++ : nser++;
    for (unsigned j = 0; j < k && npar; j++) {
        job *jb = &jobs[njobs];
        jb->mine = ctx + njobs * n;
        for (size_t i = 0; i < n && !rc; i++)
            if (weir_tinstr_parallel_ok(insts[i])) rc = clone_fresh(insts[i], &jb->mine[jb->n++]);
        jb->pos = pos[j];
        jb->end = ends[j];
        njobs++;
    }
    if (nser && !rc) {
        job *jb = &jobs[njobs];
        jb->mine = ctx + njobs * n;
        for (size_t i = 0; i < n; i++)
            if (!weir_tinstr_parallel_ok(insts[i])) jb->mine[jb->n++] = insts[i];
        jb->pos = start;
        jb->end = UINT64_MAX;
        jb->serial = 1;
        njobs++;
    }
    if (rc) goto out;
    for (size_t j = 0; j < njobs; j++) {
        jobs[j].path = info->path;
        jobs[j].fmt = info->format;
        jobs[j].chunk = chunk;
        jobs[j].done = &done;
        jobs[j].stop = &stop;
        jobs[j].finished = &finished;
        jobs[j].lock = &lock;
        jobs[j].cond = &cond;
        if (pthread_create(&th[j], NULL, worker, &jobs[j])) {
            rc = WEIR_ETHREAD;
            atomic_store(&stop, 1);
            break;
        }
        nstarted++;
    }
    /* Progress from this thread: the workers only bump a counter. With a
     * serial job the file is read twice, so the total doubles. */
    uint64_t grand = total * (npar ? 1 : 0) + total * (nser ? 1 : 0);
    /* Wakes when a worker ends (not on a fixed sleep, which cost up to
     * 100 ms per run) and at least every 100 ms for the progress report. */
    pthread_mutex_lock(&lock);
    while (finished < nstarted) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&cond, &lock, &ts);
        if (finished >= nstarted) break;
        pthread_mutex_unlock(&lock);
        if (o->progress && o->progress(o->progress_ud, atomic_load(&done), grand)) {
            atomic_store(&stop, 1);
            rc = WEIR_ECLOSED;
            snprintf(err, errlen, "stopped");
        }
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
out:
    for (size_t j = 0; j < nstarted; j++)
        pthread_join(th[j], NULL);
    for (size_t j = 0; j < njobs && (!rc || rc == WEIR_ECLOSED); j++)
        if (jobs[j].rc && rc != WEIR_ECLOSED) {
            rc = jobs[j].rc;
            snprintf(err, errlen, "section %zu: %s", j, jobs[j].err);
        }
    for (size_t j = 0; j < njobs; j++) {
        if (jobs[j].serial) {
            for (size_t i = 0; i < jobs[j].n; i++) {
                int f = weir_tinstr_finish(jobs[j].mine[i]);
                if (!rc) rc = f;
            }
            continue;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!weir_tinstr_parallel_ok(insts[i])) continue;
            weir_tinstr *w = jobs[j].mine[m++];
            if (!rc) rc = absorb(insts[i], w);
            weir_tinstr_free(w);
        }
    }
    pthread_cond_destroy(&cond);
    free(pos);
    free(ends);
    free(jobs);
    free(th);
    free(ctx);
    return rc;
}
