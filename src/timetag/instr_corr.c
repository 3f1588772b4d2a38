/* instr_corr.c — the full correlation histogram (g2 / HBT), exact and fast.
 *
 * Every start event a (channel `start`, time ta + delay) is paired with
 * every stop event b (channel `stop`, time tb + delay) whose delay
 * tau = tb' - ta' falls in [lo, lo + nbins*bin); bin = floor((tau-lo)/bin).
 * lo may be negative, so one histogram holds both directions. Nothing is
 * lost: no ring capacity, no skipped slot, the last event counts.
 *
 * How: the delayed start times and stop times are two sorted sequences
 * (delays are constant per channel). For each stop b the matching starts
 * form a window (b - hi, b - lo] of the start sequence, whose two ends only
 * move forward as b grows — two pointers, O(1) amortised per event plus one
 * increment per pair. A stop is processed once every start up to b - lo is
 * known: after a chunk ending at raw time T, all starts with delayed time
 * < T + delay(start) are known (later chunks may still hold events at T).
 * The sequences grow as needed and drop only what no pending stop can
 * reach. Within the window, tau - lo is known to be in [0, nbins*bin), so
 * the bin is an unsigned floor division without range checks: a shift for
 * power-of-two widths, otherwise a multiply by a precomputed reciprocal
 * with one exact correction step (ti_div).
 *
 * Sections (weir_tinstr_seal): after the seal, a stop pairs only with starts
 * fed before the seal, and starts fed after it reach only stops fed before
 * it (they pair with owned stops through those stops' windows), so a pair
 * is counted by the worker owning its earlier event.
 *
 * start == stop (autocorrelation) pairs distinct events only.
 *
 * ETA compatibility (eta_compat): an emulation of ETA's CLOCK(c,N,1) start
 * ring and record_all — N slots holding N-1 starts (the oldest dropped when
 * full), walked newest to oldest with a break at the first bin >= nbins, and,
 * once the ring has wrapped with head >= 1, slot 0 never visited (eta.md
 * §1.6). Events are taken in the order given (ETA does not sort), and the
 * last event of the stream is dropped, as ETA's delay-line copy of the final
 * record is still pending when the source ends. extra[0] counts the pairs
 * the skipped slot 0 held within the histogram range. */
#include "instr_impl.h"

#include "weir/error.h"

#include <stdio.h>

typedef struct {
    ti_seq A, B; /* delayed start / stop times (B unused when same) */
    int same;
    int64_t dA, dB, lo, hi;
    ti_div div;
    uint64_t ia_lo, ia_hi, ib; /* absolute indices */
    uint64_t a_owned, b_owned; /* sequence ends at the seal */
    int64_t horizon;           /* starts with delayed time < horizon are known */
    int64_t self_bin;          /* autocorrelation: bin of tau = 0, or -1 */
    /* ETA emulation */
    int64_t *ring;
    uint64_t nstarts; /* appends so far (head = nstarts % N) */
    int held;         /* one event held back (dropped at finish) */
    weir_tag held_ev;
} corr;

static int corr_init(weir_tinstr *t, char *err, size_t errlen)
{
    const weir_tinstr_config *c = &t->cfg;
    if (c->start == WEIR_TI_NOCH || c->stop == WEIR_TI_NOCH) {
        snprintf(err, errlen, "correlation needs a start and a stop channel");
        return WEIR_EPARAM;
    }
    if (c->nbins == 0) {
        snprintf(err, errlen, "correlation needs at least one bin");
        return WEIR_EPARAM;
    }
    corr *k = calloc(1, sizeof *k);
    if (!k) return WEIR_ENOMEM;
    t->impl = k;
    k->same = c->start == c->stop;
    k->dA = ti_delay(c, c->start);
    k->dB = ti_delay(c, c->stop);
    k->lo = c->lo_ps;
    k->hi = c->lo_ps + (int64_t)c->nbins * c->bin_ps;
    ti_div_init(&k->div, (uint64_t)c->bin_ps);
    k->horizon = INT64_MIN;
    k->self_bin = -1;
    if (k->same && k->lo <= 0 && k->hi > 0) k->self_bin = (0 - k->lo) / c->bin_ps;
    if (c->eta_compat) {
        k->ring = calloc(c->eta_clock, sizeof *k->ring);
        if (!k->ring) return WEIR_ENOMEM;
    }
    return ti_hist_alloc(t, 1, c->nbins);
}

static void corr_free(weir_tinstr *t)
{
    corr *k = t->impl;
    if (!k) return;
    ti_seq_free(&k->A);
    ti_seq_free(&k->B);
    free(k->ring);
    free(k);
}

/* Processes every stop whose window is complete (all stops when final).
 * Everything the loop reads is copied into locals and the histogram is a
 * restrict pointer: the uint64 histogram stores could otherwise alias the
 * int64 time sequences and force reloads on every pair. */
