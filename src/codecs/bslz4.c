/* bslz4.c — bitshuffle + LZ4 ("bslz4") and plain LZ4 in the HDF5-filter
 * framings, as DECTRIS detectors (stream v1/v2, HDF5 filter 32008) and STINS
 * ship them, plus the portable bit transposes and the run-time choice of the
 * vectorised ones.
 *
 * bslz4 (bitshuffle's bshuf_h5filter.c framing): a 12-byte big-endian header
 * (u64 uncompressed bytes, u32 block size in bytes), then per block of B
 * elements a u32 BE length and one raw LZ4 block holding the bit-shuffled
 * elements. After the full blocks comes one block of the remaining elements
 * rounded down to a multiple of 8, then the last nelem % 8 elements verbatim.
 * Decoding runs block by block: LZ4_decompress_safe into a block-sized
 * scratch buffer (small enough to stay in cache), then the bit un-transpose
 * from there into the caller's buffer. Every length is checked against what
 * is left of the input before it is used, and LZ4_decompress_safe is told the
 * exact output size, so corrupt input can neither over-read nor over-write.
 *
 * The bit transpose: a block of n elements of s bytes becomes 8*s bit planes
 * of n/8 bytes; plane 8k+b holds bit b of byte k of every element, element
 * 8j+i at bit i of plane byte j. Eight elements' byte k therefore form an 8x8
 * bit matrix whose transpose is byte j of planes 8k..8k+7, so the scalar code
 * gathers 8 bytes, transposes them in one 64-bit word and scatters 8 bytes.
 * bitshuffle_avx2.c does the same 32 plane-bytes at a time.
 *
 * Run-time dispatch keeps two process-wide atomics, the only mutable state
 * in this file: the CPU-feature choice, detected once and cached (a benign
 * race: every thread computes the same value), and the force-scalar switch
 * tests and benchmarks use to time or check the portable path. */
#include "weir/bslz4.h"

#include <limits.h>
#include <lz4.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/bitshuffle_impl.h"
#include "weir/error.h"

/* bitshuffle's BSHUF_TARGET_BLOCK_SIZE_B: 8192 bytes per block by default. */
#define BSLZ4_DEFAULT_BLOCK_BYTES 8192u
/* H5Zlz4.c's default is 1 GiB, but DECTRIS writes 8192 and so do we. */
#define LZ4H5_DEFAULT_BLOCK_BYTES 8192u
#define HEADER_BYTES 12u

enum bs_impl { BS_IMPL_UNKNOWN = 0, BS_IMPL_SCALAR = 1, BS_IMPL_AVX2 = 2 };

static atomic_int bs_cpu_impl = BS_IMPL_UNKNOWN;
static atomic_int bs_force_scalar = 0;

static uint64_t read_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t read_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void write_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void write_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- bit transposes ------------------------------------------------------ */

void weir_bitshuffle_scalar(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
    size_t nb = n / 8;
    /* j outer, k inner: each group of 8 elements is read once, contiguously. */
    for (size_t j = 0; j < nb; j++) {
        const uint8_t *src = in + 8 * j * elem_size;
        for (size_t k = 0; k < elem_size; k++) {
            uint64_t x = 0;
            for (unsigned i = 0; i < 8; i++)
                x |= (uint64_t)src[i * elem_size + k] << (8 * i);
            x = weir_bs_transpose8x8(x);
            uint8_t *dst = out + 8 * k * nb + j;
            for (unsigned b = 0; b < 8; b++)
                dst[b * nb] = (uint8_t)(x >> (8 * b));
        }
    }
}

void weir_bitunshuffle_scalar(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
    size_t nb = n / 8;
    for (size_t j = 0; j < nb; j++) {
        uint8_t *dst = out + 8 * j * elem_size;
        for (size_t k = 0; k < elem_size; k++) {
            const uint8_t *src = in + 8 * k * nb + j;
            uint64_t x = 0;
            for (unsigned b = 0; b < 8; b++)
                x |= (uint64_t)src[b * nb] << (8 * b);
            x = weir_bs_transpose8x8(x);
            for (unsigned i = 0; i < 8; i++)
                dst[i * elem_size + k] = (uint8_t)(x >> (8 * i));
        }
    }
}

