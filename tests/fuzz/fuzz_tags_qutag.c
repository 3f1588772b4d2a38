/* fuzz_tags_qutag.c — libFuzzer harness for the quTAG readers
 * (src/timetag/qutag.c): the first byte picks binary, raw or compressed
 * (with its 37-bit unwrap), the rest is the file; the checks are in
 * fuzz_tags_common.h. */
#include "fuzz_tags_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    static const weir_tag_format f[3] = {WEIR_TAGFMT_QUTAG, WEIR_TAGFMT_QUTAG_RAW,
                                         WEIR_TAGFMT_QUTAG_COMPRESSED};
    return fuzz_tags_run(data + 1, size - 1, f[data[0] % 3]);
}