static void corr_process(weir_tinstr *t, int final)
{
    corr *k = t->impl;
    ti_seq *A = &k->A, *B = k->same ? &k->A : &k->B;
    uint64_t *restrict h = t->hist;
    const ti_div dv = k->div;
    const int64_t lo = k->lo, hi = k->hi;
    const int64_t horizon = final ? INT64_MAX : k->horizon;
    const int64_t self_bin = k->self_bin;
    const uint64_t aend = ti_seq_end(A), bend = ti_seq_end(B);
    const uint64_t b_owned = t->sealed ? k->b_owned : UINT64_MAX;
    const uint64_t a_owned = t->sealed ? k->a_owned : UINT64_MAX;
    const uint64_t abase = A->base, bbase = B->base;
    const int64_t *restrict av = A->v - 0;
    const int64_t *restrict bv = B->v;
    uint64_t ia_lo = k->ia_lo, ia_hi = k->ia_hi, ib = k->ib;
    uint64_t self = 0;
    /* relative indices into av */
    uint64_t rlo = ia_lo - abase, rhi = ia_hi - abase;
    const uint64_t raend = aend - abase;
    const uint64_t ra_owned = a_owned < aend ? a_owned - abase : raend;

    for (; ib < bend; ib++) {
        const int64_t b = bv[ib - bbase];
        const int foreign = ib >= b_owned;
        const int64_t bl = b - lo, bh = b - hi;
        if (bl >= horizon && !foreign) break;
        while (rlo < raend && av[rlo] <= bh)
            rlo++;
        if (rhi < rlo) rhi = rlo;
        const uint64_t top = foreign ? ra_owned : raend;
        while (rhi < top && av[rhi] <= bl)
            rhi++;
        const uint64_t end = rhi < top ? rhi : top;
        if (dv.shift >= 0) {
            const int sh = dv.shift;
            for (uint64_t i = rlo; i < end; i++)
                h[(uint64_t)(bl - av[i]) >> sh]++;
        } else {
            for (uint64_t i = rlo; i < end; i++)
                h[ti_div_do(&dv, (uint64_t)(bl - av[i]))]++;
        }
        if (self_bin >= 0) self += (ib - abase >= rlo && ib - abase < end);
    }
    if (self) h[self_bin] -= self;
    ia_lo = rlo + abase;
    ia_hi = rhi + abase;
    k->ia_lo = ia_lo;
    k->ia_hi = ia_hi;
    k->ib = ib;
    uint64_t keep_a = ia_lo;
    if (k->same && ib < keep_a) keep_a = ib;
    ti_seq_drop(A, keep_a);
    if (!k->same) ti_seq_drop(B, ib);
}

/* ---- ETA emulation ---- */

static void eta_event(weir_tinstr *t, const weir_tag *e)
{
    corr *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    if (e->kind == WEIR_TAG_MARKER) return;
    const uint64_t S = c->eta_clock;
    /* ETA's VIs see the start copy before the stop copy only through the
     * merge; with start == stop there is one stream, handled as both. */
    if (e->channel == c->stop) {
        t->events++;
        const int64_t stop = e->time + k->dB;
        const uint64_t n = k->nstarts, head = n % S;
        const uint64_t tail = n < S ? 0 : (head + 1) % S;
        const int64_t w = c->bin_ps, nb = c->nbins;
        uint64_t *h = t->hist;
#define ETA_VISIT(i)                                                                               \
    {                                                                                              \
        int64_t bin_ = ti_floordiv(stop - k->ring[i] - k->lo, w);                                  \
        if (bin_ >= nb) break;                                                                     \
        if (bin_ >= 0) h[bin_]++;                                                                  \
    }
        if (tail < head) {
            for (int64_t i = (int64_t)head - 1; i >= (int64_t)tail; i--)
                ETA_VISIT(i);
        } else if (tail > head) {
            for (int64_t i = (int64_t)head - 1; i > 0; i--)
                ETA_VISIT(i);
            for (int64_t i = (int64_t)S - 1; i >= (int64_t)tail; i--)
                ETA_VISIT(i);
            if (head >= 1) { /* slot 0 holds a start ETA never looks at */
                int64_t bin = ti_floordiv(stop - k->ring[0] - k->lo, w);
                if (bin >= 0 && bin < nb) t->extra[0]++;
            }
        }
#undef ETA_VISIT
    }
    if (e->channel == c->start) {
        if (!k->same) t->events++;
        k->ring[k->nstarts % S] = e->time + k->dA;
        k->nstarts++;
    }
}

