/* fuzz_tags_ptu.c — libFuzzer harness for the PicoQuant PTU (src/timetag/ptu.c), format detected
 * from the magic reader; the checks are in fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tags_run(data, size, WEIR_TAGFMT_AUTO);
}
