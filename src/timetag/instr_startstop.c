/* instr_startstop.c — classic start-stop histogram (a TAC in software), and
 * the sync-referenced T2 lifetime that shares its machinery.
 *
 * Events are taken in order of delayed time (start before stop at equal
 * times). A start arms the instrument with its time (a later start replaces
 * an earlier one); a stop that finds it armed adds tau = stop - start to the
 * histogram ([lo, lo + nbins*bin), floor bins) and disarms it. In the
 * lifetime form (`multi`) a stop does not disarm, so every photon is
 * measured from the most recent sync.
 *
 * With per-channel delays the two delayed streams are merged: an event at
 * delayed time x is processed once both streams are known below x (after a
 * chunk ending at raw time T a stream with delay d is known below T + d).
 *
 * Sections: a pair is owned by the worker owning its start. After the seal,
 * a start fed later replaces the armed start but is marked foreign, and a
 * stop counts only against an owned start. This equals the serial result
 * when start and stop have the same delay; with different delays an event
 * from the previous section can fall between, so the run driver keeps such
 * configurations serial (weir_tinstr_parallel_ok). */
#include "instr_impl.h"

#include "weir/error.h"

#include <stdio.h>

typedef struct {
    ti_seq A, B;
    int64_t dA, dB;
    uint64_t ia, ib;           /* next unprocessed (absolute) */
    uint64_t a_owned, b_owned; /* ends at the seal */
    int64_t hz_a, hz_b;        /* stream known below */
    int armed;
    int64_t t_start;
    int start_owned;
    int multi;
} sstop;

int ti_ss_init(weir_tinstr *t, char *err, size_t errlen)
{
    const weir_tinstr_config *c = &t->cfg;
    if (c->start == WEIR_TI_NOCH || c->stop == WEIR_TI_NOCH || c->start == c->stop) {
        snprintf(err, errlen, "%s needs distinct start and stop channels",
                 c->kind == WEIR_TI_LIFETIME ? "a T2 lifetime (sync, photon)" : "start-stop");
        return WEIR_EPARAM;
    }
    if (c->nbins == 0) {
        snprintf(err, errlen, "at least one bin is needed");
        return WEIR_EPARAM;
    }
    sstop *k = calloc(1, sizeof *k);
    if (!k) return WEIR_ENOMEM;
    t->impl = k;
    k->dA = ti_delay(c, c->start);
    k->dB = ti_delay(c, c->stop);
    k->hz_a = k->hz_b = INT64_MIN;
    k->multi = c->kind == WEIR_TI_LIFETIME;
    k->a_owned = k->b_owned = UINT64_MAX;
    return ti_hist_alloc(t, 1, c->nbins);
}

void ti_ss_free(weir_tinstr *t)
{
    sstop *k = t->impl;
    if (!k) return;
    ti_seq_free(&k->A);
    ti_seq_free(&k->B);
    free(k);
}

static void ss_process(weir_tinstr *t, int final)
{
    sstop *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    const uint64_t aend = ti_seq_end(&k->A), bend = ti_seq_end(&k->B);
    const int64_t limit = k->hz_a < k->hz_b ? k->hz_a : k->hz_b;
    for (;;) {
        int have_a = k->ia < aend, have_b = k->ib < bend;
        if (!have_a && !have_b) break;
        int64_t xa = have_a ? ti_seq_at(&k->A, k->ia) : INT64_MAX;
        int64_t xb = have_b ? ti_seq_at(&k->B, k->ib) : INT64_MAX;
        int take_a = have_a && xa <= xb;
        int64_t x = take_a ? xa : xb;
        if (!final && x >= limit) break;
        if (take_a) {
            k->armed = 1;
            k->t_start = x;
            k->start_owned = k->ia < k->a_owned;
            k->ia++;
        } else {
            if (k->armed && k->start_owned) {
                int64_t bin = ti_floordiv(x - k->t_start - c->lo_ps, c->bin_ps);
                if (bin >= 0 && bin < (int64_t)c->nbins) t->hist[bin]++;
            }
            if (!k->multi) k->armed = 0;
            k->ib++;
        }
    }
    ti_seq_drop(&k->A, k->ia);
    ti_seq_drop(&k->B, k->ib);
}

int ti_ss_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    sstop *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    if (ti_seq_reserve(&k->A, n) || ti_seq_reserve(&k->B, n)) return WEIR_ENOMEM;
    int64_t prev = ev[0].time;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        if (e->time < prev) return WEIR_ERANGE;
        prev = e->time;
        if (e->kind == WEIR_TAG_MARKER) continue;
        if (e->channel == c->start) {
            k->A.v[k->A.n++] = e->time + k->dA;
            t->events++;
        } else if (e->channel == c->stop) {
            k->B.v[k->B.n++] = e->time + k->dB;
            t->events++;
        }
    }
    k->hz_a = ev[n - 1].time + k->dA;
    k->hz_b = ev[n - 1].time + k->dB;
    ss_process(t, 0);
    return 0;
}

int ti_ss_finish(weir_tinstr *t)
{
    ss_process(t, 1);
    return 0;
}

void ti_ss_seal(weir_tinstr *t)
{
    sstop *k = t->impl;
    k->a_owned = ti_seq_end(&k->A);
    k->b_owned = ti_seq_end(&k->B);
}

int64_t ti_ss_reach(const weir_tinstr *t)
{
    const sstop *k = t->impl;
    int64_t hi = t->cfg.lo_ps + (int64_t)t->cfg.nbins * t->cfg.bin_ps;
    if (hi < 0) hi = 0;
    int64_t d = k->dA - k->dB;
    return hi + (d < 0 ? -d : d) + 1;
}

void ti_ss_save(const weir_tinstr *t, ti_wbuf *w)
{
    const sstop *k = t->impl;
    ti_seq_save(w, &k->A);
    ti_seq_save(w, &k->B);
    ti_put_u64(w, k->ia);
    ti_put_u64(w, k->ib);
    ti_put_u64(w, k->a_owned);
    ti_put_u64(w, k->b_owned);
    ti_put_i64(w, k->hz_a);
    ti_put_i64(w, k->hz_b);
    ti_put_i64(w, k->armed);
    ti_put_i64(w, k->t_start);
    ti_put_i64(w, k->start_owned);
}

int ti_ss_load(weir_tinstr *t, ti_rbuf *r)
{
    sstop *k = t->impl;
    int rc = ti_seq_load(r, &k->A);
    if (!rc) rc = ti_seq_load(r, &k->B);
    if (rc) return rc;
    k->ia = ti_get_u64(r);
    k->ib = ti_get_u64(r);
    k->a_owned = ti_get_u64(r);
    k->b_owned = ti_get_u64(r);
    k->hz_a = ti_get_i64(r);
    k->hz_b = ti_get_i64(r);
    k->armed = (int)ti_get_i64(r);
    k->t_start = ti_get_i64(r);
    k->start_owned = (int)ti_get_i64(r);
    if (k->ia < k->A.base || k->ia > ti_seq_end(&k->A) || k->ib < k->B.base ||
        k->ib > ti_seq_end(&k->B))
        return WEIR_EFORMAT;
    return r->err ? WEIR_EFORMAT : 0;
}

const ti_ops ti_startstop_ops = {ti_ss_init,  ti_ss_feed, ti_ss_finish, ti_ss_seal,
                                 ti_ss_reach, ti_ss_save, ti_ss_load,   ti_ss_free};
