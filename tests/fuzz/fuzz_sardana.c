/* fuzz_sardana.c — Sardana recorder documents, parsed and classified.
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
    weir_sardana_packet p;
    char err[256];
    weir_sardana_parse(&m, &p, err, sizeof err);
    weir_sardana_clear(&p);
    weir_stins_kind kind;
    int64_t frame;
    weir_beamline_classify("sardana", &m, &kind, &frame, err, sizeof err);
    weir_msg_clear(&m);
    return 0;
}
