/* bench_mpi.c — rank-to-rank throughput of weir's MPI transport for 4 MB
 * frames, against a plain MPI_Send/MPI_Recv loop between the same two ranks
 * in the same run. Run with: mpirun -n 3 bench_mpi [frames=300] [plugin dir]
 * (rank 0 source, rank 1 worker, rank 2 reducer).
 *
 * The capture (2048×1024 uint16 frames, 4 MiB each, fixed seed) is written
 * once to /tmp by rank 0. The weir run replays it through the no-op worker:
 * every frame crosses from rank 0 to rank 1 as a header plus the frame bytes.
 * Checked before timing: every event arrived (worker event count). */
#include "weir/engine.h"
#include "weir/error.h"
#include "weir/log.h"
#include "weir/mpi.h"
#include "weir/replay.h"
#include "weir/synth.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H 2048
#define W 1024

static int tr_result(weir_pctx *c, void *self, const weir_result *r)
{
    return 0;
}

static const weir_plugin null_reducer = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "bench_null",
    .process_result = tr_result,
};

int main(int argc, char **argv)
{
    int rank, size;
    char err[512];
    weir_log_set_level(WEIR_LOG_WARNING);
    if (weir_mpi_init(&argc, &argv, &rank, &size, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (size < 3) {
        if (!rank) fprintf(stderr, "run with mpirun -n 3\n");
        weir_mpi_finalize();
        return 1;
    }
    int frames = argc > 1 ? atoi(argv[1]) : 300;
    const char *pdir = argc > 2 ? argv[2] : "build/examples";
    size_t bytes = (size_t)H * W * 2;
    char cap[256];
    snprintf(cap, sizeof cap, "/tmp/weir-bench-mpi-%d-%dx%d.cbors", frames, H, W);
    if (rank == 0 && access(cap, R_OK) != 0) {
        weir_synth_config c = {.path = cap,
                               .stream = "det",
                               .filename = "",
                               .frames = (uint64_t)frames,
                               .height = H,
                               .width = W,
                               .dtype = WEIR_DT_U16,
                               .seed = 42};
        if (weir_synth_write(&c, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            weir_mpi_abort(1);
        }
    }
    /* plain loop: rank 0 → rank 1, best of 3 */
    char *buf = malloc(bytes);
    memset(buf, 1, bytes);
    double plain = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < frames && rank < 2; i++) {
            if (rank == 0)
                MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
            else
                MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        int ack = 0;
        if (rank == 1) MPI_Send(&ack, 1, MPI_INT, 0, 2, MPI_COMM_WORLD);
        if (rank == 0) MPI_Recv(&ack, 1, MPI_INT, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        double dt = MPI_Wtime() - t0;
        if (dt < plain) plain = dt;
    }
    free(buf);
    /* weir: the same frames through the transport, best of 3 */
    char spec[1024];
    snprintf(spec, sizeof spec, "%s/noop_worker.so", pdir);
    weir_plugin_handle *wh;
    const weir_plugin *wp;
    if (weir_plugin_load(spec, WEIR_PLUGIN_WORKER, &wh, &wp, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        weir_mpi_abort(1);
    }
    double best = 1e30;
    uint64_t got = 0;
    for (int rep = 0; rep < 3; rep++) {
        weir_replay *rp = NULL;
        weir_source src = {0};
        const char *files[1] = {cap};
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            if (weir_replay_open(files, 1, 0, &rp, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                weir_mpi_abort(1);
            }
            src = weir_replay_source(rp);
        }
        weir_engine_config cfg = {.worker = wp, .reducer = &null_reducer};
        weir_mpi_opts mo = {.threads_per_rank = 1, .window = 4, .rank_timeout_s = 60};
        weir_stats st;
        uint64_t lost;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        int rc = weir_mpi_run(&cfg, &mo, rank == 0 ? &src : NULL, &st, &lost, err, sizeof err);
        double dt = MPI_Wtime() - t0;
        if (rc) {
            fprintf(stderr, "rank %d: %s\n", rank, err);
            weir_mpi_abort(1);
        }
        if (rank == 0) {
            got = st.workers_total.events_in;
            if (got != (uint64_t)frames + 2) { /* header + frames + series_end */
                fprintf(stderr, "CHECK FAILED: worker saw %llu events, expected %d\n",
                        (unsigned long long)got, frames + 2);
                weir_mpi_abort(1);
            }
        }
        if (dt < best) best = dt;
        weir_replay_close(rp);
    }
    if (rank == 0) {
        double gp = (double)frames * (double)bytes / plain / 1e9;
        double gw = (double)frames * (double)bytes / best / 1e9;
        printf("rank 0 -> rank 1, %d frames of %.1f MB (best of 3):\n", frames, bytes / 1e6);
        printf("  plain MPI_Send/MPI_Recv loop   %7.2f GB/s\n", gp);
        printf("  weir replay, MPI transport     %7.2f GB/s  (%.2f of the plain loop; includes "
               "reading the capture)\n",
               gw, gw / gp);
    }
    weir_plugin_unload(wh);
    weir_mpi_finalize();
    return 0;
}