static int bs_detect(void)
{
#ifdef WEIR_BS_HAVE_AVX2
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return BS_IMPL_AVX2;
#endif
    return BS_IMPL_SCALAR;
}

static int bs_impl(void)
{
    if (atomic_load_explicit(&bs_force_scalar, memory_order_relaxed)) return BS_IMPL_SCALAR;
    int impl = atomic_load_explicit(&bs_cpu_impl, memory_order_relaxed);
    if (impl == BS_IMPL_UNKNOWN) {
        impl = bs_detect();
        atomic_store_explicit(&bs_cpu_impl, impl, memory_order_relaxed);
    }
    return impl;
}

void weir_bitshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
#ifdef WEIR_BS_HAVE_AVX2
    if (bs_impl() == BS_IMPL_AVX2) {
        weir_bitshuffle_avx2(in, out, n, elem_size);
        return;
    }
#endif
    weir_bitshuffle_scalar(in, out, n, elem_size);
}

void weir_bitunshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size)
{
#ifdef WEIR_BS_HAVE_AVX2
    if (bs_impl() == BS_IMPL_AVX2) {
        weir_bitunshuffle_avx2(in, out, n, elem_size);
        return;
    }
#endif
    weir_bitunshuffle_scalar(in, out, n, elem_size);
}

const char *weir_bitshuffle_impl(void)
{
    return bs_impl() == BS_IMPL_AVX2 ? "avx2" : "scalar";
}

void weir_bitshuffle_force_scalar(int on)
{
    atomic_store(&bs_force_scalar, on ? 1 : 0);
}

/* ---- bslz4 framing ------------------------------------------------------- */

static int elem_size_ok(size_t s)
{
    return s == 1 || s == 2 || s == 4 || s == 8;
}

int weir_bslz4_header(const uint8_t *in, size_t in_len, uint64_t *nbytes, uint32_t *block_bytes)
{
    if (!in || !nbytes || !block_bytes) return WEIR_EINVAL;
    if (in_len < HEADER_BYTES) return WEIR_ETRUNCATED;
    *nbytes = read_be64(in);
    *block_bytes = read_be32(in + 8);
    return 0;
}

int weir_bslz4_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                      size_t elem_size)
{
    int rc = 0;
    uint8_t *tmp = NULL;
    uint64_t nbytes;
    uint32_t hdr_block;

    if (!in || (!out && out_len) || !elem_size_ok(elem_size) || out_len % elem_size)
        return WEIR_EINVAL;
    rc = weir_bslz4_header(in, in_len, &nbytes, &hdr_block);
    if (rc) return rc;
    if (nbytes != (uint64_t)out_len) return WEIR_ECODEC;

    size_t block_bytes = hdr_block ? hdr_block : BSLZ4_DEFAULT_BLOCK_BYTES;
    /* bitshuffle requires whole elements per block and a multiple of 8. */
    if (block_bytes % (8 * elem_size)) return WEIR_ECODEC;
    size_t belems = block_bytes / elem_size;
    size_t nelem = out_len / elem_size;
    /* Blocks never exceed the data, so the scratch stays bounded by out_len
     * even when a corrupt header claims a 4 GiB block. */
    size_t tmp_elems = belems < nelem ? belems : nelem;
    tmp_elems &= ~(size_t)7;
    if (tmp_elems) {
        tmp = malloc(tmp_elems * elem_size);
        if (!tmp) return WEIR_ENOMEM;
    }

    const uint8_t *p = in + HEADER_BYTES;
    size_t left = in_len - HEADER_BYTES;
    size_t done = 0; /* elements written */
    size_t blocked = nelem & ~(size_t)7;
    while (done < blocked) {
        size_t be = blocked - done < belems ? blocked - done : belems;
        size_t bbytes = be * elem_size;
        if (left < 4) {
            rc = WEIR_ETRUNCATED;
            goto free_tmp;
        }
        uint32_t clen = read_be32(p);
        p += 4;
        left -= 4;
        if (clen > left) {
            rc = WEIR_ETRUNCATED;
            goto free_tmp;
        }
        if (clen > INT_MAX || bbytes > INT_MAX) {
            rc = WEIR_ECODEC;
            goto free_tmp;
        }
        int got = LZ4_decompress_safe((const char *)p, (char *)tmp, (int)clen, (int)bbytes);
        if (got < 0 || (size_t)got != bbytes) {
            rc = WEIR_ECODEC;
            goto free_tmp;
        }
        weir_bitunshuffle(tmp, out + done * elem_size, be, elem_size);
        p += clen;
        left -= clen;
        done += be;
    }
    size_t tail = (nelem - blocked) * elem_size;
    if (left < tail) {
        rc = WEIR_ETRUNCATED;
        goto free_tmp;
    }
    if (tail) memcpy(out + blocked * elem_size, p, tail);
    if (left != tail) rc = WEIR_ECODEC;

free_tmp:
    free(tmp);
    return rc;
}

