/* instr_corr_impl.h — the correlation fast path's kernels, shared by the
 * scalar code (instr_corr.c) and the AVX2 variants (instr_corr_avx2.c),
 * which instr_corr.c selects at run time. Not installed. */
#ifndef WEIR_INSTR_CORR_IMPL_H
#define WEIR_INSTR_CORR_IMPL_H

#include "instr_impl.h"

#include "tags_internal.h"

#define TI_ALWAYS_INLINE inline __attribute__((always_inline))

/* Slack past the end of the time and rank arrays of a split: the AVX2 split
 * stores whole vectors (up to 8 entries past the last one kept). */
#define TI_SPLIT_SLACK 8

/* State of one split of raw HydraHarp T2 records (ti_corr_fused): every
 * event is written to both time arrays (av, bv) and each advances by its
 * match flag; ra / rb get the event's rank (events of the other channel
 * before it). */
typedef struct {
    const uint8_t *side; /* photon channel field -> bit 0 start, bit 1 stop */
    uint8_t sync_side;
    int ca1, cb1; /* channel field of start / stop photons, -1 when none */
    uint64_t tps, wrap;
    int v1;
    int64_t *av, *bv;
    uint32_t *ra, *rb;
    size_t na0, nb0;
    /* in/out */
    uint64_t base; /* ticks before the next record */
    int64_t prev;  /* time of the last event */
    size_t na, nb;
    int bad; /* time ran backwards */
    weir_tag_counts c;
    uint64_t special; /* records with the special bit */
} ti_split;

/* One record, exactly as dec_hht2 in ptu.c decodes it. */
static TI_ALWAYS_INLINE void ti_split_one(ti_split *s, uint32_t w)
{
    const uint64_t tt = w & 0x1FFFFFFu;
    const unsigned ch = (w >> 25) & 63u;
    unsigned sd = s->side[ch];
    if (__builtin_expect(w >> 31, 0)) {
        s->special++;
        if (ch == 63) {
            const uint64_t n = s->v1 ? 1 : (tt ? tt : 1);
            s->base += n * s->wrap;
            s->c.overflows++;
            s->c.overflow_wraps += n;
            return;
        }
        if (ch > 15) {
            s->c.errors++;
            return;
        }
        sd = ch == 0 ? s->sync_side : 0; /* markers never pair */
        s->c.syncs += ch == 0;
        s->c.markers += ch != 0;
    }
    const int64_t tm = (int64_t)((s->base + tt) * s->tps);
    s->bad |= tm < s->prev;
    s->prev = tm;
    s->av[s->na] = tm;
    s->ra[s->na - s->na0] = (uint32_t)s->nb;
    s->na += sd & 1;
    s->bv[s->nb] = tm;
    s->rb[s->nb - s->nb0] = (uint32_t)s->na;
    s->nb += sd >> 1;
}

/* The scalar split loop, with s copied into locals so its fields live in
 * registers. */
static TI_ALWAYS_INLINE void ti_split_run(ti_split *sp, const uint8_t *restrict p, uint64_t m)
{
    ti_split s = *sp;
    for (uint64_t i = 0; i < m; i++)
        ti_split_one(&s, tagi_u32(p + 4 * i));
    *sp = s;
}

/* (tau - lo) of a pair, from the later event's key and the earlier event
 * x: a stop's key is b + nlo (value key - a), a start's key is a - nlo
 * (value b - key). Out-of-range pairs give values >= nbins * bin (small
 * negatives wrap to huge), so the bin index alone says "out of range". */
static TI_ALWAYS_INLINE uint64_t fast_val(uint64_t key, int64_t x, const int stop)
{
    return stop ? key - (uint64_t)x : (uint64_t)x - key;
}

static TI_ALWAYS_INLINE uint64_t fast_bin(const ti_div *dv, uint64_t v, const int pow2)
{
    return pow2 ? v >> dv->shift : ti_div_do(dv, v);
}

/* Look-back for one direction: q[0..nq) are the later events, rank[i] the
 * index in x just past the other-channel events before q[i]. The two most
 * recent candidates are binned unconditionally (out-of-range ones into the
 * spare counters past the histogram), a third only looked at when the
 * second was in range. */
static TI_ALWAYS_INLINE void fast_lookback(uint64_t *restrict h, uint64_t nbins, const ti_div *dv,
                                           uint64_t nlo, const int64_t *restrict q, size_t nq,
                                           const uint32_t *restrict rank, const int64_t *restrict x,
                                           const int stop, const int pow2)
{
    for (size_t i = 0; i < nq; i++) {
        const uint64_t r = rank[i];
        const uint64_t key = stop ? (uint64_t)q[i] + nlo : (uint64_t)q[i] - nlo;
        const uint64_t sink = nbins + ((i & 7) << 2);
        uint64_t b0 = fast_bin(dv, fast_val(key, x[r - 1], stop), pow2);
        uint64_t b1 = fast_bin(dv, fast_val(key, x[r - 2], stop), pow2);
        b0 = b0 < sink ? b0 : sink;
        b1 = b1 < sink + 1 ? b1 : sink + 1;
        h[b0]++;
        h[b1]++;
        if (__builtin_expect(fast_bin(dv, fast_val(key, x[r - 3], stop), pow2) < nbins, 0)) {
            for (uint64_t j = r - 3;; j--) {
                const uint64_t b = fast_bin(dv, fast_val(key, x[j], stop), pow2);
                if (b >= nbins) break;
                h[b]++;
            }
        }
    }
}

/* ---- AVX2 variants (instr_corr_avx2.c); call only when the CPU has AVX2 ---- */
#if defined(__x86_64__) && defined(__GNUC__) /* 64-bit lane extracts: x86-64 only */
#define TI_HAVE_AVX2 1
/* Same result as ti_split_run; needs TI_SPLIT_SLACK spare entries past the
 * arrays' ends and s->tps <= UINT32_MAX. */
void ti_split_run_avx2(ti_split *s, const uint8_t *p, uint64_t m);
/* Same result as fast_lookback with a power-of-two width (shift). */
void ti_lookback_pow2_avx2(uint64_t *h, uint64_t nbins, const ti_div *dv, uint64_t nlo,
                           const int64_t *q, size_t nq, const uint32_t *rank, const int64_t *x,
                           int stop);
#endif

#endif
