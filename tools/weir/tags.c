/* tags.c — `weir tags SUBVERB`: photon time-tag files (info, export,
 * correlation, lifetime, counting). Dispatch only; the readers' verbs are in
 * tags_io.c and the instruments' verbs in tags_instr.c. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} subverbs[] = {
    {"info", cli_tags_info, "format, header tags, resolutions, record counts by kind"},
    {"export", cli_tags_export, "decoded events as .npy arrays (time, channel, micro, kind)"},
    {"corr", cli_tags_corr, "correlation histogram (exact; both directions)"},
    {"lifetime", cli_tags_lifetime, "lifetime histogram (T3 micro-time or sync-referenced T2)"},
    {"count", cli_tags_count, "coincidences and count-rate trace"},
    {"recipe", cli_tags_recipe, "instruments composed by a JSON recipe"},
    {"live", cli_tags_live, "a recipe as a live pipeline: clips as events, histograms served"},
};

int cmd_tags(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: weir tags <subverb> FILE [options]   (weir tags <subverb> --help)\n\n");
        for (size_t i = 0; i < sizeof subverbs / sizeof subverbs[0]; i++)
            fprintf(f, "  %-9s %s\n", subverbs[i].name, subverbs[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof subverbs / sizeof subverbs[0]; i++)
        if (!strcmp(argv[1], subverbs[i].name)) return subverbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weir tags: unknown subverb '%s'\n", argv[1]);
    return 2;
}
