/* mpirun.c — the part of `weir replay` and `weir run` that runs under
 * mpirun: MPI options, rank 0 opening the source, the merged report, and
 * ending the job cleanly (or with MPI_Abort when a worker rank is stuck).
 * With --port/--http, one rank (--http-rank, default 0) serves the control
 * plane: the server's hooks read merged counters and the source's progress
 * through weir_mpi_cp, and commands go to the ranks that act on them. */
#include "cli.h"

#include "weir/error.h"
#include "weir/log.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int cli_mpi_option(int argc, char **argv, int *i, weir_mpi_opts *o)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    uint64_t u;
    if (!strcmp(a, "--continue-without-dead")) {
        o->continue_without = 1;
        return 1;
    }
    if (strcmp(a, "--threads-per-rank") && strcmp(a, "--window") && strcmp(a, "--rank-timeout"))
        return 0;
    if (!v) {
        fprintf(stderr, "weir: %s needs a value\n", a);
        return -1;
    }
    (*i)++;
    if (!strcmp(a, "--rank-timeout")) {
        if (sscanf(v, "%lf", &o->rank_timeout_s) != 1 || o->rank_timeout_s <= 0) {
            fprintf(stderr, "weir: --rank-timeout expects seconds > 0\n");
            return -1;
        }
        return 1;
    }
    if (cli_parse_u64(a, v, &u) || u < 1 || u > 4096) {
        fprintf(stderr, "weir: %s expects 1..4096\n", a);
        return -1;
    }
    if (!strcmp(a, "--window"))
        o->window = (int)u;
    else
        o->threads_per_rank = (int)u;
    return 1;
}

/* The control plane's glue on every rank: the server (serving rank) and
 * the source's hooks (rank 0). */
typedef struct {
    const cli_mpi_http *mh;
    weir_http *http;
    weir_results *results;
    weir_mpi_cp *cp;
} mpi_http;

static int mh_source_control(void *ud, weir_mpi_cmd cmd)
{
    mpi_http *x = ud;
    char err[256];
    weir_http_cmd c = cmd == WEIR_MPI_START  ? WEIR_HTTP_START
                      : cmd == WEIR_MPI_STOP ? WEIR_HTTP_STOP
                                             : WEIR_HTTP_ABORT;
    return x->mh->control ? x->mh->control(x->mh->ud, c, err, sizeof err) : 0;
}

static void mh_source_progress(void *ud, uint64_t *done, uint64_t *total)
{
    mpi_http *x = ud;
    *done = *total = 0;
    if (x->mh->progress) x->mh->progress(x->mh->ud, done, total);
}

static size_t mh_source_streams(void *ud, weir_live_stream_stats *out, size_t cap)
{
    mpi_http *x = ud;
    return x->mh->streams ? x->mh->streams(x->mh->ud, out, cap) : 0;
}

static size_t mh_streams(void *ud, weir_live_stream_stats *out, size_t cap)
{
    mpi_http *x = ud;
    return weir_mpi_cp_streams(x->cp, out, cap);
}

static void mh_attach(void *ud, weir_engine *e)
{
    mpi_http *x = ud;
    if (e)
        weir_http_attach(x->http, e, x->results);
    else
        weir_http_detach(x->http);
}

/* The server's hooks on the serving rank. */
static int mh_control(void *ud, weir_http_cmd cmd, char *err, size_t errlen)
{
    mpi_http *x = ud;
    if (cmd == WEIR_HTTP_START && x->mh->no_start) {
        snprintf(err, errlen, "%s", x->mh->no_start);
        return WEIR_EINVAL;
    }
    weir_mpi_cmd c = cmd == WEIR_HTTP_START  ? WEIR_MPI_START
                     : cmd == WEIR_HTTP_STOP ? WEIR_MPI_STOP
                                             : WEIR_MPI_ABORT;
    int rc = weir_mpi_cp_control(x->cp, c);
    if (rc)
        snprintf(err, errlen, "%s",
                 rc == WEIR_EINVAL ? "no acquisition running (under mpirun a replay runs once)"
                                   : "the source refused");
    return rc;
}

