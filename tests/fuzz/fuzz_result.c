/* fuzz_result.c — decoding result CBOR (what crosses from workers to the
 * reducer, and later between MPI ranks). Decoded results are read through
 * every getter; anything that decodes must re-encode. */
#include "core/result.h"
#include "weir/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_buf *b = weir_buf_copy(data, size);
    if (!b) return 0;
    weir_result *r = NULL;
    char err[256];
    if (weir_result_decode(b, &r, err, sizeof err) == WEIR_OK) {
        int64_t i;
        double f;
        const char *s;
        const void *bytes;
        size_t len;
        weir_array a;
        const char *keys[] = {"a", "x", "s", "sum", "intensity", "filename"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            weir_result_get_i64(r, keys[k], &i);
            weir_result_get_f64(r, keys[k], &f);
            weir_result_get_str(r, keys[k], &s);
            weir_result_get_bytes(r, keys[k], &bytes, &len);
            if (weir_result_get_array(r, keys[k], &a) == WEIR_OK) {
                size_t n = weir_array_nbytes(&a);
                volatile uint8_t sink = 0;
                for (size_t j = 0; j < n; j++)
                    sink ^= a.data[j];
                (void)sink;
            }
        }
        weir_result_free(r);
    } else if (r) {
        abort(); /* a failed decode must not hand out a result */
    }
    weir_buf_unref(b);
    return 0;
}
