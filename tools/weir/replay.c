/* replay.c — `weir replay`: dranspose's replay, with C plug-ins.
 *
 * Flags follow dranspose (-w, -r, -f FILE..., -p, --nworkers); --port and
 * --keep-alive belong to the HTTP control plane, which is not part of this
 * build yet, and are refused with a message saying so. A progress bar
 * (input bytes read, events, rate) is drawn on stderr when it is a terminal
 * or with --progress; per-stage counters are printed at the end. */
#include "cli.h"

#include "weir/engine.h"
#include "weir/error.h"
#include "weir/log.h"
#include "weir/mpi.h"
#include "weir/replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-') goto bad;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "weir: %s expects a non-negative integer, got '%s'\n", opt, s ? s : "");
    return -1;
}

static void replay_help(FILE *f)
{
    fprintf(
        f,
        "usage: weir replay -w WORKER.so[:symbol] -r REDUCER.so[:symbol] -f FILE [FILE ...]\n"
        "                   [-p PARAMS] [--nworkers N] [options]\n\n"
        "Replays dranspose ingester dumps (.cbors, .cbors.gz) through a worker and a\n"
        "reducer plug-in. Several files are merged by event number; the first event is\n"
        "broadcast to every worker, every other event goes to one worker.\n\n"
        "  -w, --workerclass SPEC   worker plug-in: path.so or path.so:symbol\n"
        "  -r, --reducerclass SPEC  reducer plug-in\n"
        "  -f, --files FILE...      ingester dumps (all arguments up to the next option)\n"
        "  -p, --parameters FILE    dranspose parameter file: JSON [{\"name\":..,\"data\":..}]\n"
        "                           or its CBOR form\n"
        "      --param NAME=VALUE   set one parameter (repeatable; after -p)\n"
        "      --nworkers N         worker threads (default 2, as dranspose)\n"
        "      --queue-depth N      events queued per worker (default 8)\n"
        "      --drain              also replay events left in longer files after the\n"
        "                           first file ends (dranspose stops there)\n"
        "      --output-dir DIR     where the reducer writes (default: as the data says)\n"
        "      --progress / --no-progress   force the progress bar on or off\n"
        "      --quiet              no stats table\n"
        "      --port N, --keep-alive  HTTP control plane (not in this build yet)\n\n"
        "Under mpirun (-n N, N >= 3) the roles run on ranks: rank 0 reads the files,\n"
        "ranks 1..N-2 are workers, rank N-1 is the reducer.\n%s",
        CLI_MPI_HELP);
}

