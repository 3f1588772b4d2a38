/* fuzz_bslz4.c — libFuzzer harness for the bslz4 and HDF5-LZ4 decoders.
 *
 * Input: byte 0 picks the element size (1 << (b & 3)); the rest is a frame.
 * The output size comes from the frame's own header and is allocated
 * exactly so ASan sees any over-write; headers claiming more than 16 MiB
 * only exercise the size-mismatch check. Both decoders run on the
 * same bytes. Whatever decodes must survive an encode/decode round trip, and
 * the vectorised and scalar bit un-transposes must agree on the raw bytes;
 * a mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/bslz4.h"

#define OUT_CAP (16u << 20)

static void check_bslz4(const uint8_t *in, size_t len, size_t s)
{
    uint64_t nbytes;
    uint32_t block;
    if (weir_bslz4_header(in, len, &nbytes, &block)) return;
    if (nbytes > OUT_CAP) {
        /* Too big to allocate per run: only the size-mismatch path. */
        uint8_t small[8];
        if (weir_bslz4_decode(in, len, small, sizeof small, s) == 0) abort();
        return;
    }
    size_t out_len = (size_t)nbytes - (size_t)nbytes % s;
    uint8_t *out = malloc(out_len ? out_len : 1);
    if (!out) return;
    if (weir_bslz4_decode(in, len, out, out_len, s) == 0) {
        size_t cap = weir_bslz4_bound(out_len, s, 0), elen;
        uint8_t *enc = malloc(cap), *back = malloc(out_len ? out_len : 1);
        if (enc && back) {
            if (weir_bslz4_encode(out, out_len, s, 0, enc, cap, &elen) != 0) abort();
            if (weir_bslz4_decode(enc, elen, back, out_len, s) != 0) abort();
            if (memcmp(back, out, out_len) != 0) abort();
        }
        free(enc);
        free(back);
    }
    free(out);
}

static void check_lz4h5(const uint8_t *in, size_t len)
{
    uint64_t nbytes;
    uint32_t block;
    if (weir_lz4h5_header(in, len, &nbytes, &block)) return;
    if (nbytes > OUT_CAP) {
        uint8_t small[8];
        if (weir_lz4h5_decode(in, len, small, sizeof small) == 0) abort();
        return;
    }
    size_t out_len = (size_t)nbytes;
    uint8_t *out = malloc(out_len ? out_len : 1);
    if (!out) return;
    (void)weir_lz4h5_decode(in, len, out, out_len);
    free(out);
}

static void check_transpose(const uint8_t *in, size_t len, size_t s)
{
    size_t n = len / (8 * s) * 8;
    if (!n) return;
    uint8_t *a = malloc(n * s), *b = malloc(n * s);
    if (a && b) {
        weir_bitunshuffle(in, a, n, s);
        weir_bitunshuffle_scalar(in, b, n, s);
        if (memcmp(a, b, n * s) != 0) abort();
        weir_bitshuffle(in, a, n, s);
        weir_bitshuffle_scalar(in, b, n, s);
        if (memcmp(a, b, n * s) != 0) abort();
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t s = (size_t)1 << (data[0] & 3);
    check_bslz4(data + 1, size - 1, s);
    check_lz4h5(data + 1, size - 1);
    check_transpose(data + 1, size - 1, s);
    return 0;
}
