/* fuzz_albaem.c — AlbaEM messages, parsed (with the exact integer reading of
 * acquisition_timestamp) and classified.
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
    weir_albaem_packet p;
    char err[256];
    weir_albaem_parse(&m, &p, err, sizeof err);
    weir_albaem_clear(&p);
    weir_stins_kind kind;
    int64_t frame;
    weir_beamline_classify("albaem", &m, &kind, &frame, err, sizeof err);
    weir_msg_clear(&m);
    return 0;
}
