/* test_plugins.c — plug-ins used by the engine tests.
 *
 * echo_worker: emits {"n": event number, "w": worker index, "bytes": event
 *   bytes} for every event, and {"finish": 1} from finish(); records how
 *   often init/finish ran in the result stream so the test can count them.
 * slow_reducer: sleeps `delay_us` per result (parameter), counts results per
 *   event number and checks that finish runs after every result; publishes
 *   what it saw through a file named by the `report` parameter.
 * failing_worker: rejects odd events with WEIR_EFORMAT.
 * A second descriptor under another symbol tests path.so:symbol. */
#include <weir/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int echo_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    const weir_host *h = ctx->host;
    size_t bytes = 0;
    for (size_t i = 0; i < ev->nstreams; i++)
        for (size_t k = 0; k < ev->streams[i].msg.nparts; k++)
            bytes += 1; /* parts counted; sizes are opaque here */
    weir_result *r = h->result_new(ctx);
    if (!r) return WEIR_ENOMEM;
    int rc = h->result_set_i64(r, "n", (int64_t)ev->number);
    if (!rc) rc = h->result_set_i64(r, "w", h->worker_index(ctx));
    if (!rc) rc = h->result_set_i64(r, "parts", (int64_t)bytes);
    if (!rc) rc = h->result_set_i64(r, "scale", h->param_int(ctx, "scale"));
    if (rc) {
        h->result_free(r);
        return rc;
    }
    return h->emit(ctx, r);
}

static int echo_finish(weir_pctx *ctx, void *self)
{
    weir_result *r = ctx->host->result_new(ctx);
    if (!r) return WEIR_ENOMEM;
    ctx->host->result_set_i64(r, "finish", 1);
    return ctx->host->emit(ctx, r);
}

static const weir_param_desc echo_params[] = {
    {"scale", WEIR_PARAM_INT, "1", "copied into every result"},
};

const weir_plugin echo_worker = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_WORKER,  .name = "echo",        .params = echo_params,
    .nparams = 1,       .process_event = echo_event, .finish = echo_finish,
};

static int failing_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    if (ev->number % 2) return WEIR_EFORMAT;
    return echo_event(ctx, self, ev);
}

const weir_plugin failing_worker = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_WORKER,     .name = "failing", .params = echo_params,
    .nparams = 1,       .process_event = failing_event,
};

/* Must have the default name too, so "test_plugins.so" alone loads echo. */
const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_WORKER,  .name = "echo",        .params = echo_params,
    .nparams = 1,       .process_event = echo_event, .finish = echo_finish,
};

typedef struct {
    FILE *report;
    long results, finishes, timers, after_finish;
    int finished;
} slow;

static const weir_param_desc slow_params[] = {
    {"delay_us", WEIR_PARAM_INT, "0", "sleep per result"},
    {"report", WEIR_PARAM_STRING, "", "file to write one line per result into"},
};

static int slow_init(weir_pctx *ctx, void **self)
{
    slow *s = calloc(1, sizeof *s);
    if (!s) return WEIR_ENOMEM;
    const char *path = ctx->host->param_bytes(ctx, "report", NULL);
    /* append: a --continuous run makes one reducer per scan */
    if (path && *path && !(s->report = fopen(path, "a"))) {
        free(s);
        return WEIR_EIO;
    }
    *self = s;
    return WEIR_OK;
}

