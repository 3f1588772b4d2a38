/* replay.c — `weir replay`: dranspose's replay, with C plug-ins.
 *
 * Flags follow dranspose (-w, -r, -f FILE..., -p, --nworkers). A progress
 * bar (input bytes read, events, rate) is drawn on stderr when it is a
 * terminal or with --progress; per-stage counters are printed at the end.
 *
 * With --port N / --http ADDR:PORT the HTTP control plane serves the run
 * (weir/http.h). The replay's source is then wrapped in a "paced" source:
 * it can wait for a start command (--paused), replay at most --rate events
 * per second, and be stopped; it also keeps the progress in atomics, so the
 * server's threads can read it while the source thread reads the files.
 * --keep-alive keeps serving after the end, as dranspose's replay does;
 * POST /api/v1/control/start then replays the files again (with the
 * parameters as they are now) until Ctrl-C. SIGINT and SIGTERM are blocked
 * in every thread and taken with sigtimedwait by the main thread, so no
 * signal handler and no global state are needed. */
#include "cli.h"

#include "weir/engine.h"
#include "weir/error.h"
#include "weir/log.h"
#include "weir/mpi.h"
#include "weir/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
        "      --keep-alive         keep serving HTTP after the end until Ctrl-C; a\n"
        "                           POST /api/v1/control/start replays again\n"
        "      --paused             wait for POST /api/v1/control/start before reading\n"
        "      --rate HZ            replay at most HZ events per second (default: no limit)\n\n"
        "%s\n"
        "Under mpirun (-n N, N >= 3) the roles run on ranks: rank 0 reads the files,\n"
        "ranks 1..N-2 are workers, rank N-1 is the reducer; --port serves from rank 0\n"
        "(or --http-rank R). Under mpirun a replay runs once: with --keep-alive the\n"
        "server stays up after it, but control/start does not replay again.\n%s",
        CLI_HTTP_HELP, CLI_MPI_HELP);
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

/* The replay's source as the control plane sees it: pausable, rate-limited,
 * stoppable, with its progress readable from any thread. One per command;
 * reset for every run. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    weir_source inner;
    int paused, stop; /* guarded by mu */
    int running;      /* a run is in progress (guarded by mu) */
    int rerun;        /* a start arrived after the end (keep-alive) */
    double rate, t0;
    uint64_t n;
    _Atomic uint64_t done, total;
    weir_http *http;
} paced;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void deadline_in(struct timespec *ts, double s)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double ns = (double)ts->tv_nsec + s * 1e9;
    ts->tv_sec += (time_t)(ns / 1e9);
    ts->tv_nsec = (long)fmod(ns, 1e9);
}

static int paced_next(void *ud, weir_event **ev)
{
    paced *p = ud;
    *ev = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->paused && p->http) weir_http_set_state(p->http, WEIR_HTTP_ARMED, NULL);
    int waited = p->paused;
    while (p->paused && !p->stop)
        pthread_cond_wait(&p->cv, &p->mu);
    if (waited && !p->stop && p->http) weir_http_set_state(p->http, WEIR_HTTP_RUNNING, NULL);
    if (p->rate > 0 && !p->stop) {
        if (p->n == 0) p->t0 = mono_now();
        double due = p->t0 + (double)p->n / p->rate;
        struct timespec dl;
        while (!p->stop && mono_now() < due) {
            deadline_in(&dl, due - mono_now());
            pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        }
    }
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) return WEIR_OK; /* ends the run */
    int rc = p->inner.next(p->inner.ud, ev);
    p->n++;
    if (p->inner.progress) {
        uint64_t d = 0, t = 0;
        p->inner.progress(p->inner.ud, &d, &t);
        atomic_store(&p->done, d);
        atomic_store(&p->total, t);
    }
    return rc;
}

static void paced_progress(void *ud, uint64_t *done, uint64_t *total)
{
    paced *p = ud;
    *done = atomic_load(&p->done);
    *total = atomic_load(&p->total);
}

/* The control plane's hook: the server has already told the engine to stop
 * or abort; here the source's own waits are cut short, and start releases
 * a paused replay or asks for a new one after the end. */
