/* bitshuffle_avx2.c — AVX2 bit transposes for the bslz4 codec.
 *
 * Compiled with __attribute__((target("avx2"))) per function, so the default
 * build needs no -mavx2; bslz4.c calls in here only after
 * __builtin_cpu_supports("avx2") said yes.
 *
 * Un-shuffle (the decode hot path) works on chunks of CHUNK elements so its
 * scratch fits on the stack and in L1, in two passes:
 *  1. bits -> byte rows: for byte k of the elements, load 32 bytes from each
 *     of the 8 planes 8k..8k+7, interleave them with unpack instructions so
 *     every 64-bit lane holds byte j of the 8 planes, and transpose each lane
 *     as an 8x8 bit matrix (three delta swaps): the lane then holds byte k of
 *     elements 8j..8j+7. Result: row k = byte k of every element of the chunk.
 *  2. byte rows -> elements: interleave the s rows (SSE2 unpacks; with s == 1
 *     pass 1 already wrote the output).
 * Shuffle (encode) reverses it: the rows are split out with a plain loop,
 * then _mm256_movemask_epi8 peels one bit plane off 32 elements at a time,
 * doubling the bytes to bring the next bit to the top. Encoding is bound by
 * LZ4 compression, so its byte split is left to the compiler.
 * Anything not filling a whole vector falls back to the scalar 8x8 transpose. */
#include "codecs/bitshuffle_impl.h"
#include "weir/bslz4.h"

#ifdef WEIR_BS_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

/* Elements per chunk: the stack scratch is CHUNK * elem_size bytes at most
 * 8 * CHUNK = 16 KiB. A multiple of 256 so full chunks need no scalar tail. */
#define CHUNK 2048

#define AVX2 __attribute__((target("avx2")))

static AVX2 inline __m256i tr8x8_avx2(__m256i x)
{
    const __m256i m1 = _mm256_set1_epi64x(0x00AA00AA00AA00AALL);
    const __m256i m2 = _mm256_set1_epi64x(0x0000CCCC0000CCCCLL);
    const __m256i m3 = _mm256_set1_epi64x(0x00000000F0F0F0F0LL);
    __m256i t;
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 7)), m1);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 7)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 14)), m2);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 14)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 28)), m3);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 28)));
    return x;
}

/* 32 plane bytes (j..j+31) of the 8 planes at p, p + stride, ... -> byte k of
 * elements 8j..8j+255 at dst (256 bytes). */
static AVX2 void untrans32(const uint8_t *p, size_t stride, uint8_t *dst)
{
    __m256i v0 = _mm256_loadu_si256((const __m256i *)(p + 0 * stride));
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 1 * stride));
    __m256i v2 = _mm256_loadu_si256((const __m256i *)(p + 2 * stride));
    __m256i v3 = _mm256_loadu_si256((const __m256i *)(p + 3 * stride));
    __m256i v4 = _mm256_loadu_si256((const __m256i *)(p + 4 * stride));
    __m256i v5 = _mm256_loadu_si256((const __m256i *)(p + 5 * stride));
    __m256i v6 = _mm256_loadu_si256((const __m256i *)(p + 6 * stride));
    __m256i v7 = _mm256_loadu_si256((const __m256i *)(p + 7 * stride));
    /* Unpacks stay inside each 128-bit half: the low half covers j 0..15 and
     * the high half j 16..31. Comments give j for the low half. */
    __m256i a0 = _mm256_unpacklo_epi8(v0, v1); /* j 0..7, planes 0,1 */
    __m256i a1 = _mm256_unpackhi_epi8(v0, v1); /* j 8..15 */
    __m256i a2 = _mm256_unpacklo_epi8(v2, v3);
    __m256i a3 = _mm256_unpackhi_epi8(v2, v3);
    __m256i a4 = _mm256_unpacklo_epi8(v4, v5);
    __m256i a5 = _mm256_unpackhi_epi8(v4, v5);
    __m256i a6 = _mm256_unpacklo_epi8(v6, v7);
    __m256i a7 = _mm256_unpackhi_epi8(v6, v7);
    __m256i b0 = _mm256_unpacklo_epi16(a0, a2); /* j 0..3, planes 0..3 */
    __m256i b1 = _mm256_unpackhi_epi16(a0, a2); /* j 4..7 */
    __m256i b2 = _mm256_unpacklo_epi16(a1, a3); /* j 8..11 */
    __m256i b3 = _mm256_unpackhi_epi16(a1, a3); /* j 12..15 */
    __m256i b4 = _mm256_unpacklo_epi16(a4, a6); /* j 0..3, planes 4..7 */
    __m256i b5 = _mm256_unpackhi_epi16(a4, a6);
    __m256i b6 = _mm256_unpacklo_epi16(a5, a7);
    __m256i b7 = _mm256_unpackhi_epi16(a5, a7);
    __m256i c0 = tr8x8_avx2(_mm256_unpacklo_epi32(b0, b4)); /* j 0,1 */
    __m256i c1 = tr8x8_avx2(_mm256_unpackhi_epi32(b0, b4)); /* j 2,3 */
    __m256i c2 = tr8x8_avx2(_mm256_unpacklo_epi32(b1, b5)); /* j 4,5 */
    __m256i c3 = tr8x8_avx2(_mm256_unpackhi_epi32(b1, b5)); /* j 6,7 */
    __m256i c4 = tr8x8_avx2(_mm256_unpacklo_epi32(b2, b6)); /* j 8,9 */
    __m256i c5 = tr8x8_avx2(_mm256_unpackhi_epi32(b2, b6)); /* j 10,11 */
    __m256i c6 = tr8x8_avx2(_mm256_unpacklo_epi32(b3, b7)); /* j 12,13 */
    __m256i c7 = tr8x8_avx2(_mm256_unpackhi_epi32(b3, b7)); /* j 14,15 */
    /* Put low halves (j 0..15) in the first 128 bytes, high halves after. */
    __m256i *d = (__m256i *)dst;
    _mm256_storeu_si256(d + 0, _mm256_permute2x128_si256(c0, c1, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(c2, c3, 0x20));
    _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(c4, c5, 0x20));
    _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(c6, c7, 0x20));
    _mm256_storeu_si256(d + 4, _mm256_permute2x128_si256(c0, c1, 0x31));
    _mm256_storeu_si256(d + 5, _mm256_permute2x128_si256(c2, c3, 0x31));
    _mm256_storeu_si256(d + 6, _mm256_permute2x128_si256(c4, c5, 0x31));
    _mm256_storeu_si256(d + 7, _mm256_permute2x128_si256(c6, c7, 0x31));
}

