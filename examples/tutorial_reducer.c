/* tutorial_reducer.c — the dranspose analysis tutorial's reducer, in C.
 *
 * On the first {"filename": F} result (every worker sends one: the header
 * event is broadcast) it creates <F without extension>_processed.h5 — in
 * --output-dir if one was given — with an extendible float32 dataset
 * `reduced` indexed by event number and the scalar parameters `till_x` and
 * `from_y`. Each {"intensity": v} result is written to row event_number
 * (results arrive in any order; rows never written stay NaN). {"sum": v}
 * results from the frame-sum worker go to a float64 dataset `sum`. An empty
 * filename means live view: nothing is written, as the tutorial asks.
 *
 * Live results (host ABI >= 1.6): after every intensity it publishes
 * "roi_mean" (float64 trace indexed by event number, NaN where no value has
 * arrived yet), "last_roi_mean" (the latest value) and "events" (how many
 * intensities arrived), and commits them together, so a live view always
 * sees the three agree. */
#include <weir/plugin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    weir_h5 *h5;
    int sum_created;
    int live_view;
    char path[4096];
    uint64_t rows;
    double *trace; /* roi_mean by event number, NaN = none yet */
    size_t ntrace, captrace;
    int64_t nvalues;
} reducer;

/* The ROI parameters are recorded in the output; declared here too (same
 * types as the worker's) so the reducer also works with other workers. */
static const weir_param_desc params[] = {
    {"till_x", WEIR_PARAM_INT, "2", "ROI rows: data[:till_x, ...]"},
    {"from_y", WEIR_PARAM_INT, "8", "ROI columns: data[..., from_y:]"},
};

static int init(weir_pctx *ctx, void **self)
{
    *self = calloc(1, sizeof(reducer));
    return *self ? WEIR_OK : WEIR_ENOMEM;
}

static void processed_name(weir_pctx *ctx, const char *raw, char *out, size_t len)
{
    const char *dir = ctx->host->output_dir(ctx);
    const char *base = raw;
    if (dir && *dir) {
        const char *slash = strrchr(raw, '/');
        base = slash ? slash + 1 : raw;
    }
    size_t stem = strlen(base);
    const char *dot = strrchr(base, '.');
    const char *slash = strrchr(base, '/');
    if (dot && (!slash || dot > slash)) stem = (size_t)(dot - base);
    if (dir && *dir)
        snprintf(out, len, "%s/%.*s_processed.h5", dir, (int)stem, base);
    else
        snprintf(out, len, "%.*s_processed.h5", (int)stem, base);
}

static int open_output(weir_pctx *ctx, reducer *st, const char *raw)
{
    const weir_host *h = ctx->host;
    processed_name(ctx, raw, st->path, sizeof st->path);
    int rc = h->h5_create(ctx, st->path, &st->h5);
    if (rc) {
        h->log(ctx, 4, "cannot create %s: %s", st->path, h->strerror(rc));
        return rc;
    }
    rc = h->h5_create_rows(st->h5, "reduced", WEIR_DT_F32, 0, NULL);
    if (!rc) rc = h->h5_write_i64(st->h5, "till_x", h->param_int(ctx, "till_x"));
    if (!rc) rc = h->h5_write_i64(st->h5, "from_y", h->param_int(ctx, "from_y"));
    if (!rc) rc = h->h5_attr_str(st->h5, "/", "source", raw);
    if (rc)
        h->log(ctx, 4, "%s", h->h5_error(st->h5));
    else
        h->log(ctx, 2, "writing %s", st->path);
    return rc;
}

/* Records v at event ev and publishes the trace, the value and the count. */
static int publish_intensity(weir_pctx *ctx, reducer *st, uint64_t ev, double v)
{
    const weir_host *h = ctx->host;
    if (h->abi_minor < 6 || ev > (1u << 26)) return WEIR_OK; /* no live results / absurd */
    if (ev >= st->captrace) {
        size_t cap = st->captrace ? st->captrace : 256;
        while (cap <= ev)
            cap *= 2;
        double *t = realloc(st->trace, cap * sizeof *t);
        if (!t) return WEIR_ENOMEM;
        for (size_t i = st->captrace; i < cap; i++)
            t[i] = NAN;
        st->trace = t;
        st->captrace = cap;
    }
    st->trace[ev] = v;
    if (ev >= st->ntrace) st->ntrace = ev + 1;
    st->nvalues++;
    weir_array a = {.dtype = {WEIR_DT_F64, WEIR_LITTLE}, .ndim = 1};
    a.shape[0] = st->ntrace;
    a.strides[0] = sizeof(double);
    a.data = (const uint8_t *)st->trace;
    int rc = h->publish_array(ctx, "roi_mean", &a);
    if (!rc) rc = h->publish_f64(ctx, "last_roi_mean", v);
    if (!rc) rc = h->publish_i64(ctx, "events", st->nvalues);
    if (!rc) rc = h->publish_commit(ctx);
    return rc;
}

static int process_result(weir_pctx *ctx, void *self, const weir_result *res)
{
    const weir_host *h = ctx->host;
    reducer *st = self;
    const char *fn;
    double v;
    if (h->result_get_str(res, "filename", &fn) == WEIR_OK) {
        if (st->h5 || st->live_view) return WEIR_OK; /* one per worker: open once */
        if (!*fn) {
            st->live_view = 1;
            h->log(ctx, 2, "empty filename: live view, nothing is saved");
            return WEIR_OK;
        }
        return open_output(ctx, st, fn);
    }
    uint64_t ev = h->result_event(res);
    if (h->result_get_f64(res, "intensity", &v) == WEIR_OK) {
        int prc = publish_intensity(ctx, st, ev, v);
        if (prc) return prc;
    }
    if (!st->h5) return WEIR_OK;
    if (h->result_get_f64(res, "intensity", &v) == WEIR_OK) {
        float f = (float)v;
        int rc = h->h5_write_row(st->h5, "reduced", ev, &f);
        if (rc)
            h->log(ctx, 4, "%s", h->h5_error(st->h5));
        else
            st->rows++;
        return rc;
    }
    if (h->result_get_f64(res, "sum", &v) == WEIR_OK) {
        int rc = WEIR_OK;
        if (!st->sum_created && !(rc = h->h5_create_rows(st->h5, "sum", WEIR_DT_F64, 0, NULL)))
            st->sum_created = 1;
        if (!rc) rc = h->h5_write_row(st->h5, "sum", ev, &v);
        if (rc)
            h->log(ctx, 4, "%s", h->h5_error(st->h5));
        else
            st->rows++;
        return rc;
    }
    return WEIR_OK;
}

static int finish(weir_pctx *ctx, void *self)
{
    reducer *st = self;
    if (!st->h5) return WEIR_OK;
    int rc = ctx->host->h5_close(st->h5);
    st->h5 = NULL;
    ctx->host->log(ctx, 2, "wrote %llu rows to %s", (unsigned long long)st->rows, st->path);
    return rc;
}

static void destroy(void *self)
{
    reducer *st = self;
    if (st) free(st->trace);
    free(self); /* finish closed the file; an aborted run leaves it to HDF5 at exit */
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "tutorial_reducer",
    .description = "writes <raw>_processed.h5 with `reduced` per event (dranspose tutorial)",
    .params = params,
    .nparams = 2,
    .process_result = process_result,
    .init = init,
    .finish = finish,
    .destroy = destroy,
};
