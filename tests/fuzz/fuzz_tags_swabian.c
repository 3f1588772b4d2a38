/* fuzz_tags_swabian.c — libFuzzer harness for the Swabian 16-byte dumps (src/timetag/swabian.c)
 * reader; the checks are in fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tags_run(data, size, WEIR_TAGFMT_SWABIAN);
}