/* Scalar fallback of untrans32 for one plane byte j. */
static inline void untrans1(const uint8_t *p, size_t stride, uint8_t *dst)
{
    uint64_t x = 0;
    for (unsigned b = 0; b < 8; b++)
        x |= (uint64_t)p[b * stride] << (8 * b);
    x = weir_bs_transpose8x8(x);
    for (unsigned i = 0; i < 8; i++)
        dst[i] = (uint8_t)(x >> (8 * i));
}

/* s rows of m bytes (row k at rows + k * m) -> m elements of s bytes. */
static AVX2 void interleave_rows(const uint8_t *rows, size_t m, size_t s, uint8_t *out)
{
    size_t e = 0;
    if (s == 2) {
        for (; e + 16 <= m; e += 16) {
            __m128i r0 = _mm_loadu_si128((const __m128i *)(rows + e));
            __m128i r1 = _mm_loadu_si128((const __m128i *)(rows + m + e));
            __m128i *o = (__m128i *)(out + 2 * e);
            _mm_storeu_si128(o + 0, _mm_unpacklo_epi8(r0, r1));
            _mm_storeu_si128(o + 1, _mm_unpackhi_epi8(r0, r1));
        }
    } else if (s == 4) {
        for (; e + 16 <= m; e += 16) {
            __m128i r0 = _mm_loadu_si128((const __m128i *)(rows + e));
            __m128i r1 = _mm_loadu_si128((const __m128i *)(rows + m + e));
            __m128i r2 = _mm_loadu_si128((const __m128i *)(rows + 2 * m + e));
            __m128i r3 = _mm_loadu_si128((const __m128i *)(rows + 3 * m + e));
            __m128i a0 = _mm_unpacklo_epi8(r0, r1); /* elements 0..7, bytes 0,1 */
            __m128i a1 = _mm_unpackhi_epi8(r0, r1); /* elements 8..15 */
            __m128i a2 = _mm_unpacklo_epi8(r2, r3);
            __m128i a3 = _mm_unpackhi_epi8(r2, r3);
            __m128i *o = (__m128i *)(out + 4 * e);
            _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(a0, a2)); /* elements 0..3 */
            _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(a0, a2));
            _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(a1, a3));
            _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(a1, a3));
        }
    } else if (s == 8) {
        for (; e + 16 <= m; e += 16) {
            __m128i r[8];
            for (unsigned k = 0; k < 8; k++)
                r[k] = _mm_loadu_si128((const __m128i *)(rows + k * m + e));
            __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]);
            __m128i a1 = _mm_unpackhi_epi8(r[0], r[1]);
            __m128i a2 = _mm_unpacklo_epi8(r[2], r[3]);
            __m128i a3 = _mm_unpackhi_epi8(r[2], r[3]);
            __m128i a4 = _mm_unpacklo_epi8(r[4], r[5]);
            __m128i a5 = _mm_unpackhi_epi8(r[4], r[5]);
            __m128i a6 = _mm_unpacklo_epi8(r[6], r[7]);
            __m128i a7 = _mm_unpackhi_epi8(r[6], r[7]);
            __m128i b0 = _mm_unpacklo_epi16(a0, a2);
            __m128i b1 = _mm_unpackhi_epi16(a0, a2);
            __m128i b2 = _mm_unpacklo_epi16(a1, a3);
            __m128i b3 = _mm_unpackhi_epi16(a1, a3);
            __m128i b4 = _mm_unpacklo_epi16(a4, a6);
            __m128i b5 = _mm_unpackhi_epi16(a4, a6);
            __m128i b6 = _mm_unpacklo_epi16(a5, a7);
            __m128i b7 = _mm_unpackhi_epi16(a5, a7);
            __m128i *o = (__m128i *)(out + 8 * e);
            _mm_storeu_si128(o + 0, _mm_unpacklo_epi32(b0, b4)); /* elements 0,1 */
            _mm_storeu_si128(o + 1, _mm_unpackhi_epi32(b0, b4));
            _mm_storeu_si128(o + 2, _mm_unpacklo_epi32(b1, b5));
            _mm_storeu_si128(o + 3, _mm_unpackhi_epi32(b1, b5));
            _mm_storeu_si128(o + 4, _mm_unpacklo_epi32(b2, b6));
            _mm_storeu_si128(o + 5, _mm_unpackhi_epi32(b2, b6));
            _mm_storeu_si128(o + 6, _mm_unpacklo_epi32(b3, b7));
            _mm_storeu_si128(o + 7, _mm_unpackhi_epi32(b3, b7));
        }
    }
    for (; e < m; e++)
        for (size_t k = 0; k < s; k++)
            out[e * s + k] = rows[k * m + e];
}

