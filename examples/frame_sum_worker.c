/* frame_sum_worker.c — the full-frame sum of every STINS image.
 *
 * Returns {"sum": <sum of all pixels>} per image — STINS, or the first
 * channel of DECTRIS stream v1/v2 images — (exact for integer pixels:
 * accumulated in 64-bit integers, then converted). It is also the
 * CPU-bound reference worker of the replay benchmark, so its inner loop is
 * the same plain loop a hand-written C program would use.
 *
 * With send_frame=True it also sends the frame itself as "frame", for
 * reducers that build images (sum_image_reducer.c's live "sum_image"). */
#include <weir/plugin.h>

#include <string.h>

#define SUM_INT(T)                                                                                 \
    do {                                                                                           \
        const T *px = (const T *)a->data;                                                          \
        uint64_t s = 0;                                                                            \
        for (size_t i = 0; i < n; i++)                                                             \
            s += px[i];                                                                            \
        return (double)s;                                                                          \
    } while (0)

static double frame_sum(weir_pctx *ctx, const weir_array *a)
{
    size_t n = 1;
    for (int d = 0; d < a->ndim; d++)
        n *= a->shape[d];
    int native = a->dtype.order == WEIR_LITTLE || weir_dtype_itemsize(a->dtype.kind) == 1;
    if (native) { /* STINS images are C-contiguous */
        switch (a->dtype.kind) {
        case WEIR_DT_U8:
            SUM_INT(uint8_t);
        case WEIR_DT_U16:
            SUM_INT(weir_u16u);
        case WEIR_DT_U32:
            SUM_INT(weir_u32u);
        default:
            break;
        }
    }
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += ctx->host->array_get_f64(a, i);
    return s;
}

static const weir_param_desc params[] = {
    {"repeat", WEIR_PARAM_INT, "1",
     "sum each frame this many times (CPU-bound load for benchmarks)"},
    {"send_frame", WEIR_PARAM_BOOL, "False",
     "also send each frame as \"frame\" (for sum_image_reducer)"},
};

/* Emits {"sum": ...} for one frame, summed `repeat` times (CPU load for
 * benchmarks; every pass is kept). */
static int emit_sum(weir_pctx *ctx, const weir_array *a)
{
    const weir_host *h = ctx->host;
    int64_t rep = h->param_int(ctx, "repeat");
    double sum = 0;
    for (int64_t k = 0; k < (rep > 1 ? rep : 1); k++) {
        sum = frame_sum(ctx, a);
        __asm__ volatile("" : : "g"(&sum) : "memory");
    }
    weir_result *r = h->result_new(ctx);
    int rc = r ? h->result_set_f64(r, "sum", sum) : WEIR_ENOMEM;
    if (!rc && h->param_bool(ctx, "send_frame")) rc = h->result_set_array(r, "frame", a);
    if (!rc) return h->emit(ctx, r);
    h->result_free(r);
    return rc;
}

/* DECTRIS stream v1/v2: the sum of the first channel of every image. */
static int dectris_event(weir_pctx *ctx, const weir_event *ev, const char *stream)
{
    const weir_host *h = ctx->host;
    if (h->abi_minor < 1) return WEIR_EUNSUPPORTED;
    weir_dectris_packet p;
    int rc = h->dectris_parse(ctx, ev, stream, &p);
    if (rc) return rc;
    if (p.kind == WEIR_DECTRIS_IMAGE && p.nchannels > 0) rc = emit_sum(ctx, &p.channels[0].data);
    h->dectris_clear(&p);
    return rc;
}

/* Merlin: the sum of every frame (big-endian pixels are summed through
 * array_get_f64, raw frames arrive unpacked). */
static int merlin_event(weir_pctx *ctx, const weir_event *ev, const char *stream)
{
    const weir_host *h = ctx->host;
    if (h->abi_minor < 2) return WEIR_EUNSUPPORTED;
    int is_header;
    weir_array a;
    int rc = h->merlin_parse(ctx, ev, stream, &is_header, &a, NULL);
    if (rc || is_header || !a.ndim) return rc;
    rc = emit_sum(ctx, &a);
    h->array_release(&a);
    return rc;
}

/* ASI TPX3: the sum of every frame (one CSR row per event). */
static int tpx3_event(weir_pctx *ctx, const weir_event *ev, const char *stream)
{
    const weir_host *h = ctx->host;
    if (h->abi_minor < 5) return WEIR_EUNSUPPORTED;
    int kind;
    weir_array a;
    int rc = h->tpx3_frame(ctx, ev, stream, &kind, &a);
    if (rc || kind != 2) return rc;
    rc = emit_sum(ctx, &a);
    h->array_release(&a);
    return rc;
}

/* Concert: the sum of every image. */
static int concert_event(weir_pctx *ctx, const weir_event *ev, const char *stream)
{
    const weir_host *h = ctx->host;
    if (h->abi_minor < 3) return WEIR_EUNSUPPORTED;
    weir_concert_packet p;
    int rc = h->concert_parse(ctx, ev, stream, &p);
    if (!rc && !p.end && p.data.ndim) rc = emit_sum(ctx, &p.data);
    h->concert_clear(&p);
    return rc;
}

/* STINS: the sum of every image; the header's filename goes to the reducer
 * (the tutorial reducer opens its output from it). */
static int stins_event(weir_pctx *ctx, const weir_event *ev, const char *stream)
{
    const weir_host *h = ctx->host;
    weir_stins_packet p;
    int rc = h->stins_parse(ctx, ev, stream, &p);
    if (rc) return rc;
    if (p.kind == WEIR_STINS_IMAGE) {
        rc = emit_sum(ctx, &p.data);
    } else if (p.kind == WEIR_STINS_HEADER) {
        weir_result *r = h->result_new(ctx);
        rc = r ? h->result_set_str(r, "filename", p.filename ? p.filename : "") : WEIR_ENOMEM;
        if (!rc)
            rc = h->emit(ctx, r);
        else
            h->result_free(r);
    }
    h->stins_clear(&p);
    return rc;
}

/* The first stream of a protocol this worker knows decides the event. */
static int process_event(weir_pctx *ctx, void *self, const weir_event *ev)
{
    for (size_t i = 0; i < ev->nstreams; i++) {
        const char *typ = ev->streams[i].typ, *name = ev->streams[i].name;
        if (!strcmp(typ, "STINS")) return stins_event(ctx, ev, name);
        if (!strcmp(typ, "MERLIN")) return merlin_event(ctx, ev, name);
        if (!strcmp(typ, "ASI_TPX3")) return tpx3_event(ctx, ev, name);
        if (!strcmp(typ, "CONCERT")) return concert_event(ctx, ev, name);
        if (!strcmp(typ, "EIGER_LEGACY") || !strcmp(typ, "DECTRIS_STREAM2"))
            return dectris_event(ctx, ev, name);
    }
    return WEIR_OK;
}

const weir_plugin weir_plugin_descriptor = {
    WEIR_PLUGIN_HEADER,
    .kind = WEIR_PLUGIN_WORKER,
    .name = "frame_sum",
    .description = "sum of all pixels of every STINS image",
    .params = params,
    .nparams = sizeof params / sizeof params[0],
    .process_event = process_event,
};
