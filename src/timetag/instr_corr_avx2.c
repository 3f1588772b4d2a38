/* instr_corr_avx2.c — AVX2 kernels for the correlation fast path
 * (instr_corr.c), compiled with __attribute__((target("avx2"))) per
 * function so the default build needs no -mavx2; instr_corr.c calls them
 * only after __builtin_cpu_supports("avx2") said yes (and not when
 * WEIR_TAGS_SIMD=scalar). Both give exactly what the scalar kernels in
 * instr_corr_impl.h give.
 *
 * Split (ti_split_run_avx2): 8 HydraHarp T2 records per step. A step whose
 * records are all photons (no special bit: no overflow, sync or marker,
 * about 97 % of steps at 10 MHz) is decoded in vectors: channel field
 * compared with the start / stop channels gives two 8-bit masks, times are
 * base + tt * tick as two 4 x int64 vectors (checked against their
 * predecessors for order), and the compaction into the two time arrays uses
 * a permutation picked by the 4-bit half mask; ranks (other-channel events
 * before each event) are the running count plus an exclusive prefix count
 * looked up by mask, compacted by the same kind of permutation. Any step
 * with a special record goes record by record (ti_split_one).
 *
 * Look-back (ti_lookback_pow2_avx2): 4 later events per step. One
 * unaligned 4 x int64 load per event fetches its four most recent
 * candidates x[r-4..r-1]; a 4 x 4 transpose gives one vector per candidate
 * depth; the pair values, their range test and the bins (a shift) are
 * vector operations; out-of-range pairs go to spare counters past the
 * histogram (distinct per lane and depth, alternating between steps), and
 * the 8 indices of the two most recent candidates are incremented from a
 * small buffer. Deeper candidates are examined only when the third is in
 * range (movemask, rare). */
#include "instr_corr_impl.h"

#ifdef TI_HAVE_AVX2

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* Tables, built by the preprocessor from the 8-bit mask m:
 * ti_pre[m] byte i = popcount(m & ((1 << i) - 1)) (exclusive prefix count);
 * ti_cmp64[m4] = 32-bit lane indices (nibbles) moving the 64-bit lanes set
 * in the 4-bit mask m4 to the front, in order. */
#define TB_(m, i) (((m) >> (i)) & 1u)
#define TLOW_(m, i) ((m) & ((1u << (i)) - 1u))
#define TPOPC_(x)                                                                                  \
    (TB_(x, 0) + TB_(x, 1) + TB_(x, 2) + TB_(x, 3) + TB_(x, 4) + TB_(x, 5) + TB_(x, 6) + TB_(x, 7))
#define TPRE_(m)                                                                                   \
    ((uint64_t)TPOPC_(TLOW_(m, 1)) << 8 | (uint64_t)TPOPC_(TLOW_(m, 2)) << 16 |                    \
     (uint64_t)TPOPC_(TLOW_(m, 3)) << 24 | (uint64_t)TPOPC_(TLOW_(m, 4)) << 32 |                   \
     (uint64_t)TPOPC_(TLOW_(m, 5)) << 40 | (uint64_t)TPOPC_(TLOW_(m, 6)) << 48 |                   \
     (uint64_t)TPOPC_(TLOW_(m, 7)) << 56)
#define TC64T_(m, j)                                                                               \
    (TB_(m, j) ? ((2u * (j)) | (2u * (j) + 1u) << 4) << (8 * TPOPC_(TLOW_(m, j))) : 0u)
#define TC64_(m) (TC64T_(m, 0) | TC64T_(m, 1) | TC64T_(m, 2) | TC64T_(m, 3))
#define TC32T_(m, j) (TB_(m, j) ? (uint32_t)(j) << (4 * TPOPC_(TLOW_(m, j))) : 0u)
#define TC32_(m)                                                                                   \
    (TC32T_(m, 0) | TC32T_(m, 1) | TC32T_(m, 2) | TC32T_(m, 3) | TC32T_(m, 4) | TC32T_(m, 5) |     \
     TC32T_(m, 6) | TC32T_(m, 7))