AVX2 void weir_bitunshuffle_avx2(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
    _Alignas(32) uint8_t scratch[8 * CHUNK];
    size_t nb = n / 8;
    size_t s = elem_size;
    if (s > 8) {
        /* The scratch holds 8 rows; nothing in weir uses wider elements. */
        weir_bitunshuffle_scalar(in, out, n, elem_size);
        return;
    }
    for (size_t e0 = 0; e0 < n; e0 += CHUNK) {
        size_t m = n - e0 < CHUNK ? n - e0 : CHUNK;
        size_t j0 = e0 / 8, mj = m / 8;
        uint8_t *rows = s == 1 ? out + e0 : scratch;
        for (size_t k = 0; k < s; k++) {
            const uint8_t *pl = in + 8 * k * nb + j0;
            uint8_t *dst = rows + k * m;
            size_t j = 0;
            for (; j + 32 <= mj; j += 32)
                untrans32(pl + j, nb, dst + 8 * j);
            for (; j < mj; j++)
                untrans1(pl + j, nb, dst + 8 * j);
        }
        if (s > 1) interleave_rows(scratch, m, s, out + e0 * s);
    }
}

AVX2 void weir_bitshuffle_avx2(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
    _Alignas(32) uint8_t scratch[8 * CHUNK];
    size_t nb = n / 8;
    size_t s = elem_size;
    for (size_t e0 = 0; e0 < n; e0 += CHUNK) {
        size_t m = n - e0 < CHUNK ? n - e0 : CHUNK;
        size_t j0 = e0 / 8, mj = m / 8;
        for (size_t k = 0; k < s; k++) {
            const uint8_t *row;
            if (s == 1) {
                row = in + e0;
            } else {
                for (size_t e = 0; e < m; e++)
                    scratch[e] = in[(e0 + e) * s + k];
                row = scratch;
            }
            uint8_t *pl = out + 8 * k * nb + j0;
            size_t j = 0;
            for (; j + 4 <= mj; j += 4) {
                /* 32 elements give 4 bytes of each of the 8 planes. */
                __m256i v = _mm256_loadu_si256((const __m256i *)(row + 8 * j));
                for (int b = 7; b >= 0; b--) {
                    uint32_t bits = (uint32_t)_mm256_movemask_epi8(v);
                    memcpy(pl + (size_t)b * nb + j, &bits, 4);
                    v = _mm256_add_epi8(v, v);
                }
            }
            for (; j < mj; j++) {
                uint64_t x = 0;
                for (unsigned i = 0; i < 8; i++)
                    x |= (uint64_t)row[8 * j + i] << (8 * i);
                x = weir_bs_transpose8x8(x);
                for (unsigned b = 0; b < 8; b++)
                    pl[b * nb + j] = (uint8_t)(x >> (8 * b));
            }
        }
    }
}

#else
/* Not x86: bslz4.c uses the scalar transposes only. ISO C wants a
 * declaration in every translation unit. */
typedef int weir_bitshuffle_avx2_unused;
#endif