static size_t lz4_block_bound(size_t bytes)
{
    /* LZ4_COMPRESSBOUND's formula, in size_t so it cannot overflow int. */
    return bytes + bytes / 255 + 16;
}

size_t weir_bslz4_bound(size_t nbytes, size_t elem_size, size_t block_bytes)
{
    if (!elem_size_ok(elem_size)) return 0;
    if (!block_bytes) block_bytes = BSLZ4_DEFAULT_BLOCK_BYTES;
    size_t belems = block_bytes / elem_size;
    if (!belems) return 0;
    size_t nelem = nbytes / elem_size;
    size_t full = nelem / belems;
    size_t last = (nelem % belems) & ~(size_t)7;
    size_t bound = HEADER_BYTES + full * (4 + lz4_block_bound(belems * elem_size));
    if (last) bound += 4 + lz4_block_bound(last * elem_size);
    return bound + (nelem % 8) * elem_size;
}

int weir_bslz4_encode(const uint8_t *in, size_t n, size_t elem_size, size_t block_bytes,
                      uint8_t *out, size_t out_cap, size_t *out_len)
{
    int rc = 0;
    uint8_t *tmp = NULL;

    if ((!in && n) || !out || !out_len || !elem_size_ok(elem_size) || n % elem_size)
        return WEIR_EINVAL;
    if (!block_bytes) block_bytes = BSLZ4_DEFAULT_BLOCK_BYTES;
    if (block_bytes % (8 * elem_size) || block_bytes > UINT32_MAX || block_bytes > INT_MAX)
        return WEIR_EINVAL;
    if (out_cap < HEADER_BYTES) return WEIR_ERANGE;

    size_t belems = block_bytes / elem_size;
    size_t nelem = n / elem_size;
    size_t blocked = nelem & ~(size_t)7;
    size_t tmp_elems = belems < blocked ? belems : blocked;
    if (tmp_elems) {
        tmp = malloc(tmp_elems * elem_size);
        if (!tmp) return WEIR_ENOMEM;
    }

    write_be64(out, (uint64_t)n);
    write_be32(out + 8, (uint32_t)block_bytes);
    size_t pos = HEADER_BYTES;
    for (size_t done = 0; done < blocked;) {
        size_t be = blocked - done < belems ? blocked - done : belems;
        size_t bbytes = be * elem_size;
        if (out_cap - pos < 4) {
            rc = WEIR_ERANGE;
            goto free_tmp;
        }
        weir_bitshuffle(in + done * elem_size, tmp, be, elem_size);
        size_t room = out_cap - pos - 4;
        int cap = room > INT_MAX ? INT_MAX : (int)room;
        int clen = LZ4_compress_default((const char *)tmp, (char *)out + pos + 4, (int)bbytes, cap);
        if (clen <= 0) {
            rc = WEIR_ERANGE;
            goto free_tmp;
        }
        write_be32(out + pos, (uint32_t)clen);
        pos += 4 + (size_t)clen;
        done += be;
    }
    size_t tail = (nelem - blocked) * elem_size;
    if (out_cap - pos < tail) {
        rc = WEIR_ERANGE;
        goto free_tmp;
    }
    if (tail) memcpy(out + pos, in + blocked * elem_size, tail);
    *out_len = pos + tail;

free_tmp:
    free(tmp);
    return rc;
}

