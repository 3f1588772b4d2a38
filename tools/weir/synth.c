/* synth.c — `weir synth`: write a synthetic STINS ingester dump. */
#include "cli.h"

#include "weir/synth.h"

#include <stdio.h>
#include <string.h>

int cmd_synth(int argc, char **argv)
{
    weir_synth_config c = {.stream = "xrd",
                           .frames = 100,
                           .height = 256,
                           .width = 256,
                           .dtype = WEIR_DT_U16,
                           .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: weir synth -o FILE.cbors [--frames N] [--shape HxW] [--dtype uint16]\n"
                   "                  [--compression none|bslz4] [--seed S] [--stream NAME]\n"
                   "                  [--filename F] [--mean M]\n\n"
                   "Writes a dranspose ingester dump of one STINS stream: header (filename F),\n"
                   "N images of low photon counts with hot pixels, series_end. Fixed seed.\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "weir synth: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o"))
            c.path = v;
        else if (!strcmp(a, "--frames")) {
            if (cli_parse_u64(a, v, &c.frames)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_u64(a, v, &c.seed)) return 2;
        } else if (!strcmp(a, "--shape")) {
            if (sscanf(v, "%zux%zu", &c.height, &c.width) != 2 || !c.height || !c.width) {
                fprintf(stderr, "weir synth: --shape expects HxW, e.g. 256x256\n");
                return 2;
            }
        } else if (!strcmp(a, "--dtype")) {
            weir_dtype dt;
            if (weir_dtype_parse(v, &dt) ||
                (dt.kind != WEIR_DT_U8 && dt.kind != WEIR_DT_U16 && dt.kind != WEIR_DT_U32 &&
                 dt.kind != WEIR_DT_F32 && dt.kind != WEIR_DT_F64)) {
                fprintf(stderr, "weir synth: --dtype: uint8, uint16, uint32, float32 or float64\n");
                return 2;
            }
            c.dtype = dt.kind;
        } else if (!strcmp(a, "--compression")) {
            if (!strcmp(v, "none"))
                c.compression = WEIR_STINS_COMP_NONE;
            else if (!strcmp(v, "bslz4"))
                c.compression = WEIR_STINS_COMP_BSLZ4;
            else {
                fprintf(stderr, "weir synth: --compression none or bslz4\n");
                return 2;
            }
        } else if (!strcmp(a, "--stream"))
            c.stream = v;
        else if (!strcmp(a, "--filename"))
            c.filename = v;
        else if (!strcmp(a, "--mean")) {
            if (sscanf(v, "%lf", &c.mean_counts) != 1) return 2;
        } else {
            fprintf(stderr, "weir synth: unknown option '%s'\n", a);
            return 2;
        }
        (void)u;
    }
    if (!c.path) {
        fprintf(stderr, "weir synth: -o FILE is required\n");
        return 2;
    }
    char err[512];
    if (weir_synth_write(&c, err, sizeof err)) {
        fprintf(stderr, "weir synth: %s\n", err);
        return 1;
    }
    printf("wrote %s: %llu frames %zux%zu %s, %s\n", c.path, (unsigned long long)c.frames, c.height,
           c.width, weir_dtype_name(c.dtype),
           c.compression == WEIR_STINS_COMP_BSLZ4 ? "bslz4" : "uncompressed");
    return 0;
}
