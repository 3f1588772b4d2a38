/* fuzz_concert.c — Concert image messages: the input is split into one or
 * two parts (first byte picks where), parsed with decoding on. */
#include "weir/concert.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = size > 1 ? 1 + data[0] % (size - 1) : 1;
    weir_msg m;
    weir_msg_init(&m);
    weir_msg_append(&m, weir_buf_copy(data + 1, cut - 1));
    if (data[0] & 0x80) weir_msg_append(&m, weir_buf_copy(data + cut, size - cut));
    weir_concert_packet p;
    char err[256];
    if (weir_concert_parse(&m, 1, &p, err, sizeof err) == 0) {
        size_t n = weir_array_nbytes(&p.data);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n; i++)
            sink ^= p.data.data[i];
        (void)sink;
    }
    weir_concert_clear(&p);
    weir_msg_clear(&m);
    return 0;
}