/* ---- plain LZ4 in the HDF5 LZ4-filter framing ---------------------------- */

int weir_lz4h5_header(const uint8_t *in, size_t in_len, uint64_t *nbytes, uint32_t *block_bytes)
{
    return weir_bslz4_header(in, in_len, nbytes, block_bytes);
}

int weir_lz4h5_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    uint64_t nbytes;
    uint32_t hdr_block;

    if (!in || (!out && out_len)) return WEIR_EINVAL;
    int rc = weir_lz4h5_header(in, in_len, &nbytes, &hdr_block);
    if (rc) return rc;
    if (nbytes != (uint64_t)out_len) return WEIR_ECODEC;
    if (!hdr_block && out_len) return WEIR_ECODEC; /* would never make progress */
    /* H5Zlz4.c clamps the block size to the data size. */
    size_t block = hdr_block < out_len ? hdr_block : out_len;

    const uint8_t *p = in + HEADER_BYTES;
    size_t left = in_len - HEADER_BYTES;
    for (size_t done = 0; done < out_len;) {
        size_t bs = out_len - done < block ? out_len - done : block;
        if (left < 4) return WEIR_ETRUNCATED;
        uint32_t clen = read_be32(p);
        p += 4;
        left -= 4;
        if (clen > left) return WEIR_ETRUNCATED;
        if (clen == bs) {
            /* H5Zlz4.c stores a block LZ4 could not shrink verbatim, and its
             * length field then equals the raw size. */
            memcpy(out + done, p, bs);
        } else {
            if (clen > INT_MAX || bs > INT_MAX) return WEIR_ECODEC;
            int got = LZ4_decompress_safe((const char *)p, (char *)out + done, (int)clen, (int)bs);
            if (got < 0 || (size_t)got != bs) return WEIR_ECODEC;
        }
        p += clen;
        left -= clen;
        done += bs;
    }
    return left ? WEIR_ECODEC : 0;
}

size_t weir_lz4h5_bound(size_t nbytes, size_t block_bytes)
{
    if (!block_bytes) block_bytes = LZ4H5_DEFAULT_BLOCK_BYTES;
    size_t nblocks = nbytes ? (nbytes - 1) / block_bytes + 1 : 0;
    /* A stored block never exceeds its raw size, so raw + 4 per block bounds it. */
    return HEADER_BYTES + nblocks * 4 + nbytes;
}

int weir_lz4h5_encode(const uint8_t *in, size_t n, size_t block_bytes, uint8_t *out, size_t out_cap,
                      size_t *out_len)
{
    if ((!in && n) || !out || !out_len) return WEIR_EINVAL;
    if (!block_bytes) block_bytes = LZ4H5_DEFAULT_BLOCK_BYTES;
    if (block_bytes > UINT32_MAX || block_bytes > INT_MAX) return WEIR_EINVAL;
    if (out_cap < HEADER_BYTES) return WEIR_ERANGE;
    /* H5Zlz4.c writes the block size clamped to the data size. */
    size_t block = block_bytes < n ? block_bytes : n;
    write_be64(out, (uint64_t)n);
    write_be32(out + 8, (uint32_t)block);
    size_t pos = HEADER_BYTES;
    for (size_t done = 0; done < n;) {
        size_t bs = n - done < block ? n - done : block;
        if (out_cap - pos < 4 + bs) return WEIR_ERANGE;
        /* Compress into at most bs - 1 bytes: anything longer is stored raw. */
        int clen = 0;
        if (bs > 1)
            clen = LZ4_compress_default((const char *)in + done, (char *)out + pos + 4, (int)bs,
                                        (int)bs - 1);
        if (clen <= 0) {
            memcpy(out + pos + 4, in + done, bs);
            clen = (int)bs;
        }
        write_be32(out + pos, (uint32_t)clen);
        pos += 4 + (size_t)clen;
        done += bs;
    }
    *out_len = pos;
    return 0;
}