static void draw_progress(weir_engine *e, weir_source *src, int final)
{
    weir_stats st;
    weir_engine_stats(e, &st);
    uint64_t done = 0, total = 0;
    if (src->progress) src->progress(src->ud, &done, &total);
    double frac = total ? (double)done / (double)total : 0;
    if (final) frac = 1;
    int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double rate = st.wall_seconds > 0 ? (double)st.workers_total.events_in / st.wall_seconds : 0;
    fprintf(stderr, "\r[%s] %3.0f%%  %" PRIu64 " events  %" PRIu64 " results  %.0f ev/s ", bar,
            frac * 100, st.workers_total.events_in, st.reducer.results, rate);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* The replay as a cli_source for the shared MPI runner. */
typedef struct {
    const char **files;
    size_t nfiles;
    int drain;
    weir_replay *rp;
} replay_src;

static int rs_open(void *ud, weir_source *src, char *err, size_t errlen)
{
    replay_src *r = ud;
    int rc = weir_replay_open(r->files, r->nfiles, r->drain, &r->rp, err, errlen);
    if (!rc) *src = weir_replay_source(r->rp);
    return rc;
}

static int rs_report(void *ud, FILE *f)
{
    replay_src *r = ud;
    fprintf(f, "weir replay: %" PRIu64 " events from %zu file(s)\n", weir_replay_delivered(r->rp),
            r->nfiles);
    weir_replay_report(r->rp, f);
    return weir_replay_error(r->rp, NULL) || weir_replay_leftover(r->rp) ||
           weir_replay_duplicates(r->rp);
}

static void rs_close(void *ud)
{
    replay_src *r = ud;
    weir_replay_close(r->rp);
    r->rp = NULL;
}

int cmd_replay(int argc, char **argv)
{
    const char *wspec = NULL, *rspec = NULL, *pfile = NULL, *outdir = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    const char **sets = calloc((size_t)argc, sizeof *sets);
    size_t nfiles = 0, nsets = 0;
    uint64_t nworkers = 2, depth = 8, group = 1;
    weir_mpi_opts mo = CLI_MPI_DEFAULTS;
    int mrc;
    int dist = WEIR_DIST_PULL;
    int drain = 0, progress = isatty(2), quiet = 0, rc = 2;
    weir_plugin_handle *wh = NULL, *rh = NULL;
    weir_params *params = NULL;
    weir_replay *rp = NULL;
    weir_engine *eng = NULL;
    char err[1024];
    if (!files || !sets) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                      \
    if (!v) {                                                                                      \
        fprintf(stderr, "weir replay: %s needs a value\n", a);                                     \
        goto out;                                                                                  \
    }                                                                                              \
    i++;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            replay_help(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-w") || !strcmp(a, "--workerclass")) {
            NEEDV wspec = v;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reducerclass")) {
            NEEDV rspec = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--parameters")) {
            NEEDV pfile = v;
        } else if (!strcmp(a, "--param")) {
            NEEDV sets[nsets++] = v;
        } else if (!strcmp(a, "--output-dir")) {
            NEEDV outdir = v;
        } else if (!strcmp(a, "--nworkers")) {
            NEEDV if (cli_parse_u64(a, v, &nworkers) || nworkers < 1 || nworkers > 1024)
            {
                fprintf(stderr, "weir replay: --nworkers must be 1..1024\n");
                goto out;
            }
        } else if (!strcmp(a, "--queue-depth")) {
            NEEDV if (cli_parse_u64(a, v, &depth) || depth < 1) goto out;
        } else if (!strcmp(a, "--dist")) {
            NEEDV if ((dist = weir_dist_parse(v)) < 0)
            {
                fprintf(stderr, "weir replay: --dist: pull, round-robin, affinity or split\n");
                goto out;
            }
        } else if (!strcmp(a, "--affinity-group")) {
            NEEDV if (cli_parse_u64(a, v, &group) || group < 1) goto out;
        } else if ((mrc = cli_mpi_option(argc, argv, &i, &mo)) != 0) {
            if (mrc < 0) goto out;
        } else if (!strcmp(a, "--drain")) {
            drain = 1;
        } else if (!strcmp(a, "--progress")) {
            progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            progress = 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--port") || !strcmp(a, "--keep-alive")) {
            fprintf(stderr,
                    "weir replay: %s: the HTTP control plane is not part of this build "
                    "yet\n",
                    a);
            goto out;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--files")) {
            while (i + 1 < argc && argv[i + 1][0] != '-')
                files[nfiles++] = argv[++i];
            if (!nfiles) {
                fprintf(stderr, "weir replay: -f needs at least one file\n");
                goto out;
            }
        } else {
            fprintf(stderr, "weir replay: unknown option '%s'\n\n", a);
            replay_help(stderr);
            goto out;
        }
#undef NEEDV
    }
    if (!wspec || !rspec || !nfiles) {
        fprintf(stderr, "weir replay: -w, -r and -f are required\n\n");
        replay_help(stderr);
        goto out;
    }
    rc = 1;
    const weir_plugin *wp, *rpl;
    if (weir_plugin_load(wspec, WEIR_PLUGIN_WORKER, &wh, &wp, err, sizeof err) ||
        weir_plugin_load(rspec, WEIR_PLUGIN_REDUCER, &rh, &rpl, err, sizeof err)) {
        fprintf(stderr, "weir replay: %s\n", err);
        goto out;
    }
    WEIR_LOGI("replay", "worker plug-in '%s' from %s, reducer plug-in '%s' from %s", wp->name,
              wspec, rpl->name, rspec);
    params = weir_params_new();
    if (!params) goto out;
    if (pfile) {
        WEIR_LOGI("replay", "loading parameters from %s", pfile);
        if (weir_params_load_file(params, pfile, err, sizeof err)) {
            fprintf(stderr, "weir replay: %s\n", err);
            goto out;
        }
    }
    for (size_t i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "weir replay: --param expects NAME=VALUE, got '%s'\n", sets[i]);
            rc = 2;
            goto out;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - sets[i]), sets[i]);
        weir_params_set(params, name, eq + 1, strlen(eq + 1), 0, err, sizeof err);
    }
    weir_engine_config cfg = {
        .worker = wp,
        .reducer = rpl,
        .nworkers = (int)nworkers,
        .worker_queue_depth = depth,
        .dist = (weir_dist_mode)dist,
        .affinity_group = group,
        .params = params,
        .inputs = files,
        .ninputs = nfiles,
        .output_dir = outdir,
    };
    if (weir_mpi_launched()) {
        replay_src rsrc = {files, nfiles, drain, NULL};
        cli_source cs = {rs_open, rs_report, rs_close, &rsrc};
        rc = cli_run_mpi(&cfg, &mo, &cs, &argc, &argv, quiet);
        goto out;
    }
    if (weir_engine_new(&cfg, &eng, err, sizeof err)) {
        fprintf(stderr, "weir replay: %s\n", err);
        goto out;
    }
    const weir_params *ep = weir_engine_params(eng);
    for (size_t i = 0; i < weir_params_count(ep); i++) {
        char vb[128];
        const char *nm = weir_params_name(ep, i);
        WEIR_LOGI("replay", "parameter %s = %s", nm, weir_params_format(ep, nm, vb, sizeof vb));
    }
    if (weir_replay_open(files, nfiles, drain, &rp, err, sizeof err)) {
        fprintf(stderr, "weir replay: %s\n", err);
        goto out;
    }
    weir_source src = weir_replay_source(rp);
    if (weir_engine_start(eng, src)) {
        fprintf(stderr, "weir replay: could not start the engine\n");
        goto out;
    }
    while (!weir_engine_wait(eng, 100))
        if (progress) draw_progress(eng, &src, 0);
    if (progress) draw_progress(eng, &src, 1);
    weir_stats st;
    weir_engine_stats(eng, &st);
    if (!quiet) {
        fprintf(stderr, "weir replay: %" PRIu64 " events from %zu file(s), %d workers\n",
                weir_replay_delivered(rp), nfiles, (int)nworkers);
        weir_stats_print(&st, stderr);
    }
    weir_replay_report(rp, stderr);
    if (st.error) {
        fprintf(stderr, "weir replay: FAILED: %s\n", st.error_text);
        rc = 1;
    } else if (weir_replay_error(rp, NULL) || weir_replay_leftover(rp) ||
               weir_replay_duplicates(rp) || st.workers_total.rejected || st.reducer.rejected) {
        fprintf(stderr, "weir replay: finished with problems (see above)\n");
        rc = 3;
    } else {
        rc = 0;
    }
out:
    weir_engine_free(eng);
    weir_replay_close(rp);
    weir_params_free(params);
    weir_plugin_unload(wh);
    weir_plugin_unload(rh);
    free(files);
    free(sets);
    return rc;
}
