/* fuzz_tags_legacy.c — libFuzzer harness for the legacy PicoQuant .ht2/.ht3/.pt2/.pt3/.t3r/.thd
 * (src/timetag/pq_legacy.c) reader; the checks are in fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tags_run(data, size, WEIR_TAGFMT_PQ_LEGACY);
}
