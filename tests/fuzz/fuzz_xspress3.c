/* fuzz_xspress3.c — Xspress3 messages (header, 3-part image, series_end), parsed with decoding
 * on, and classified.
 * Parts of one message are separated by "\n--part--\n" in the input. */
#include "weir/beamline.h"

#include "fuzz_parts.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