#define TR4_(F, b) F((b) + 0), F((b) + 1), F((b) + 2), F((b) + 3)
#define TR16_(F, b) TR4_(F, (b) + 0), TR4_(F, (b) + 4), TR4_(F, (b) + 8), TR4_(F, (b) + 12)
#define TR64_(F, b) TR16_(F, (b) + 0), TR16_(F, (b) + 16), TR16_(F, (b) + 32), TR16_(F, (b) + 48)
#define TR256_(F) TR64_(F, 0u), TR64_(F, 64u), TR64_(F, 128u), TR64_(F, 192u)

static const uint64_t ti_pre[256] = {TR256_(TPRE_)};
static const uint32_t ti_cmp32[256] = {TR256_(TC32_)};
static const uint32_t ti_cmp64[16] = {TR16_(TC64_, 0u)};

/* nibbles -> permutation vector */
static AVX2 TI_ALWAYS_INLINE __m256i nib_idx(uint32_t packed)
{
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)packed),
                                              _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                            _mm256_set1_epi32(15));
}

AVX2 void ti_split_run_avx2(ti_split *sp, const uint8_t *p, uint64_t m)
{
    ti_split s = *sp;
    int64_t *restrict av = s.av, *restrict bv = s.bv;
    uint32_t *restrict ra = s.ra, *restrict rb = s.rb;
    const __m256i cav = _mm256_set1_epi32(s.ca1), cbv = _mm256_set1_epi32(s.cb1);
    const __m256i ttmask = _mm256_set1_epi32(0x1FFFFFF);
    const __m256i tpsv = _mm256_set1_epi64x((int64_t)s.tps);
    __m256i basev = _mm256_set1_epi64x((int64_t)(s.base * s.tps));
    __m256i prevv = _mm256_set1_epi64x(s.prev);
    __m256i badv = _mm256_setzero_si256();
    uint64_t i = 0;
    for (; i + 8 <= m; i += 8) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(p + 4 * i));
        if (__builtin_expect(_mm256_movemask_ps(_mm256_castsi256_ps(w)) != 0, 0)) {
            s.prev = _mm256_extract_epi64(prevv, 0);
            for (unsigned k = 0; k < 8; k++)
                ti_split_one(&s, tagi_u32(p + 4 * (i + k)));
            basev = _mm256_set1_epi64x((int64_t)(s.base * s.tps));
            prevv = _mm256_set1_epi64x(s.prev);
            continue;
        }
        const __m256i ch = _mm256_srli_epi32(w, 25);
        const unsigned ma =
            (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ch, cav)));
        const unsigned mb =
            (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ch, cbv)));
        const __m256i tt = _mm256_and_si256(w, ttmask);
        const __m256i t0 = _mm256_add_epi64(
            basev, _mm256_mul_epu32(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(tt)), tpsv));
        const __m256i t1 = _mm256_add_epi64(
            basev, _mm256_mul_epu32(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(tt, 1)), tpsv));
        /* order: each time against its predecessor */
        const __m256i r0 = _mm256_permute4x64_epi64(t0, 0x93),
                      r1 = _mm256_permute4x64_epi64(t1, 0x93);
        const __m256i p0 = _mm256_blend_epi32(r0, prevv, 0x03),
                      p1 = _mm256_blend_epi32(r1, r0, 0x03);
        badv = _mm256_or_si256(
            badv, _mm256_or_si256(_mm256_cmpgt_epi64(p0, t0), _mm256_cmpgt_epi64(p1, t1)));
        prevv = _mm256_permute4x64_epi64(t1, 0xFF);
        /* ranks: running count + exclusive prefix count of the other side */
        const size_t na = s.na, nb = s.nb;
        const __m256i rka =
            _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)nb),
                             _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)ti_pre[mb])));
        const __m256i rkb =
            _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)na),
                             _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)ti_pre[ma])));
        _mm256_storeu_si256((__m256i *)(ra + (na - s.na0)),
                            _mm256_permutevar8x32_epi32(rka, nib_idx(ti_cmp32[ma])));
        _mm256_storeu_si256((__m256i *)(rb + (nb - s.nb0)),
                            _mm256_permutevar8x32_epi32(rkb, nib_idx(ti_cmp32[mb])));
        /* times */
        const unsigned a0 = ma & 15, a1 = ma >> 4, b0 = mb & 15, b1 = mb >> 4;
        const size_t na1 = na + (size_t)__builtin_popcount(a0);
        const size_t nb1 = nb + (size_t)__builtin_popcount(b0);
        _mm256_storeu_si256((__m256i *)(av + na),
                            _mm256_permutevar8x32_epi32(t0, nib_idx(ti_cmp64[a0])));
        _mm256_storeu_si256((__m256i *)(av + na1),
                            _mm256_permutevar8x32_epi32(t1, nib_idx(ti_cmp64[a1])));
        _mm256_storeu_si256((__m256i *)(bv + nb),
                            _mm256_permutevar8x32_epi32(t0, nib_idx(ti_cmp64[b0])));
        _mm256_storeu_si256((__m256i *)(bv + nb1),
                            _mm256_permutevar8x32_epi32(t1, nib_idx(ti_cmp64[b1])));
        s.na = na1 + (size_t)__builtin_popcount(a1);
        s.nb = nb1 + (size_t)__builtin_popcount(b1);
    }
    s.prev = _mm256_extract_epi64(prevv, 0);
    s.bad |= !_mm256_testz_si256(badv, badv);
    for (; i < m; i++)
        ti_split_one(&s, tagi_u32(p + 4 * i));
    *sp = s;
}

