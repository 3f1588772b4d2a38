/* instr_corr.c — the full correlation histogram (g2 / HBT), exact and fast.
 *
 * Every start event a (channel `start`, time ta + delay) is paired with
 * every stop event b (channel `stop`, time tb + delay) whose delay
 * tau = tb' - ta' falls in [lo, lo + nbins*bin); bin = floor((tau-lo)/bin).
 * lo may be negative, so one histogram holds both directions. Nothing is
 * lost: no ring capacity, no skipped slot, the last event counts.
 *
 * Fast path (every window that holds tau = 0 once the delays are folded in,
 * start != stop; the bench and most g2 work). tau = (b - a) - (dA - dB),
 * so in raw time the window is r = b - a in [LO, HI) with LO <= 0 < HI.
 * Each pair is then counted when its later event arrives, against the
 * events of the other channel seen before it: a stop b pairs with every
 * earlier start a with b - a < HI, a start a with every earlier stop b
 * with a - b <= -LO. No event waits, so the input's own time order is the
 * merge, ties included (stream order decides who is "earlier"). Per chunk
 * of up to 16 Ki events:
 *   1. split, branch-free: every event is written to both time arrays and
 *      each array advances by its match flag; an event's "rank" (how many
 *      events of the other channel precede it) is written alongside;
 *   2. for each event, the two most recent events of the other channel
 *      before its rank are binned without a test: the bin index
 *      ((b - a) - LO) / bin is >= nbins exactly when the pair is out of
 *      range, and min(index, sink) sends those to spare counters past the
 *      histogram (TI_HIST_SINK, rotated so no single counter is a chain);
 *      a third candidate is only examined when the second is in range
 *      (about 5 % of events at 5 MHz and +-160 ns).
 * At 5 MHz per channel and a 160 ns reach an event has 0.8 partners on
 * average, so the data-dependent loops of a window walk (and their branch
 * mispredicts) cost more than the pairs: this layout has none in the
 * common case. run_file also feeds raw HydraHarp T2 records straight into
 * step 1 (ti_corr_fused), skipping the weir_tag form. Times are kept with
 * four old entries (or sentinels) in front of every rank so the
 * unconditional loads stay inside the arrays; chunks whose times leave
 * +-2^61 ps, and lead-out after a seal, go event by event (slow_event).
 * Steps 1 (raw HydraHarp records) and 2 (power-of-two widths) have AVX2
 * versions (instr_corr_avx2.c), used when the CPU has AVX2 unless
 * WEIR_TAGS_SIMD=scalar; the scalar kernels are in instr_corr_impl.h.
 *
 * General path (one-sided windows, autocorrelation): the delayed start
 * times and stop times are two sorted sequences
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
#include "instr_corr_impl.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_PAD 4                          /* entries kept before every rank */
#define FAST_SENTINEL (-((int64_t)1 << 62)) /* an event too old to pair with anything */
#define FAST_TIME_MAX ((int64_t)1 << 61)    /* fast chunks have |time| <= this */
#define FAST_CHUNK 16384                    /* events per split (L2-sized arrays) */

typedef struct {
    ti_seq A, B; /* delayed start / stop times (B unused when same) */
    int same;
    int64_t dA, dB, lo, hi;
    ti_div div;
    uint64_t ia_lo, ia_hi, ib; /* absolute indices */
    uint64_t a_owned, b_owned; /* sequence ends at the seal */
    int64_t horizon;           /* starts with delayed time < horizon are known */
    int64_t self_bin;          /* autocorrelation: bin of tau = 0, or -1 */
    /* fast path: A/B hold raw times of recent starts/stops */
    int fast, wild;          /* wild: a time left +-2^61 ps; event by event from then on */
    uint64_t nlo;            /* -LO */
    uint64_t reach_b;        /* a stop b pairs with earlier starts a with b - a < reach_b (HI) */
    uint64_t live_a, live_b; /* absolute index of the first entry still in reach */
    uint64_t real_a, real_b; /* absolute index of the first real (non-sentinel) entry */
    uint32_t *rank;          /* scratch: ranks of the chunk's events */
    int simd;                /* 1: AVX2 kernels (CPU has AVX2, WEIR_TAGS_SIMD not "scalar") */
    size_t rank_cap;
    /* ETA emulation */
    int64_t *ring;
    uint64_t nstarts; /* appends so far (head = nstarts % N) */
    int held;         /* one event held back (dropped at finish) */
    weir_tag held_ev;
} corr;

