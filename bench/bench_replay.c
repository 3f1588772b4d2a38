/* bench_replay.c — replay throughput against a plain C loop, same run.
 *
 * Generates (once, fixed seed) a dump of N uint16 frames of H×W, maps it,
 * and measures:
 *   reference: a plain single-core C loop summing the same pixel bytes from
 *              memory (frame pointers collected beforehand, not timed);
 *   replay with (a) the no-op worker, (b) the ROI-mean worker, (c) the
 *              full-frame-sum worker, with 1 and 2 worker threads, through a
 *              built-in reducer that totals the results.
 * Before timing, the frame-sum replay's total is checked against the
 * reference total. Prints events/s, GB/s of pixel data and the ratio to the
 * reference. usage: bench_replay [frames=20000] [height=256] [width=256]
 *                   [plugin dir=build/examples] [capture dir=/tmp] */
#include "weir/cbors.h"
#include "weir/engine.h"
#include "weir/error.h"
#include "weir/log.h"
#include "weir/replay.h"
#include "weir/stins.h"
#include "weir/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A built-in reducer: registers through the same descriptor as plug-ins. */
typedef struct {
    double total;
    uint64_t n;
} tot;

static double g_total; /* written by finish, read after the run (single run at a time) */
static uint64_t g_n;

static int tr_init(weir_pctx *c, void **self)
{
    *self = calloc(1, sizeof(tot));
    return *self ? 0 : WEIR_ENOMEM;
}
static int tr_result(weir_pctx *c, void *self, const weir_result *r)
{
    tot *t = self;
    double v;
    if (c->host->result_get_f64(r, "sum", &v) == 0 ||
        c->host->result_get_f64(r, "intensity", &v) == 0) {
        t->total += v;
        t->n++;
    }
    return 0;
}
static int tr_finish(weir_pctx *c, void *self)
{
    tot *t = self;
    g_total = t->total;
    g_n = t->n;
    return 0;
}
static const weir_plugin total_reducer = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_REDUCER, .name = "bench_total",
    .init = tr_init,    .process_result = tr_result, .finish = tr_finish,
    .destroy = free,
};

static int run_replay(const char *cap, const weir_plugin *w, int nworkers, double *secs,
                      uint64_t *events)
{
    char err[512];
    weir_params *p = weir_params_new();
    weir_params_set(p, "till_x", "128", 3, 0, NULL, 0);
    weir_params_set(p, "from_y", "128", 3, 0, NULL, 0);
    weir_engine_config cfg = {.worker = w,
                              .reducer = &total_reducer,
                              .nworkers = nworkers,
                              .params = p,
                              .worker_queue_depth = 16};
    weir_engine *e;
    weir_replay *r;
    if (weir_engine_new(&cfg, &e, err, sizeof err) ||
        weir_replay_open(&cap, 1, 0, &r, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    double t0 = now();
    weir_engine_start(e, weir_replay_source(r));
    weir_engine_wait(e, -1);
    *secs = now() - t0;
    weir_stats st;
    weir_engine_stats(e, &st);
    *events = st.source.events_in;
    int rc = weir_engine_status(e) || st.workers_total.rejected;
    weir_engine_free(e);
    weir_replay_close(r);
    weir_params_free(p);
    return rc;
}

int main(int argc, char **argv)
{
    weir_log_set_level(WEIR_LOG_WARNING);
    uint64_t frames = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
    size_t h = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
    size_t w = argc > 3 ? strtoul(argv[3], NULL, 10) : 256;
    const char *pdir = argc > 4 ? argv[4] : "build/examples";
    const char *cdir = argc > 5 ? argv[5] : "/tmp";
    char cap[1024], err[512];
    snprintf(cap, sizeof cap, "%s/weir-bench-%llu-%zux%zu-s42.cbors", cdir,
             (unsigned long long)frames, h, w);
    if (access(cap, R_OK) != 0) {
        fprintf(stderr, "generating %s ...\n", cap);
        weir_synth_config c = {.path = cap,
                               .stream = "det",
                               .filename = "",
                               .frames = frames,
                               .height = h,
                               .width = w,
                               .dtype = WEIR_DT_U16,
                               .seed = 42};
        if (weir_synth_write(&c, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    /* Collect frame pointers (not timed) for the reference loop. */
    weir_cbors_reader *rd;
    if (weir_cbors_open(cap, &rd, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const weir_u16u **px = calloc(frames, sizeof *px);
    weir_event **keep = calloc(frames + 2, sizeof *keep);
    uint64_t nf = 0, nev = 0;
    weir_event *ev;
    while (weir_cbors_next_event(rd, &ev) == 0 && ev) {
        keep[nev++] = ev;
        if (ev->streams[0].msg.nparts == 2 && nf < frames)
            px[nf++] = (const weir_u16u *)weir_buf_data(ev->streams[0].msg.parts[1]);
    }
    size_t npx = h * w;
    double bytes = (double)nf * (double)npx * 2;
    /* reference: plain C loop, best of 3 */
    double ref_best = 1e30, ref_total = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        uint64_t total = 0;
        for (uint64_t f = 0; f < nf; f++) {
            uint64_t s = 0;
            const weir_u16u *p = px[f];
            for (size_t i = 0; i < npx; i++)
                s += p[i];
            total += s;
        }
        double dt = now() - t0;
        if (dt < ref_best) ref_best = dt;
        ref_total = (double)total;
    }
    printf("machine: %ld cores; capture %s: %llu frames %zux%zu uint16, %.2f GB of pixels\n",
           sysconf(_SC_NPROCESSORS_ONLN), cap, (unsigned long long)nf, h, w, bytes / 1e9);
    printf("%-34s %10.0f frames/s %7.2f GB/s  (1.00)\n", "reference: plain C sum loop, 1 core",
           nf / ref_best, bytes / ref_best / 1e9);
    const char *names[3] = {"noop_worker", "roi_mean_worker", "frame_sum_worker"};
    weir_plugin_handle *hd[3];
    const weir_plugin *pl[3];
    for (int i = 0; i < 3; i++) {
        char spec[2048];
        snprintf(spec, sizeof spec, "%s/%s.so", pdir, names[i]);
        if (weir_plugin_load(spec, WEIR_PLUGIN_WORKER, &hd[i], &pl[i], err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    /* check before timing: frame-sum replay total == reference total */
    double secs;
    uint64_t evs;
    if (run_replay(cap, pl[2], 2, &secs, &evs) || g_total != ref_total || g_n != nf) {
        fprintf(stderr, "CHECK FAILED: replay total %.0f (%llu results), reference %.0f\n", g_total,
                (unsigned long long)g_n, ref_total);
        return 1;
    }
    printf("check: frame-sum replay total %.0f == reference total over %llu frames\n", g_total,
           (unsigned long long)g_n);
    for (int i = 0; i < 3; i++) {
        for (int nw = 1; nw <= 2; nw++) {
            double best = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                if (run_replay(cap, pl[i], nw, &secs, &evs)) return 1;
                if (secs < best) best = secs;
            }
            char label[64];
            snprintf(label, sizeof label, "replay %s, %d worker%s", pl[i]->name, nw,
                     nw > 1 ? "s" : "");
            printf("%-34s %10.0f events/s %7.2f GB/s  (%.2f of reference)\n", label, evs / best,
                   bytes / best / 1e9, ref_best / best);
        }
    }
    for (int i = 0; i < 3; i++)
        weir_plugin_unload(hd[i]);
    for (uint64_t i = 0; i < nev; i++)
        weir_event_free(keep[i]);
    free(keep);
    free(px);
    weir_cbors_close(rd);
    return 0;
}