static void mh_progress(void *ud, uint64_t *done, uint64_t *total)
{
    mpi_http *x = ud;
    weir_mpi_cp_progress(x->cp, done, total);
}

static int mh_stats(void *ud, weir_stats *st)
{
    mpi_http *x = ud;
    return weir_mpi_cp_stats(x->cp, st);
}

int cli_run_mpi(const weir_engine_config *cfg, const weir_mpi_opts *mo0, cli_source *cs,
                const cli_mpi_http *mh, int *argc, char ***argv, int quiet)
{
    char err[1024] = "";
    int rank = 0, size = 0, rc = 1;
    weir_mpi_opts mo = *mo0;
    mpi_http x = {mh, NULL, NULL, NULL};
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (weir_mpi_init(argc, argv, &rank, &size, err, sizeof err)) {
        fprintf(stderr, "weir: %s\n", err);
        return 1;
    }
    int serving = mh && mh->ho->enabled && rank == mh->ho->http_rank;
    if (mh && mh->ho->enabled) {
        /* every rank builds the control plane (it duplicates a communicator) */
        if (serving && mh->keep_alive) pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        if (serving && !(x.results = weir_results_new())) weir_mpi_abort(1);
        weir_mpi_cp_config cc = {
            .http_rank = mh->ho->http_rank,
            .results = x.results,
            .source_control = mh_source_control,
            .progress = mh_source_progress,
            .streams = mh_source_streams,
            .attach = mh_attach,
            .ud = &x,
        };
        x.cp = weir_mpi_cp_new(&cc, err, sizeof err);
        if (!x.cp) {
            if (rank == 0) fprintf(stderr, "weir: %s\n", err);
            weir_mpi_abort(2);
        }
        mo.cp = x.cp;
        if (serving) {
            weir_http_config hc = {.control = mh_control,
                                   .progress = mh_progress,
                                   .stats = mh_stats,
                                   .streams = mh_streams,
                                   .hook_ud = &x};
            if (cli_http_start(mh->ho, mh->verb, &hc, &x.http)) weir_mpi_abort(1);
            fprintf(stderr, "weir %s: rank %d serves the control plane\n", mh->verb, rank);
            if (rank == 0 && mh->set_http) mh->set_http(mh->ud, x.http);
            if (!(rank == 0 && mh->set_http) && !cs->next)
                weir_http_set_state(x.http, WEIR_HTTP_RUNNING, NULL);
        }
    }
    int multi = cs->next != NULL, ended = 0;
    weir_http_state last = WEIR_HTTP_IDLE;
    char last_err[256] = "";
    rc = 0;
    for (int acq = 0;; acq++) {
        weir_engine_config c = *cfg;
        weir_params *now = NULL;
        if (multi) {
            /* rank 0 waits for the acquisition; every rank learns whether
             * it comes, then takes the serving rank's parameters */
            weir_mpi_cp_idle_begin(x.cp);
            if (serving) weir_http_set_state(x.http, WEIR_HTTP_ARMED, NULL);
            int go = 0;
            if (rank == 0 && !ended) {
                int n = cs->next(cs->ud, acq);
                if (n < 0) rc = 1;
                go = n > 0;
            }
            if (!weir_mpi_cp_next(x.cp, go)) {
                if (serving && acq > 0) weir_http_set_state(x.http, last, last_err);
                break;
            }
            now = weir_mpi_cp_share_params(x.cp, serving ? weir_http_params(x.http) : NULL,
                                           cfg->params);
            if (now) c.params = now;
            if (serving) {
                weir_results_clear(x.results);
                weir_http_set_state(x.http, WEIR_HTTP_RUNNING, NULL);
            }
        }
        weir_source src = {0};
        if (rank == 0) {
            if (cs->open(cs->ud, &src, err, sizeof err)) {
                fprintf(stderr, "weir: %s\n", err);
                weir_mpi_abort(1);
            }
            WEIR_LOGI("mpi",
                      "%d ranks: rank 0 source, ranks 1..%d workers (%d thread(s) each), rank %d "
                      "reducer; distribution %s",
                      size, size - 2, mo.threads_per_rank, size - 1, weir_dist_name(cfg->dist));
        }
        weir_stats st;
        uint64_t lost = 0;
        int run = weir_mpi_run(&c, &mo, rank == 0 ? &src : NULL, &st, &lost, err, sizeof err);
        weir_params_free(now);
        if (serving) {
            weir_stats *all = calloc(1, sizeof *all);
            int have = all && weir_mpi_cp_stats(x.cp, all);
            int failed = have && all->error;
            last = failed ? WEIR_HTTP_ERROR : WEIR_HTTP_FINISHED;
            snprintf(last_err, sizeof last_err, "%s", failed ? all->error_text : "");
            weir_http_set_state(x.http, last, failed ? last_err : NULL);
            free(all);
        }
        if (rank == 0) {
            int problems = !multi || lost || run == WEIR_ECLOSED ? cs->report(cs->ud, stderr) : 0;
            if (multi && !quiet)
                fprintf(stderr, "weir: acquisition %d: %" PRIu64 " events\n", acq + 1,
                        st.source.events_in);
            if (!quiet) weir_stats_print(&st, stderr);
            if (run && run != WEIR_ECLOSED) {
                fprintf(stderr, "weir: FAILED: %s\n", err);
                rc = 1;
            } else if (run || lost || problems || st.workers_total.rejected ||
                       st.reducer.rejected) {
                fprintf(stderr, "weir: finished with problems (see above)\n");
                if (rc != 1) rc = 3;
            }
            if (lost || run == WEIR_ECLOSED) {
                /* A worker rank is stuck: MPI_Finalize would wait for it forever.
                 * The source stays open: sends to the stuck rank may still point
                 * into its buffers. */
                fprintf(stderr, "weir: ending the job (a worker rank did not finish)\n");
                weir_mpi_abort(rc);
            }
            if (run || st.aborted) ended = 1; /* no further acquisition */
        } else {
            if (run) fprintf(stderr, "weir (rank %d): FAILED: %s\n", rank, err);
            if (run) rc = 1;
        }
        if (!multi) break;
    }
    if (rank == 0) {
        if (multi && cs->report(cs->ud, stderr) && rc != 1) {
            fprintf(stderr, "weir: finished with problems (see above)\n");
            rc = 3;
        }
        cs->close(cs->ud);
    }
    if (x.cp && mh->keep_alive) {
        /* keep serving until a signal; the other ranks sleep until then */
        if (serving) {
            fprintf(stderr, "weir %s: still serving http://%s:%d/ (Ctrl-C to end)\n", mh->verb,
                    mh->ho->addr, weir_http_port(x.http));
            while (sigwaitinfo(&sigs, NULL) < 0)
                ;
            weir_mpi_cp_release(x.cp);
        } else {
            weir_mpi_cp_wait_release(x.cp);
        }
    }
    weir_http_stop(x.http);
    weir_mpi_cp_free(x.cp);
    weir_results_free(x.results);
    weir_mpi_finalize();
    return rc;
}

cJSON *cli_read_json(const char *verb, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "weir %s: cannot open %s\n", verb, path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char chunk[4096];
    size_t got;
    while (mem && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, got, mem);
    fclose(f);
    if (mem) fclose(mem);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    if (!cJSON_IsObject(j)) {
        const char *at = cJSON_GetErrorPtr();
        fprintf(stderr, "weir %s: %s: not a JSON object (near offset %ld)\n", verb, path,
                at && text && at >= text && at <= text + len ? (long)(at - text) : -1L);
        cJSON_Delete(j);
        j = NULL;
    }
    free(text);
    return j;
}
