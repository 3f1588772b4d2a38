/* fuzz_lecroy.c — LeCroy messages: control messages, a trace, or an assembled
 * sequence, parsed with decoding on.
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
    weir_lecroy_packet p;
    char err[256];
    if (weir_lecroy_parse(&m, 1, &p, err, sizeof err) == 0) {
        volatile uint8_t sink = 0;
        for (size_t t = 0; t < p.ntraces; t++) {
            size_t n = weir_array_nbytes(&p.traces[t].data);
            for (size_t i = 0; i < n; i++)
                sink ^= p.traces[t].data.data[i];
        }
        (void)sink;
    }
    weir_lecroy_clear(&p);
    weir_msg_clear(&m);
    return 0;
}
