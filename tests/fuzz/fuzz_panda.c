/* fuzz_panda.c — PandA raw TCP packets: part 1 is parsed (a header, a sample, END,
 * OK); when it is a header, part 2 is parsed as a sample with it.
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
    weir_msg first, second;
    weir_msg_init(&first);
    weir_msg_init(&second);
    weir_msg_append(&first, weir_buf_ref(m.parts[0]));
    weir_panda_packet h, d;
    char err[256];
    if (weir_panda_parse(&first, NULL, &h, err, sizeof err) == 0 && h.kind == WEIR_BL_START &&
        m.nparts > 1) {
        weir_panda_header copy;
        weir_msg_append(&second, weir_buf_ref(m.parts[1]));
        if (weir_panda_header_copy(&copy, &h.header) == 0) {
            weir_panda_parse(&second, &copy, &d, err, sizeof err);
            weir_panda_clear(&d);
            weir_panda_header_clear(&copy);
        }
    }
    weir_panda_clear(&h);
    weir_msg_clear(&first);
    weir_msg_clear(&second);
    weir_msg_clear(&m);
    return 0;
}
