/* fuzz_xspress3.c — Xspress3 messages (header, 3-part image, series_end), parsed with decoding
 * on, and classified.
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
    weir_xspress3_packet p;
    char err[256];
    if (weir_xspress3_parse(&m, 1, &p, err, sizeof err) == 0) {
        size_t n = weir_array_nbytes(&p.data);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n; i++)
            sink ^= p.data.data[i];
        (void)sink;
    }
    weir_xspress3_clear(&p);
    weir_stins_kind kind;
    int64_t frame;
    weir_beamline_classify("xspress3", &m, &kind, &frame, err, sizeof err);
    weir_msg_clear(&m);
    return 0;
}