static int paced_control(void *ud, weir_http_cmd cmd, char *err, size_t errlen)
{
    paced *p = ud;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (cmd == WEIR_HTTP_START) {
        if (p->running && p->paused) {
            p->paused = 0;
        } else if (!p->running) {
            p->rerun = 1;
        } else {
            snprintf(err, errlen, "already running");
            rc = WEIR_EINVAL;
        }
    } else if (p->running) {
        p->stop = 1;
    } else {
        snprintf(err, errlen, "no acquisition running");
        rc = WEIR_EINVAL;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Waits (keep-alive) until a start command (1) or a signal (0). */
static int wait_rerun(paced *p, const sigset_t *sigs)
{
    for (;;) {
        struct timespec ts = {0, 100 * 1000000L};
        if (sigtimedwait(sigs, NULL, &ts) > 0) return 0;
        pthread_mutex_lock(&p->mu);
        int again = p->rerun;
        p->rerun = 0;
        pthread_mutex_unlock(&p->mu);
        if (again) return 1;
    }
}

/* The replay as a cli_source for the shared MPI runner. */
typedef struct {
    const char **files;
    size_t nfiles;
    int drain;
    weir_replay *rp;
    paced *pc; /* with the control plane: the files through the paced source */
    int paused;
    double rate;
} replay_src;

static int rs_open(void *ud, weir_source *src, char *err, size_t errlen)
{
    replay_src *r = ud;
    int rc = weir_replay_open(r->files, r->nfiles, r->drain, &r->rp, err, errlen);
    if (!rc) *src = weir_replay_source(r->rp);
    if (!rc && r->pc) {
        paced *p = r->pc;
        pthread_mutex_lock(&p->mu);
        p->inner = *src;
        p->paused = r->paused;
        p->stop = 0;
        p->running = 1;
        p->rate = r->rate;
        p->n = 0;
        pthread_mutex_unlock(&p->mu);
        *src = (weir_source){paced_next, paced_progress, p};
    }
    return rc;
}

static void set_http(void *ud, weir_http *h)
{
    paced *p = ud;
    pthread_mutex_lock(&p->mu);
    p->http = h;
    pthread_mutex_unlock(&p->mu);
    weir_http_set_state(h, p->paused ? WEIR_HTTP_ARMED : WEIR_HTTP_RUNNING, NULL);
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
    if (r->pc) {
        pthread_mutex_lock(&r->pc->mu);
        r->pc->running = 0;
        pthread_mutex_unlock(&r->pc->mu);
    }
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
    int keep_alive = 0, paused = 0, hrc;
    double rate = 0;
    cli_http_opts ho = {0};
    weir_http *http = NULL;
    weir_results *results = NULL;
    paced pc = {0};
    pthread_mutex_init(&pc.mu, NULL);
    pthread_cond_init(&pc.cv, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
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
        } else if ((hrc = cli_http_option(argc, argv, &i, &ho)) != 0) {
            if (hrc < 0) goto out;
        } else if (!strcmp(a, "--keep-alive")) {
            keep_alive = 1;
        } else if (!strcmp(a, "--paused")) {
            paused = 1;
        } else if (!strcmp(a, "--rate")) {
            NEEDV char *end;
            rate = strtod(v, &end);
            if (*end || !(rate > 0) || !isfinite(rate)) {
                fprintf(stderr, "weir replay: --rate expects events per second > 0, got '%s'\n", v);
                goto out;
            }
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
    if ((keep_alive || paused) && !ho.enabled) {
        fprintf(stderr, "weir replay: --keep-alive and --paused need --port or --http\n");
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
        replay_src rsrc = {files, nfiles, drain, NULL, ho.enabled ? &pc : NULL, paused, rate};
        cli_source cs = {NULL, rs_open, rs_report, rs_close, &rsrc};
        cli_mpi_http mh = {.ho = &ho,
                           .verb = "replay",
                           .keep_alive = keep_alive,
                           .control = paced_control,
                           .progress = paced_progress,
                           .ud = &pc,
                           .set_http = set_http};
        rc = cli_run_mpi(&cfg, &mo, &cs, ho.enabled ? &mh : NULL, &argc, &argv, quiet);
        goto out;
    }
    if (ho.enabled) {
        /* Block the signals before any thread starts, so every thread
         * inherits the mask and only sigtimedwait below takes them. */
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        results = weir_results_new();
        weir_http_config hc = {
            .control = paced_control, .progress = paced_progress, .hook_ud = &pc};
        if (!results || cli_http_start(&ho, "replay", &hc, &http)) goto out;
        pc.http = http;
        cfg.results = results;
    }
    for (int run = 0;; run++) {
        weir_params *now = run && http ? weir_http_params(http) : NULL;
        if (now) cfg.params = now;
        int erc = weir_engine_new(&cfg, &eng, err, sizeof err);
        weir_params_free(now);
        cfg.params = params;
        if (erc) {
            fprintf(stderr, "weir replay: %s\n", err);
            goto out;
        }
        if (!run) {
            const weir_params *ep = weir_engine_params(eng);
            for (size_t i = 0; i < weir_params_count(ep); i++) {
                char vb[128];
                const char *nm = weir_params_name(ep, i);
                WEIR_LOGI("replay", "parameter %s = %s", nm,
                          weir_params_format(ep, nm, vb, sizeof vb));
            }
        }
        if (weir_replay_open(files, nfiles, drain, &rp, err, sizeof err)) {
            fprintf(stderr, "weir replay: %s\n", err);
            goto out;
        }
        weir_source src = weir_replay_source(rp);
        pthread_mutex_lock(&pc.mu);
        pc.inner = src;
        pc.paused = paused && run == 0;
        pc.stop = 0;
        pc.running = 1;
        pc.rate = rate;
        pc.n = 0;
        pthread_mutex_unlock(&pc.mu);
        atomic_store(&pc.done, 0);
        atomic_store(&pc.total, 0);
        if (http) {
            weir_results_clear(results);
            weir_http_attach(http, eng, results);
            weir_http_set_state(http, pc.paused ? WEIR_HTTP_ARMED : WEIR_HTTP_RUNNING, NULL);
        }
        weir_source run_src = ho.enabled ? (weir_source){paced_next, paced_progress, &pc} : src;
        if (weir_engine_start(eng, run_src)) {
            fprintf(stderr, "weir replay: could not start the engine\n");
            goto out;
        }
        while (!weir_engine_wait(eng, 100)) {
            if (progress) draw_progress(eng, &run_src, 0);
            struct timespec zero = {0, 0};
            if (http && sigtimedwait(&sigs, NULL, &zero) > 0) {
                fprintf(stderr, "\nweir replay: interrupted: stopping\n");
                paced_control(&pc, WEIR_HTTP_STOP, err, sizeof err);
                weir_engine_stop(eng);
                keep_alive = 0;
            }
        }
        if (progress) draw_progress(eng, &run_src, 1);
        pthread_mutex_lock(&pc.mu);
        pc.running = 0;
        pc.rerun = 0;
        pthread_mutex_unlock(&pc.mu);
        weir_stats st;
        weir_engine_stats(eng, &st);
        if (http) {
            weir_http_detach(http);
            weir_http_set_state(http, st.error ? WEIR_HTTP_ERROR : WEIR_HTTP_FINISHED,
                                st.error ? st.error_text : NULL);
        }
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
        weir_engine_free(eng);
        eng = NULL;
        weir_replay_close(rp);
        rp = NULL;
        if (!keep_alive) break;
        fprintf(stderr,
                "weir replay: still serving http://%s:%d/ (Ctrl-C to end; POST "
                "/api/v1/control/start replays again)\n",
                ho.addr, weir_http_port(http));
        if (!wait_rerun(&pc, &sigs)) break;
    }
out:
    weir_http_stop(http); /* before the engine: no request may still use it */
    weir_engine_free(eng);
    weir_results_free(results);
    pthread_mutex_destroy(&pc.mu);
    pthread_cond_destroy(&pc.cv);
    weir_replay_close(rp);
    weir_params_free(params);
    weir_plugin_unload(wh);
    weir_plugin_unload(rh);
    free(files);
    free(sets);
    return rc;
}
