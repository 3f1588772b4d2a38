/* fuzz_beamline.c — the assembler and the uniform classifier. The first
 * byte picks the protocol; the rest is a list of messages separated by
 * "\n--msg--\n", their parts by "\n--part--\n" (pcap-raw: raw TCP bytes).
 * Everything the assembler gives back is classified. */
#include "weir/beamline.h"

#include "fuzz_parts.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char *const protos[7] = {"xspress3", "contrast", "pcap",  "pcap-raw",
                                      "sardana",  "lecroy",   "albaem"};

static void drain(weir_beamline_asm *a, const char *proto)
{
    weir_msg m;
    weir_msg_init(&m);
    while (weir_beamline_asm_pop(a, &m) == 1) {
        weir_stins_kind kind;
        int64_t frame;
        char err[256];
        weir_beamline_classify(proto, &m, &kind, &frame, err, sizeof err);
        weir_msg_clear(&m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *proto = protos[data[0] % 7];
    weir_beamline_asm *a;
    if (weir_beamline_asm_new(proto, &a)) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    static const char sep[] = "\n--msg--\n";
    const size_t sl = sizeof sep - 1;
    for (;;) {
        const uint8_t *hit = n >= sl ? memmem(d, n, sep, sl) : NULL;
        size_t len = hit ? (size_t)(hit - d) : n;
        weir_msg m;
        split_parts(d, len, &m);
        char err[256];
        weir_beamline_asm_push(a, &m, err, sizeof err);
        weir_msg_clear(&m);
        drain(a, proto);
        if (!hit) break;
        d += len + sl;
        n -= len + sl;
    }
    weir_beamline_asm_free(a);
    return 0;
}
