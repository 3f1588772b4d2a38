/* sum_image_reducer.c — a running sum of 2-D frames, published live.
 *
 * Pairs with frame_sum_worker.so run with send_frame=True: every result's
 * "frame" (any integer or float dtype, 2-D) is added into a float64 image
 * of the first frame's shape (frames of another shape are rejected), and
 * after each one "sum_image" (2-D), "frames" (count) and "total" (sum of
 * the per-frame "sum" values) are published and committed together, for the
 * live page's image view. At the end the image is written to
 * OUTPUT_DIR/sum_image.h5 ("sum_image" float64, "frames", "total").
 *
 * Run: weir replay -w build/examples/frame_sum_worker.so
 *        -r build/examples/sum_image_reducer.so -f cap.cbors
 *        --param send_frame=True --port 5000 */
#include <weir/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *img;
    size_t h, w;
    int64_t frames;
    double total;
} state;

static int init(weir_pctx *ctx, void **self)
{
    *self = calloc(1, sizeof(state));
    return *self ? WEIR_OK : WEIR_ENOMEM;
}

static int process_result(weir_pctx *ctx, void *self, const weir_result *res)
{
    const weir_host *h = ctx->host;
    state *st = self;
    weir_array f;
    if (h->abi_minor < 6 || h->result_get_array(res, "frame", &f) != WEIR_OK) return WEIR_OK;
    if (f.ndim != 2) return WEIR_ESHAPE;
    if (!st->img) {
        st->h = f.shape[0];
        st->w = f.shape[1];
        size_t n = st->h * st->w;
        st->img = calloc(n > 0 ? n : 1, sizeof *st->img);
        if (!st->img) return WEIR_ENOMEM;
    } else if (f.shape[0] != st->h || f.shape[1] != st->w) {
        return WEIR_ESHAPE;
    }
    for (size_t i = 0; i < st->h * st->w; i++)
        st->img[i] += h->array_get_f64(&f, i);
    double s;
    if (h->result_get_f64(res, "sum", &s) == WEIR_OK) st->total += s;
    st->frames++;
    weir_array img = {.dtype = {WEIR_DT_F64, WEIR_LITTLE}, .ndim = 2};
    img.shape[0] = st->h;
    img.shape[1] = st->w;
    img.strides[0] = (ptrdiff_t)(st->w * sizeof(double));
    img.strides[1] = sizeof(double);
    img.data = (const uint8_t *)st->img;
    int rc = h->publish_array(ctx, "sum_image", &img);
    if (!rc) rc = h->publish_i64(ctx, "frames", st->frames);
    if (!rc) rc = h->publish_f64(ctx, "total", st->total);
    if (!rc) rc = h->publish_commit(ctx);
    return rc;
}

static int finish(weir_pctx *ctx, void *self)
{
    const weir_host *h = ctx->host;
    state *st = self;
    if (!st->img) return WEIR_OK; /* no frame came */
    const char *dir = h->output_dir(ctx);
    char path[4096];
    snprintf(path, sizeof path, "%s%ssum_image.h5", dir && *dir ? dir : "", dir && *dir ? "/" : "");
    weir_h5 *f;
    int rc = h->h5_create(ctx, path, &f);
    if (rc) return rc;
    weir_array img = {.dtype = {WEIR_DT_F64, WEIR_LITTLE}, .ndim = 2};
    img.shape[0] = st->h;
    img.shape[1] = st->w;
    img.strides[0] = (ptrdiff_t)(st->w * sizeof(double));
    img.strides[1] = sizeof(double);
    img.data = (const uint8_t *)st->img;
    rc = h->h5_write_array(f, "sum_image", &img);
    if (!rc) rc = h->h5_write_i64(f, "frames", st->frames);
    if (!rc) rc = h->h5_write_f64(f, "total", st->total);
    int crc = h->h5_close(f);
    if (!rc) h->log(ctx, 2, "wrote the sum of %lld frames to %s", (long long)st->frames, path);
    return rc ? rc : crc;
}

static void destroy(void *self)
{
    state *st = self;
    if (st) free(st->img);
    free(st);
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_REDUCER,
    .name = "sum_image",
    .description = "running sum of 2-D frames, published live as sum_image",
    .process_result = process_result,
    .finish = finish,
    .init = init,
    .destroy = destroy,
};
