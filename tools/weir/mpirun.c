/* mpirun.c — the part of `weir replay` and `weir run` that runs under
 * mpirun: MPI options, rank 0 opening the source, the merged report, and
 * ending the job cleanly (or with MPI_Abort when a worker rank is stuck). */
#include "cli.h"

#include "weir/error.h"
#include "weir/log.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
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

int cli_run_mpi(const weir_engine_config *cfg, const weir_mpi_opts *mo, cli_source *cs, int *argc,
                char ***argv, int quiet)
{
    char err[1024] = "";
    int rank = 0, size = 0, rc = 1;
    if (weir_mpi_init(argc, argv, &rank, &size, err, sizeof err)) {
        fprintf(stderr, "weir: %s\n", err);
        return 1;
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
                  size, size - 2, mo->threads_per_rank, size - 1, weir_dist_name(cfg->dist));
    }
    weir_stats st;
    uint64_t lost = 0;
    int run = weir_mpi_run(cfg, mo, rank == 0 ? &src : NULL, &st, &lost, err, sizeof err);
    if (rank == 0) {
        int problems = cs->report(cs->ud, stderr);
        if (!quiet) weir_stats_print(&st, stderr);
        if (run && run != WEIR_ECLOSED) {
            fprintf(stderr, "weir: FAILED: %s\n", err);
            rc = 1;
        } else if (run || lost || problems || st.workers_total.rejected || st.reducer.rejected) {
            fprintf(stderr, "weir: finished with problems (see above)\n");
            rc = 3;
        } else {
            rc = 0;
        }
        if (lost || run == WEIR_ECLOSED) {
            /* A worker rank is stuck: MPI_Finalize would wait for it forever.
             * The source stays open: sends to the stuck rank may still point
             * into its buffers. */
            fprintf(stderr, "weir: ending the job (a worker rank did not finish)\n");
            weir_mpi_abort(rc);
        }
        cs->close(cs->ud);
    } else {
        if (run) fprintf(stderr, "weir (rank %d): FAILED: %s\n", rank, err);
        rc = run ? 1 : 0;
    }
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
