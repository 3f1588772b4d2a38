/* fuzz_npy.c — libFuzzer harness for the .npy reader (src/formats/npy.c).
 *
 * Any input must either be refused with a negative code and a message, or
 * give an array whose every element can be read without leaving the buffer
 * (ASan checks that). Accepted arrays are re-encoded and parsed again: the
 * writer's output must itself parse to the same dtype, shape and values. */
#include "weir/error.h"
#include "weir/npy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so ASan sees any over-read */
    weir_buf *b = weir_buf_copy(data, size);
    if (!b) return 0;
    weir_array a;
    char err[256];
    int rc = weir_npy_parse(b, &a, err, sizeof err);
    if (rc) {
        if (rc >= 0 || !err[0] || !strstr(err, "<buffer>")) abort();
        goto unref;
    }
    size_t n = weir_array_nelem(&a);
    double sum = weir_array_sum_f64(&a);
    (void)sum;
    weir_buf *enc = NULL;
    if (weir_npy_encode(&a, &enc) != 0) abort();
    weir_array c;
    if (weir_npy_parse(enc, &c, err, sizeof err) != 0) abort();
    if (c.dtype.kind != a.dtype.kind || c.ndim != a.ndim) abort();
    if (memcmp(c.shape, a.shape, (size_t)a.ndim * sizeof a.shape[0]) != 0) abort();
    for (size_t i = 0; i < n && i < 4096; i++) {
        double x = weir_array_get_f64(&a, i), y = weir_array_get_f64(&c, i);
        if (memcmp(&x, &y, sizeof x) != 0) abort(); /* bitwise: NaNs too */
    }
    weir_array_release(&c);
    weir_buf_unref(enc);
    weir_array_release(&a);
unref:
    weir_buf_unref(b);
    return 0;
}
