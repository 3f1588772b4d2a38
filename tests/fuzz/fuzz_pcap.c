/* fuzz_pcap.c — PCAP over ZeroMQ: JSON messages parsed, and every element of a data
 * message split out as dranspose's ingester does.
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
    weir_pcap_packet p;
    char err[256];
    if (weir_pcap_parse(&m, &p, err, sizeof err) == 0 && p.kind == WEIR_BL_DATA) {
        for (size_t i = 0; i < p.nvalues && i < 64; i++) {
            weir_msg one;
            weir_msg_init(&one);
            weir_pcap_split(&p, i, &one);
            weir_msg_clear(&one);
        }
    }
    weir_pcap_clear(&p);
    weir_msg_clear(&m);
    return 0;
}
