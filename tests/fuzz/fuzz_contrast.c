/* fuzz_contrast.c — Contrast messages: a pickle walked by weir_pickle_scan (never unpickled),
 * its "status" and "scannr" read from the top-level dict.
 * Parts of one message are separated by "\n--part--\n" in the input. */
#include "weir/beamline.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void split_parts(const uint8_t *d, size_t n, weir_msg *m)
{
    static const char sep[] = "\n--part--\n";
    const size_t sl = sizeof sep - 1;
    weir_msg_init(m);
    for (;;) {
        const uint8_t *hit = n >= sl ? memmem(d, n, sep, sl) : NULL;
        size_t len = hit ? (size_t)(hit - d) : n;
        weir_msg_append(m, weir_buf_copy(d, len));
        if (!hit) return;
        d += len + sl;
        n -= len + sl;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_msg m;
    split_parts(data, size, &m);
    weir_contrast_packet p;
    char err[256];
    weir_contrast_parse(&m, &p, err, sizeof err);
    weir_contrast_clear(&p);
    weir_pickle_value v;
    int proto;
    weir_pickle_scan(data, size, &proto, "scannr", &v, err, sizeof err);
    weir_msg_clear(&m);
    return 0;
}
