/* fuzz_contrast.c — Contrast messages: a pickle walked by weir_pickle_scan (never unpickled),
 * its "status" and "scannr" read from the top-level dict.
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
