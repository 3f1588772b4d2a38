/* bitshuffle_impl.h — internal to the bslz4 codec: the 8x8 bit-matrix
 * transpose both implementations share, and the entry points of the
 * vectorised variants (bitshuffle_avx2.c) that bslz4.c selects at run time.
 * Not a public header. */
#ifndef WEIR_BITSHUFFLE_IMPL_H
#define WEIR_BITSHUFFLE_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Transposes the 8x8 bit matrix held in x, where row r is byte r (bits
 * 8r..8r+7) and column c is bit c of that byte: bit 8r+c <-> bit 8c+r.
 * Three rounds of swapping off-diagonal 1x1, 2x2 and 4x4 blocks (the
 * classic delta-swap transpose); an involution, so it serves both
 * directions of the bit shuffle. */
static inline uint64_t weir_bs_transpose8x8(uint64_t x)
{
    uint64_t t;
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
    x = x ^ t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
    x = x ^ t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
    x = x ^ t ^ (t << 28);
    return x;
}

#if defined(__x86_64__) || defined(__i386__)
#define WEIR_BS_HAVE_AVX2 1
/* Same contract as weir_bitshuffle / weir_bitunshuffle (n % 8 == 0, any
 * elem_size >= 1); only call when the CPU supports AVX2. */
void weir_bitshuffle_avx2(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
void weir_bitunshuffle_avx2(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
#endif

#endif