/* The AVX2 kernels are used when the CPU has AVX2, unless the environment
 * variable WEIR_TAGS_SIMD is "scalar" (read when an instrument is created;
 * the tests run both). */
static int ti_corr_simd_default(void)
{
#ifdef TI_HAVE_AVX2
    const char *e = getenv("WEIR_TAGS_SIMD");
    if (e && !strcmp(e, "scalar")) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

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
    /* Fast path: window holding raw difference 0, every bound well inside
     * int64 (|LO|, |HI| < 2^59) so no sum below can wrap. */
    const int64_t lim = (int64_t)1 << 58;
    const int64_t D = k->dA - k->dB;
    if (!c->eta_compat && !k->same && k->lo > -lim && k->hi < lim && D > -lim && D < lim) {
        const int64_t LO = k->lo + D, HI = k->hi + D;
        if (LO <= 0 && HI > 0) {
            k->fast = 1;
            k->simd = ti_corr_simd_default();
            k->nlo = (uint64_t)-LO;
            k->reach_b = (uint64_t)HI;
            if (ti_seq_reserve(&k->A, FAST_PAD) || ti_seq_reserve(&k->B, FAST_PAD))
                return WEIR_ENOMEM;
            for (int i = 0; i < FAST_PAD; i++)
                k->A.v[i] = k->B.v[i] = FAST_SENTINEL;
            k->A.n = k->B.n = FAST_PAD;
            k->live_a = k->live_b = k->real_a = k->real_b = FAST_PAD;
        }
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
    free(k->rank);
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

/* ---- fast path ---- */

/* One event, the careful way: pairs with every earlier event of the other
 * channel in reach (newest first, stopping at the first out of reach or at
 * the sentinels), then joins its own array unless it is lead-out. Used for
 * lead-out, for chunks with extreme times and after them. */
static int slow_event(weir_tinstr *t, int64_t tm, int is_stop, int append)
{
    corr *k = t->impl;
    uint64_t *h = t->hist;
    const ti_div dv = k->div;
    const ti_seq *O = is_stop ? &k->A : &k->B;
    const uint64_t real = is_stop ? k->real_a : k->real_b;
    const uint64_t first = real > O->base ? real : O->base;
    for (uint64_t j = ti_seq_end(O); j-- > first;) {
        const uint64_t u = (uint64_t)tm - (uint64_t)ti_seq_at(O, j); /* exact: x came first */
        if (is_stop) {
            if (u >= k->reach_b) break;
            h[ti_div_do(&dv, u + k->nlo)]++;
        } else {
            if (u > k->nlo) break;
            h[ti_div_do(&dv, k->nlo - u)]++;
        }
    }
    if (!append) return 0;
    ti_seq *S = is_stop ? &k->B : &k->A;
    if (ti_seq_reserve(S, 1)) return WEIR_ENOMEM;
    S->v[S->n++] = tm;
    return 0;
}

static void fast_pairs_pow2(uint64_t *restrict h, uint64_t nbins, const ti_div *dv, uint64_t nlo,
                            const int64_t *restrict q, size_t nq, const uint32_t *restrict rank,
                            const int64_t *restrict x, int stop)
{
    if (stop)
        fast_lookback(h, nbins, dv, nlo, q, nq, rank, x, 1, 1);
    else
        fast_lookback(h, nbins, dv, nlo, q, nq, rank, x, 0, 1);
}

static void fast_pairs_div(uint64_t *restrict h, uint64_t nbins, const ti_div *dv, uint64_t nlo,
                           const int64_t *restrict q, size_t nq, const uint32_t *restrict rank,
                           const int64_t *restrict x, int stop)
{
    if (stop)
        fast_lookback(h, nbins, dv, nlo, q, nq, rank, x, 1, 0);
    else
        fast_lookback(h, nbins, dv, nlo, q, nq, rank, x, 0, 0);
}

/* Room for a split of n events: both arrays and the ranks (the stops'
 * ranks start at k->rank + n + TI_SPLIT_SLACK), with TI_SPLIT_SLACK spare
 * entries past each for the AVX2 split's whole-vector stores. */
static int fast_reserve(corr *k, size_t n)
{
    if (ti_seq_reserve(&k->A, n + TI_SPLIT_SLACK) || ti_seq_reserve(&k->B, n + TI_SPLIT_SLACK))
        return WEIR_ENOMEM;
    const size_t need = 2 * (n + TI_SPLIT_SLACK);
    if (k->rank_cap < need) {
        uint32_t *r = realloc(k->rank, need * sizeof *r);
        if (!r) return WEIR_ENOMEM;
        k->rank = r;
        k->rank_cap = need;
    }
    return 0;
}

/* Forgets what no later event can reach once time has got to `now`,
 * keeping FAST_PAD entries before the first one still in reach. */
static void fast_trim(corr *k, int64_t now)
{
    ti_seq *S[2] = {&k->A, &k->B};
    uint64_t *live[2] = {&k->live_a, &k->live_b};
    /* later stops reach starts with now - a < reach_b; later starts reach
     * stops with now - b <= nlo */
    const uint64_t reach[2] = {k->reach_b, k->nlo + 1};
    for (int s = 0; s < 2; s++) {
        uint64_t j = *live[s];
        const uint64_t end = ti_seq_end(S[s]);
        while (j < end && (uint64_t)now - (uint64_t)ti_seq_at(S[s], j) >= reach[s])
            j++;
        *live[s] = j;
        if (j >= S[s]->base + FAST_PAD) ti_seq_drop(S[s], j - FAST_PAD);
    }
}

/* Steps 1-2 after a split: A and B grew from na0/nb0 (array indices) to
 * their ends; ranks of the new starts are in k->rank, of the new stops at
 * k->rank + (na - na0). */
static void fast_count(weir_tinstr *t, size_t na0, size_t nb0)
{
    corr *k = t->impl;
    const size_t nna = k->A.n - na0, nnb = k->B.n - nb0;
    void (*pairs)(uint64_t *restrict, uint64_t, const ti_div *, uint64_t, const int64_t *restrict,
                  size_t, const uint32_t *restrict, const int64_t *restrict, int) =
        k->div.shift >= 0 ? fast_pairs_pow2 : fast_pairs_div;
#ifdef TI_HAVE_AVX2
    if (k->simd && k->div.shift >= 0) pairs = ti_lookback_pow2_avx2;
#endif
    pairs(t->hist, t->nbins, &k->div, k->nlo, k->B.v + nb0, nnb, k->rank + nna, k->A.v, 1);
    pairs(t->hist, t->nbins, &k->div, k->nlo, k->A.v + na0, nna, k->rank, k->B.v, 0);
    t->events += nna + nnb;
}

/* Feeds weir_tag events to the fast path. */
static int fast_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    corr *k = t->impl;
    const int16_t ca = t->cfg.start, cb = t->cfg.stop;
    int64_t prev = t->have_last ? t->last_raw : INT64_MIN;
    /* the core refuses chunks that start before the last one ended; the
     * whole chunk is checked before anything is counted */
    for (size_t i = 0; i < n; i++) {
        if (ev[i].time < prev) return WEIR_ERANGE;
        prev = ev[i].time;
    }
    for (size_t c0 = 0; c0 < n; c0 += FAST_CHUNK) {
        const size_t m = n - c0 < FAST_CHUNK ? n - c0 : FAST_CHUNK;
        const weir_tag *e = ev + c0;
        const int wild = k->wild || t->sealed || e[0].time < -FAST_TIME_MAX ||
                         e[m - 1].time > FAST_TIME_MAX || k->A.n + m > UINT32_MAX - 2 ||
                         k->B.n + m > UINT32_MAX - 2;
        if (wild) {
            if (!t->sealed) k->wild = 1;
            for (size_t i = 0; i < m; i++) {
                if (e[i].kind == WEIR_TAG_MARKER) continue;
                const int a = e[i].channel == ca, b = e[i].channel == cb;
                if (!a && !b) continue;
                t->events++;
                if (slow_event(t, e[i].time, b, !t->sealed)) return WEIR_ENOMEM;
            }
            continue;
        }
        if (fast_reserve(k, m)) return WEIR_ENOMEM;
        int64_t *restrict av = k->A.v, *restrict bv = k->B.v;
        uint32_t *restrict ra = k->rank, *restrict rb = k->rank + m + TI_SPLIT_SLACK;
        const size_t na0 = k->A.n, nb0 = k->B.n;
        size_t na = na0, nb = nb0;
        for (size_t i = 0; i < m; i++) {
            const int64_t tm = e[i].time;
            const int real = e[i].kind != WEIR_TAG_MARKER;
            const int16_t ch = e[i].channel;
            av[na] = tm;
            ra[na - na0] = (uint32_t)nb;
            na += (ch == ca) & real;
            bv[nb] = tm;
            rb[nb - nb0] = (uint32_t)na;
            nb += (ch == cb) & real;
        }
        k->A.n = na;
        k->B.n = nb;
        /* the stops' ranks follow the starts' in k->rank */
        memmove(k->rank + (na - na0), rb, (nb - nb0) * sizeof *rb);
        fast_count(t, na0, nb0);
    }
    fast_trim(k, ev[n - 1].time);
    return 0;
}

int ti_corr_fused_ok(const weir_tinstr *t, const weir_tag_reader *r)
{
    const corr *k = t->impl;
    tagi_hht2_view v;
    return t->cfg.kind == WEIR_TI_CORR && k->fast && !k->wild && !t->sealed && !t->finished &&
           t->cfg.gate_open == WEIR_TI_NOCH && tagi_hht2_get(r, &v);
}

long ti_corr_fused(weir_tinstr *t, weir_tag_reader *r, uint64_t max_records)
{
    corr *k = t->impl;
    tagi_hht2_view v;
    if (!ti_corr_fused_ok(t, r) || !tagi_hht2_get(r, &v)) return WEIR_EUNSUPPORTED;
    uint64_t m = v.lim - v.first;
    if (m > max_records) m = max_records;
    if (m > FAST_CHUNK) m = FAST_CHUNK;
    if (m == 0) return 0;
    if (k->A.n + m > UINT32_MAX - 2 || k->B.n + m > UINT32_MAX - 2) return WEIR_EUNSUPPORTED;
    if (fast_reserve(k, m)) return WEIR_ENOMEM;
    const int16_t ca = t->cfg.start, cb = t->cfg.stop;
    /* photon channel (input + 1) -> bit 0 start, bit 1 stop */
    uint8_t side[64];
    for (unsigned c = 0; c < 64; c++)
        side[c] = (uint8_t)(((int)c + 1 == ca) | (((int)c + 1 == cb) << 1));
    ti_split s = {0};
    s.side = side;
    s.sync_side = (uint8_t)((ca == 0) | ((cb == 0) << 1));
    s.ca1 = ca >= 1 && ca <= 64 ? ca - 1 : -1;
    s.cb1 = cb >= 1 && cb <= 64 ? cb - 1 : -1;
    s.tps = (uint64_t)v.tick_ps;
    s.wrap = (uint64_t)v.wrap;
    s.v1 = v.v1;
    s.av = k->A.v;
    s.bv = k->B.v;
    s.ra = k->rank;
    s.rb = k->rank + m + TI_SPLIT_SLACK;
    s.na0 = s.na = k->A.n;
    s.nb0 = s.nb = k->B.n;
    s.base = (uint64_t)v.tick_base;
    s.prev = t->have_last ? t->last_raw : INT64_MIN;
#ifdef TI_HAVE_AVX2
    if (k->simd && s.tps <= UINT32_MAX)
        ti_split_run_avx2(&s, v.rec, m);
    else
#endif
        ti_split_run(&s, v.rec, m);
    int64_t *av = k->A.v, *bv = k->B.v;
    const size_t na0 = s.na0, nb0 = s.nb0, na = s.na, nb = s.nb;
    const int64_t prev = s.prev;
    const int bad = s.bad;
    const uint64_t special = s.special;
    weir_tag_counts c = s.c;
    const uint64_t base = s.base;
    uint32_t *rb = s.rb;
    if (bad) return WEIR_ERANGE; /* nothing appended or counted; the reader stays */
    c.photons = m - special;
    const int any = c.photons + c.syncs + c.markers > 0;
    /* sorted, so the paired events' extremes are the arrays' ends */
    if ((na > na0 && (av[na0] < -FAST_TIME_MAX || av[na - 1] > FAST_TIME_MAX)) ||
        (nb > nb0 && (bv[nb0] < -FAST_TIME_MAX || bv[nb - 1] > FAST_TIME_MAX)))
        return WEIR_EUNSUPPORTED; /* extreme times: the caller decodes and feeds instead */
    k->A.n = na;
    k->B.n = nb;
    memmove(k->rank + (na - na0), rb, (nb - nb0) * sizeof *rb);
    fast_count(t, na0, nb0);
    if (any) {
        t->last_raw = prev;
        t->have_last = 1;
        fast_trim(k, prev);
    }
    tagi_hht2_commit(r, v.first + m, (int64_t)base, &c);
    return (long)m;
}

const char *weir_tinstr_kernels(const weir_tinstr *t)
{
    if (!t || t->cfg.kind != WEIR_TI_CORR || !t->impl) return "general";
    const corr *k = t->impl;
    if (!k->fast) return "general";
    return k->simd ? "avx2" : "scalar";
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
    if (k->fast) return fast_feed(t, ev, n);
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
    if (k->fast) return 0; /* every pair was counted when its later event came */
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
    /* fast path: ia_lo, ia_hi, ib, a_owned, b_owned hold live_a, live_b,
     * real_a, real_b and the wild flag */
    ti_put_u64(w, k->fast ? k->live_a : k->ia_lo);
    ti_put_u64(w, k->fast ? k->live_b : k->ia_hi);
    ti_put_u64(w, k->fast ? k->real_a : k->ib);
    ti_put_u64(w, k->fast ? k->real_b : k->a_owned);
    ti_put_u64(w, k->fast ? (uint64_t)k->wild : k->b_owned);
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
    if (k->fast) {
        k->live_a = k->ia_lo, k->live_b = k->ia_hi, k->real_a = k->ib, k->real_b = k->a_owned;
        k->wild = k->b_owned != 0;
        k->ia_lo = k->ia_hi = k->ib = k->a_owned = k->b_owned = 0;
        /* the unchecked look-back needs sorted times within +-2^61 ps: a
         * state that breaks this goes event by event (bounds-checked) */
        for (int s = 0; s < 2 && !k->wild; s++) {
            const ti_seq *S = s ? &k->B : &k->A;
            const uint64_t real = s ? k->real_b : k->real_a;
            for (uint64_t j = S->base; j < ti_seq_end(S) && !k->wild; j++) {
                const int64_t x = ti_seq_at(S, j);
                if (j < real ? x != FAST_SENTINEL
                             : x < -FAST_TIME_MAX || x > FAST_TIME_MAX ||
                                   (j > S->base && j > real && x < ti_seq_at(S, j - 1)))
                    k->wild = 1;
            }
        }
        /* live indices inside the sequences, and room for FAST_PAD before
         * every rank */
        if (k->live_a < k->A.base || k->live_a > ti_seq_end(&k->A) || k->live_b < k->B.base ||
            k->live_b > ti_seq_end(&k->B) || k->A.n < FAST_PAD || k->B.n < FAST_PAD)
            return WEIR_EFORMAT;
        return r->err ? WEIR_EFORMAT : 0;
    }
    /* Indices must lie inside the restored sequences. */
    const ti_seq *B = k->same ? &k->A : &k->B;
    if (k->ia_lo < k->A.base || k->ia_hi < k->A.base || k->ia_lo > ti_seq_end(&k->A) ||
        k->ia_hi > ti_seq_end(&k->A) || k->ib < B->base || k->ib > ti_seq_end(B))
        return WEIR_EFORMAT;
    return r->err ? WEIR_EFORMAT : 0;
}

const ti_ops ti_corr_ops = {corr_init,  corr_feed, corr_finish, corr_note_seal,
                            corr_reach, corr_save, corr_load,   corr_free};
