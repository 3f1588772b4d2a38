/* fuzz_tags_bh.c — libFuzzer harness for the Becker \& Hickl SPC FIFO (src/timetag/bh_spc.c)
 * reader; the checks are in fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tags_run(data, size, WEIR_TAGFMT_BH_SPC);
}
