/* fuzz_parts.h — shared by the beamline fuzz harnesses: the input holds
 * the parts of one ZeroMQ message separated by "\n--part--\n". */
#ifndef WEIR_FUZZ_PARTS_H
#define WEIR_FUZZ_PARTS_H

#include "weir/message.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void split_parts(const uint8_t *d, size_t n, weir_msg *m)
{
    static const char sep[] = "\n--part--\n";
    const size_t sl = sizeof sep - 1;
    weir_msg_init(m);
    for (;;) {
        const uint8_t *hit = n >= sl ? memmem(d, n, sep, sl) : NULL;
        size_t len = hit ? (size_t)(hit - d) : n;
        weir_msg_append(m, weir_buf_copy(d, len));
        if (!hit) return;
        d += len + sl;
        n -= len + sl;
    }
}

#endif
