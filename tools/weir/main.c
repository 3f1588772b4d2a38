/* main.c — the `weir` command-line tool: verb dispatch and help.
 *
 * Each verb lives in its own file (replay.c, inspect.c, synth.c) and takes
 * argc/argv after the verb. Exit codes: 0 success, 1 failure, 2 usage error,
 * 3 the run finished but something was rejected, left over or malformed
 * (details are printed). */
#include "cli.h"

#include "weir/log.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} verbs[] = {
    {"run", cmd_run, "run a live pipeline from a JSON config (ZeroMQ streams)"},
    {"replay", cmd_replay, "replay ingester dumps through worker and reducer plug-ins"},
    {"inspect", cmd_inspect, "summarise a capture; export a decoded frame as .npy"},
    {"synth", cmd_synth, "write a synthetic STINS capture (fixed seed)"},
    {"record", cmd_record, "record live streams to a .cbors dump (or raw captures)"},
    {"tags", cmd_tags, "photon time tags: info, export, correlation, lifetime, counting"},
    {"sim", cmd_sim, "serve STINS scans over ZeroMQ (captures or synthetic; faults on purpose)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: weir <verb> [options]   (weir <verb> --help for details)\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\nenvironment: LOG_LEVEL=TRACE|DEBUG|INFO|WARNING|ERROR (default INFO)\n"
               "exit codes: 0 ok, 1 failed, 2 usage, 3 finished with rejected/left-over/"
               "malformed input\n");
}

int main(int argc, char **argv)
{
    weir_log_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weir: unknown verb '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
