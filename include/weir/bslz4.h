/* weir/bslz4.h — bitshuffle + LZ4 in the HDF5-filter framing, and plain LZ4
 * in the HDF5 LZ4-filter framing (both as DECTRIS and STINS use them).
 *
 * bslz4 layout: u64 BE uncompressed bytes, u32 BE block size in bytes, then
 * per block a u32 BE compressed length and a raw LZ4 block of the
 * bit-shuffled elements; the last partial block is rounded down to a
 * multiple of 8 elements; the remaining (nelem % 8) elements are stored raw.
 *
 * All functions are thread-safe and keep no state, except the process-wide
 * force-scalar switch below. Buffers are borrowed, never retained. */
#ifndef WEIR_BSLZ4_H
#define WEIR_BSLZ4_H

#include <stddef.h>
#include <stdint.h>

/* Reads the 12-byte header: uncompressed size and block size (bytes). */
int weir_bslz4_header(const uint8_t *in, size_t in_len, uint64_t *nbytes, uint32_t *block_bytes);
/* Decodes into out (out_len must equal the header's uncompressed size and be
 * a multiple of elem_size). elem_size 1, 2, 4 or 8. Returns 0 or
 * WEIR_ETRUNCATED / WEIR_ECODEC / WEIR_EINVAL (or WEIR_ENOMEM for the
 * one block-sized scratch buffer); the input is never read past in_len and
 * must be consumed exactly (trailing bytes are WEIR_ECODEC, as a header size
 * disagreeing with out_len is). A header block size of 0 means bitshuffle's
 * default, as in bshuf_decompress_lz4. On error out holds partial data. */
int weir_bslz4_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                      size_t elem_size);
/* Worst-case encoded size for n bytes. */
size_t weir_bslz4_bound(size_t nbytes, size_t elem_size, size_t block_bytes);
/* Encodes n bytes of elem_size elements; block_bytes 0 picks bitshuffle's
 * default (8192). Writes *out_len. Output is byte-identical to bitshuffle's
 * bshuf_h5filter with LZ4 at default level. */
int weir_bslz4_encode(const uint8_t *in, size_t n, size_t elem_size, size_t block_bytes,
                      uint8_t *out, size_t out_cap, size_t *out_len);
/* (weir_bslz4_encode returns 0, WEIR_EINVAL for a bad elem_size / block size
 * (block_bytes must be a multiple of 8 * elem_size), WEIR_ERANGE when out_cap
 * is too small (weir_bslz4_bound always suffices), or WEIR_ENOMEM.) */

/* HDF5 LZ4 filter framing (u64 BE size, u32 BE block size, per block u32 BE
 * length + LZ4 block; a block whose length equals its raw size is stored raw). */
int weir_lz4h5_header(const uint8_t *in, size_t in_len, uint64_t *nbytes, uint32_t *block_bytes);
/* Decodes into out; out_len must equal the header's size. Returns 0 or
 * WEIR_ETRUNCATED / WEIR_ECODEC / WEIR_EINVAL; never reads past in_len.
 * Trailing bytes and a zero block size (for non-empty data) are WEIR_ECODEC. */
int weir_lz4h5_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
/* Worst-case encoded size of n bytes in the LZ4-filter framing. */
size_t weir_lz4h5_bound(size_t nbytes, size_t block_bytes);
/* Encodes n bytes as H5Zlz4.c does (block_bytes 0 picks 8192, the size
 * DECTRIS uses; a block LZ4 cannot shrink is stored raw). Writes *out_len.
 * Returns 0, WEIR_EINVAL, or WEIR_ERANGE when out_cap is too small. */
int weir_lz4h5_encode(const uint8_t *in, size_t n, size_t block_bytes, uint8_t *out, size_t out_cap,
                      size_t *out_len);

/* Bit transposes (exposed for tests and benchmarks). n elements, n % 8 == 0.
 * The _scalar variants are portable C; the plain names pick the fastest
 * implementation this CPU supports at run time. */
void weir_bitshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
void weir_bitunshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
void weir_bitshuffle_scalar(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
void weir_bitunshuffle_scalar(const uint8_t *in, uint8_t *out, size_t n, size_t elem_size);
/* Name of the implementation chosen at run time ("avx2" or "scalar"); static. */
const char *weir_bitshuffle_impl(void);
/* Forces the scalar path (nonzero) for tests and benchmarks. The flag is one
 * atomic per process: it affects every thread, so set it before starting
 * work, not concurrently with decodes whose path matters to you. */
void weir_bitshuffle_force_scalar(int on);

#endif