static int corr_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    corr *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    if (c->eta_compat) {
        for (size_t i = 0; i < n; i++) {
            if (k->held) eta_event(t, &k->held_ev);
            k->held_ev = ev[i];
            k->held = 1;
        }
        return 0;
    }
    /* With start == stop the stop writes go to the unused k->B and are
     * never kept (cb matches nothing). */
    ti_seq *A = &k->A, *B = &k->B;
    if (ti_seq_reserve(A, n) || ti_seq_reserve(B, n)) return WEIR_ENOMEM;
    const int16_t ca = c->start, cb = k->same ? INT16_MIN : c->stop;
    const int64_t dA = k->dA, dB = k->dB;
    int64_t *av = A->v, *bv = B->v;
    size_t na = A->n, nb = B->n;
    int64_t prev = ev[0].time;
    int bad = 0;
    /* Branch-light split: write both, advance by the match flags. */
    for (size_t i = 0; i < n; i++) {
        const int64_t tm = ev[i].time;
        const int16_t ch = ev[i].channel;
        const int real = ev[i].kind != WEIR_TAG_MARKER;
        bad |= tm < prev;
        prev = tm;
        av[na] = tm + dA;
        na += (ch == ca) & real;
        bv[nb] = tm + dB;
        nb += (ch == cb) & real;
    }
    if (bad) return WEIR_ERANGE;
    t->events += (na - A->n) + (k->same ? 0 : nb - B->n);
    A->n = na;
    if (!k->same) B->n = nb;
    k->horizon = ev[n - 1].time + dA;
    corr_process(t, 0);
    return 0;
}

static int corr_finish(weir_tinstr *t)
{
    corr *k = t->impl;
    if (t->cfg.eta_compat) {
        k->held = 0; /* ETA never processes the final record's copy */
        return 0;
    }
    corr_process(t, 1);
    return 0;
}

static int64_t corr_reach(const weir_tinstr *t)
{
    const corr *k = t->impl;
    int64_t m = k->hi > -k->lo ? k->hi : -k->lo;
    int64_t d = k->dA - k->dB;
    return m + (d < 0 ? -d : d) + 1;
}

/* The seal records where the owned events end. */
static void corr_note_seal(weir_tinstr *t)
{
    corr *k = t->impl;
    k->a_owned = ti_seq_end(&k->A);
    k->b_owned = ti_seq_end(k->same ? &k->A : &k->B);
}

static void corr_save(const weir_tinstr *t, ti_wbuf *w)
{
    const corr *k = t->impl;
    ti_seq_save(w, &k->A);
    ti_seq_save(w, &k->B);
    ti_put_u64(w, k->ia_lo);
    ti_put_u64(w, k->ia_hi);
    ti_put_u64(w, k->ib);
    ti_put_u64(w, k->a_owned);
    ti_put_u64(w, k->b_owned);
    ti_put_i64(w, k->horizon);
    ti_put_u64(w, k->nstarts);
    ti_put_i64(w, k->held);
    ti_put_i64(w, k->held_ev.time);
    ti_put_i64(w, k->held_ev.micro);
    ti_put_i64(w, k->held_ev.channel);
    ti_put_i64(w, k->held_ev.kind);
    ti_put_i64(w, k->held_ev.bits);
    if (k->ring)
        for (uint32_t i = 0; i < t->cfg.eta_clock; i++)
            ti_put_i64(w, k->ring[i]);
}

static int corr_load(weir_tinstr *t, ti_rbuf *r)
{
    corr *k = t->impl;
    int rc = ti_seq_load(r, &k->A);
    if (!rc) rc = ti_seq_load(r, &k->B);
    if (rc) return rc;
    k->ia_lo = ti_get_u64(r);
    k->ia_hi = ti_get_u64(r);
    k->ib = ti_get_u64(r);
    k->a_owned = ti_get_u64(r);
    k->b_owned = ti_get_u64(r);
    k->horizon = ti_get_i64(r);
    k->nstarts = ti_get_u64(r);
    k->held = (int)ti_get_i64(r);
    k->held_ev.time = ti_get_i64(r);
    k->held_ev.micro = (int32_t)ti_get_i64(r);
    k->held_ev.channel = (int16_t)ti_get_i64(r);
    k->held_ev.kind = (uint8_t)ti_get_i64(r);
    k->held_ev.bits = (uint8_t)ti_get_i64(r);
    if (k->ring)
        for (uint32_t i = 0; i < t->cfg.eta_clock; i++)
            k->ring[i] = ti_get_i64(r);
    /* Indices must lie inside the restored sequences. */
    const ti_seq *B = k->same ? &k->A : &k->B;
    if (k->ia_lo < k->A.base || k->ia_hi < k->A.base || k->ia_lo > ti_seq_end(&k->A) ||
        k->ia_hi > ti_seq_end(&k->A) || k->ib < B->base || k->ib > ti_seq_end(B))
        return WEIR_EFORMAT;
    return r->err ? WEIR_EFORMAT : 0;
}

const ti_ops ti_corr_ops = {corr_init,  corr_feed, corr_finish, corr_note_seal,
                            corr_reach, corr_save, corr_load,   corr_free};
