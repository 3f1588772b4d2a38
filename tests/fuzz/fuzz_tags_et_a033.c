/* fuzz_tags_et_a033.c — libFuzzer harness for the Eventech ET A033 (src/timetag/et_a033.c) reader;
 * the checks are in fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tags_run(data, size, WEIR_TAGFMT_ET_A033);
}
