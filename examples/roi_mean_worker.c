/* roi_mean_worker.c — the dranspose analysis tutorial's worker, in C.
 *
 * For every STINS image it returns the mean of data[:till_x, from_y:]
 * (numpy slicing: bounds clamp to the frame, negative values count from the
 * end), as {"intensity": mean}. For the STINS header it returns
 * {"filename": ...} so the reducer knows where the raw data went. Events
 * without the stream give no result, as in the tutorial.
 *
 * Pixels are read through the weir_*u element types: zero-copy frames are
 * only byte-aligned.
 *
 * Build: cc -shared -fPIC -I<weir>/include roi_mean_worker.c -o roi_mean_worker.so
 * Run:   weir replay -w ./roi_mean_worker.so -r ./tutorial_reducer.so -f dump.cbors */
#include <weir/plugin.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const weir_param_desc params[] = {
    {"till_x", WEIR_PARAM_INT, "2", "ROI rows: data[:till_x, ...]"},
    {"from_y", WEIR_PARAM_INT, "8", "ROI columns: data[..., from_y:]"},
    {"stream", WEIR_PARAM_STRING, "", "STINS stream to read; empty = the first STINS stream"},
};

/* numpy's clamping of a slice bound to [0, n] */
static size_t clamp_bound(int64_t v, size_t n)
{
    if (v < 0) v += (int64_t)n;
    if (v < 0) return 0;
    return (size_t)v > n ? n : (size_t)v;
}

static const char *pick_stream(weir_pctx *ctx, const weir_event *ev)
{
    const char *want = ctx->host->param_bytes(ctx, "stream", NULL);
    if (want && *want) return want;
    for (size_t i = 0; i < ev->nstreams; i++)
        if (!strcmp(ev->streams[i].typ, "STINS")) return ev->streams[i].name;
    return NULL;
}

/* Integers are summed exactly in 64 bits (and the loop vectorises);
 * floats in double. */
#define ROI_SUM(T, ACC)                                                                            \
    for (size_t r = 0; r < rows; r++) {                                                            \
        const T *row = (const T *)(a->data + (ptrdiff_t)r * a->strides[0]);                        \
        ACC s = 0;                                                                                 \
        for (size_t c = c0; c < cols; c++)                                                         \
            s += (ACC)row[c];                                                                      \
        sum += (double)s;                                                                          \
    }

static double roi_mean(weir_pctx *ctx, const weir_array *a, size_t rows, size_t c0, size_t cols)
{
    double sum = 0;
    size_t n = rows * (cols - c0);
    if (n == 0) return NAN; /* numpy: mean of an empty slice is nan */
    int native = a->dtype.order == WEIR_LITTLE || weir_dtype_itemsize(a->dtype.kind) == 1;
    if (native && a->strides[1] == (ptrdiff_t)weir_dtype_itemsize(a->dtype.kind)) {
        switch (a->dtype.kind) {
        case WEIR_DT_U8:
            ROI_SUM(uint8_t, uint64_t);
            return sum / (double)n;
        case WEIR_DT_U16:
            ROI_SUM(weir_u16u, uint64_t);
            return sum / (double)n;
        case WEIR_DT_U32:
            ROI_SUM(weir_u32u, uint64_t);
            return sum / (double)n;
        case WEIR_DT_I16:
            ROI_SUM(weir_i16u, int64_t);
            return sum / (double)n;
        case WEIR_DT_I32:
            ROI_SUM(weir_i32u, int64_t);
            return sum / (double)n;
        case WEIR_DT_F32:
            ROI_SUM(weir_f32u, double);
            return sum / (double)n;
        case WEIR_DT_F64:
            ROI_SUM(weir_f64u, double);
            return sum / (double)n;
        default:
            break;
        }
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = c0; c < cols; c++)
            sum += ctx->host->array_get_f64(a, r * a->shape[1] + c);
    return sum / (double)n;
}

static int process_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    const weir_host *h = ctx->host;
    const char *stream = pick_stream(ctx, ev);
    if (!stream) return WEIR_OK;
    weir_stins_packet p;
    int rc = h->stins_parse(ctx, ev, stream, &p);
    if (rc == WEIR_ENOTFOUND) return WEIR_OK;
    if (rc) return rc;
    weir_result *r = NULL;
    if (p.kind == WEIR_STINS_HEADER) {
        r = h->result_new(ctx);
        if (r) rc = h->result_set_str(r, "filename", p.filename ? p.filename : "");
    } else if (p.kind == WEIR_STINS_IMAGE) {
        if (p.data.ndim != 2) {
            h->log(ctx, 3, "event %llu: ROI mean needs a 2-d image, got %d dims",
                   (unsigned long long)ev->number, p.data.ndim);
            rc = WEIR_ESHAPE;
        } else {
            size_t rows = clamp_bound(h->param_int(ctx, "till_x"), p.data.shape[0]);
            size_t c0 = clamp_bound(h->param_int(ctx, "from_y"), p.data.shape[1]);
            double mean = roi_mean(ctx, &p.data, rows, c0, p.data.shape[1]);
            h->log(ctx, 1, "event %llu: intensity %f", (unsigned long long)ev->number, mean);
            r = h->result_new(ctx);
            if (r) rc = h->result_set_f64(r, "intensity", mean);
        }
    }
    if (r && !rc)
        rc = h->emit(ctx, r);
    else if (r)
        h->result_free(r);
    h->stins_clear(&p);
    return rc;
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_WORKER,
    .name = "roi_mean",
    .description = "mean of data[:till_x, from_y:] per STINS image (dranspose tutorial)",
    .params = params,
    .nparams = sizeof params / sizeof params[0],
    .process_event = process_event,
};