static AVX2 TI_ALWAYS_INLINE void lookback_avx2(uint64_t *restrict h, uint64_t nbins,
                                                const ti_div *dv, uint64_t nlo,
                                                const int64_t *restrict q, size_t nq,
                                                const uint32_t *restrict rank,
                                                const int64_t *restrict x, const int stop)
{
    const int shift = dv->shift;
    const uint64_t range = nbins << shift; /* pair values below this are in range */
    const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
    const __m256i rng = _mm256_set1_epi64x((int64_t)(range ^ (uint64_t)INT64_MIN));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    const __m256i nlov = _mm256_set1_epi64x((int64_t)nlo);
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    /* spare counters nbins + 0..7, then nbins + 8..15 on the next step:
     * s <- sum - s alternates between the two sets */
    __m256i s1 = _mm256_add_epi64(_mm256_set1_epi64x((int64_t)nbins), lanes);
    __m256i s2 = _mm256_add_epi64(_mm256_set1_epi64x((int64_t)nbins + 4), lanes);
    const __m256i sum1 = _mm256_add_epi64(_mm256_add_epi64(s1, s1), _mm256_set1_epi64x(8));
    const __m256i sum2 = _mm256_add_epi64(_mm256_add_epi64(s2, s2), _mm256_set1_epi64x(8));
    size_t i = 0;
    for (; i + 4 <= nq; i += 4) {
        const uint32_t r0 = rank[i], r1 = rank[i + 1], r2 = rank[i + 2], r3 = rank[i + 3];
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x + r0 - 4));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x + r1 - 4));
        const __m256i l2 = _mm256_loadu_si256((const __m256i *)(x + r2 - 4));
        const __m256i l3 = _mm256_loadu_si256((const __m256i *)(x + r3 - 4));
        const __m256i u0 = _mm256_unpacklo_epi64(l0, l1); /* x[r-4], x[r-2] of events 0, 1 */
        const __m256i u1 = _mm256_unpackhi_epi64(l0, l1); /* x[r-3], x[r-1] */
        const __m256i u2 = _mm256_unpacklo_epi64(l2, l3);
        const __m256i u3 = _mm256_unpackhi_epi64(l2, l3);
        const __m256i c1 = _mm256_permute2x128_si256(u1, u3, 0x31); /* x[r-1] of events 0..3 */
        const __m256i c2 = _mm256_permute2x128_si256(u0, u2, 0x31); /* x[r-2] */
        const __m256i c3 = _mm256_permute2x128_si256(u1, u3, 0x20); /* x[r-3] */
        __m256i key = _mm256_loadu_si256((const __m256i *)(q + i));
        key = stop ? _mm256_add_epi64(key, nlov) : _mm256_sub_epi64(key, nlov);
        const __m256i v1 = stop ? _mm256_sub_epi64(key, c1) : _mm256_sub_epi64(c1, key);
        const __m256i v2 = stop ? _mm256_sub_epi64(key, c2) : _mm256_sub_epi64(c2, key);
        const __m256i v3 = stop ? _mm256_sub_epi64(key, c3) : _mm256_sub_epi64(c3, key);
        const __m256i in1 = _mm256_cmpgt_epi64(rng, _mm256_xor_si256(v1, sign));
        const __m256i in2 = _mm256_cmpgt_epi64(rng, _mm256_xor_si256(v2, sign));
        const __m256i in3 = _mm256_cmpgt_epi64(rng, _mm256_xor_si256(v3, sign));
        const __m256i b1 = _mm256_blendv_epi8(s1, _mm256_srl_epi64(v1, sh), in1);
        const __m256i b2 = _mm256_blendv_epi8(s2, _mm256_srl_epi64(v2, sh), in2);
        s1 = _mm256_sub_epi64(sum1, s1);
        s2 = _mm256_sub_epi64(sum2, s2);
        /* the indices leave the vectors through registers, not through a
         * stack buffer (store forwarding from a 32-byte store to 8-byte
         * loads made the increments the slowest part) */
        const __m128i b1l = _mm256_castsi256_si128(b1), b1h = _mm256_extracti128_si256(b1, 1);
        const __m128i b2l = _mm256_castsi256_si128(b2), b2h = _mm256_extracti128_si256(b2, 1);
        h[_mm_cvtsi128_si64(b1l)]++;
        h[_mm_extract_epi64(b1l, 1)]++;
        h[_mm_cvtsi128_si64(b1h)]++;
        h[_mm_extract_epi64(b1h, 1)]++;
        h[_mm_cvtsi128_si64(b2l)]++;
        h[_mm_extract_epi64(b2l, 1)]++;
        h[_mm_cvtsi128_si64(b2h)]++;
        h[_mm_extract_epi64(b2h, 1)]++;
        unsigned deep = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(in3));
        if (__builtin_expect(deep != 0, 0)) {
            do {
                const unsigned e = (unsigned)__builtin_ctz(deep);
                deep &= deep - 1;
                const uint64_t key1 = stop ? (uint64_t)q[i + e] + nlo : (uint64_t)q[i + e] - nlo;
                for (uint64_t j = rank[i + e] - 3;; j--) {
                    const uint64_t v = fast_val(key1, x[j], stop);
                    if (v >= range) break;
                    h[v >> shift]++;
                }
            } while (deep);
        }
    }
    fast_lookback(h, nbins, dv, nlo, q + i, nq - i, rank + i, x, stop, 1);
}

AVX2 void ti_lookback_pow2_avx2(uint64_t *h, uint64_t nbins, const ti_div *dv, uint64_t nlo,
                                const int64_t *q, size_t nq, const uint32_t *rank, const int64_t *x,
                                int stop)
{
    if (stop)
        lookback_avx2(h, nbins, dv, nlo, q, nq, rank, x, 1);
    else
        lookback_avx2(h, nbins, dv, nlo, q, nq, rank, x, 0);
}

#else
typedef int ti_corr_avx2_unused;
#endif