static int slow_result(weir_pctx *ctx, void *self, const weir_result *r)
{
    slow *s = self;
    const weir_host *h = ctx->host;
    int64_t delay = h->param_int(ctx, "delay_us");
    if (delay > 0) {
        struct timespec ts = {delay / 1000000, (delay % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    if (s->finished) s->after_finish++;
    s->results++;
    int64_t n = -1, w = -1, fin = 0, scale = 0, parts = 0;
    h->result_get_i64(r, "parts", &parts);
    h->result_get_i64(r, "n", &n);
    h->result_get_i64(r, "w", &w);
    h->result_get_i64(r, "finish", &fin);
    h->result_get_i64(r, "scale", &scale);
    if (s->report)
        fprintf(s->report, "%s %lld %lld %lld %d %s %lld\n", fin ? "finish" : "result",
                (long long)n, (long long)w, (long long)scale, h->result_worker(r),
                h->result_params_hash(r), (long long)parts);
    return WEIR_OK;
}

static int slow_timer(weir_pctx *ctx, void *self, double *next)
{
    slow *s = self;
    s->timers++;
    return WEIR_OK;
}

static int slow_finish(weir_pctx *ctx, void *self)
{
    slow *s = self;
    s->finished = 1;
    if (s->report) fprintf(s->report, "reducer_finish %ld %ld\n", s->results, s->timers);
    return WEIR_OK;
}

static void slow_destroy(void *self)
{
    slow *s = self;
    if (s->report) fclose(s->report);
    free(s);
}

const weir_plugin slow_reducer = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "slow",
    .params = slow_params,
    .nparams = 2,
    .timer_period_s = 0.01,
    .init = slow_init,
    .process_result = slow_result,
    .timer = slow_timer,
    .finish = slow_finish,
    .destroy = slow_destroy,
};

/* sum_reducer: adds every "sum" result into a per-event total (slices of a
 * split frame arrive as several partial sums) and writes "event total"
 * lines, sorted by event, to the `report` file at finish, and the
 * acquisition's frame count and nav shape to `report`.nav. */
typedef struct {
    double total[4096];
    unsigned char seen[4096];
} sums;

static int sums_init(weir_pctx *ctx, void **self)
{
    *self = calloc(1, sizeof(sums));
    return *self ? WEIR_OK : WEIR_ENOMEM;
}

static int sums_result(weir_pctx *ctx, void *self, const weir_result *r)
{
    sums *s = self;
    double v;
    uint64_t ev = ctx->host->result_event(r);
    if (ev < 4096 && ctx->host->result_get_f64(r, "sum", &v) == WEIR_OK) {
        s->total[ev] += v;
        s->seen[ev] = 1;
    }
    return WEIR_OK;
}

static int sums_finish(weir_pctx *ctx, void *self)
{
    sums *s = self;
    const char *path = ctx->host->param_bytes(ctx, "report", NULL);
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (!f) return WEIR_EIO;
    for (int i = 0; i < 4096; i++)
        if (s->seen[i]) fprintf(f, "%d %.17g\n", i, s->total[i]);
    fclose(f);
    /* the acquisition's nav shape and frame count beside it (REPORT.nav) */
    char np[4096];
    snprintf(np, sizeof np, "%s.nav", path);
    int64_t shape[8];
    uint64_t frames = 0;
    int n = ctx->host->nav_shape(ctx, shape, 8, &frames);
    f = fopen(np, "w");
    if (!f) return WEIR_EIO;
    fprintf(f, "frames %llu ndim %d", (unsigned long long)frames, n);
    for (int i = 0; i < n && i < 8; i++)
        fprintf(f, " %lld", (long long)shape[i]);
    fprintf(f, "\n");
    fclose(f);
    return WEIR_OK;
}

static const weir_param_desc sums_params[] = {
    {"report", WEIR_PARAM_STRING, "", "file for the per-event totals"},
};

const weir_plugin sum_reducer = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "sums",
    .params = sums_params,
    .nparams = 1,
    .init = sums_init,
    .process_result = sums_result,
    .finish = sums_finish,
    .destroy = free,
};

/* fault_worker: echo_worker, except that worker slot 0 kills its own process
 * ("kill") or hangs in process_event ("hang") at event `fault_event`. */
#include <signal.h>
#include <unistd.h>

static const weir_param_desc fault_params[] = {
    {"scale", WEIR_PARAM_INT, "1", "copied into every result"},
    {"fault", WEIR_PARAM_STRING, "", "kill or hang"},
    {"fault_event", WEIR_PARAM_INT, "5", "event at which slot 0 fails"},
};

static int fault_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    const weir_host *h = ctx->host;
    const char *f = h->param_bytes(ctx, "fault", NULL);
    if (h->worker_index(ctx) == 0 && (int64_t)ev->number >= h->param_int(ctx, "fault_event")) {
        if (!strcmp(f, "kill")) raise(SIGKILL);
        if (!strcmp(f, "hang"))
            for (;;)
                sleep(1000);
    }
    return echo_event(ctx, self, ev);
}

const weir_plugin fault_worker = {
    WEIR_PLUGIN_HEADER, .kind = WEIR_PLUGIN_WORKER,   .name = "fault", .params = fault_params,
    .nparams = 3,       .process_event = fault_event,
};
