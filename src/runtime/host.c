/* host.c — the service table plug-ins reach the engine through.
 *
 * Every entry is a thin adapter from the plug-in-facing signature to a libweir
 * function, recovering the engine state from the weir_pctx the callback got.
 * The table itself is immutable and shared by all instances. Parameter
 * getters log a one-line error (naming the parameter) when a plug-in asks
 * for an undeclared or differently typed parameter, and return 0 / "". */
#include "engine_internal.h"

#include "../core/result.h"
#include "weir/error.h"
#include "weir/h5.h"
#include "weir/log.h"
#include "weir/stins.h"
#include "weir/tpx3.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static role_ctx *RC(weir_pctx *c)
{
    return (role_ctx *)c;
}

static void h_log(weir_pctx *ctx, int level, const char *fmt, ...)
{
    role_ctx *rc = RC(ctx);
    char comp[96];
    if (rc->worker >= 0)
        snprintf(comp, sizeof comp, "%s/w%d", rc->plugin->name, rc->worker);
    else
        snprintf(comp, sizeof comp, "%s", rc->plugin->name);
    if (level < WEIR_LOG_TRACE) level = WEIR_LOG_TRACE;
    if (level > WEIR_LOG_ERROR) level = WEIR_LOG_ERROR;
    va_list ap;
    va_start(ap, fmt);
    weir_vlog((weir_log_level)level, comp, fmt, ap);
    va_end(ap);
}

static int h_worker_index(weir_pctx *ctx)
{
    return RC(ctx)->worker;
}

static int h_nworkers(weir_pctx *ctx)
{
    return RC(ctx)->eng->cfg.nworkers;
}

static void param_problem(weir_pctx *ctx, const char *name, const char *want, int rc)
{
    h_log(ctx, WEIR_LOG_ERROR, "parameter '%s': %s (asked for %s)", name,
          rc == WEIR_ENOTFOUND ? "not declared by any plug-in" : "has another type", want);
}

static int64_t h_param_int(weir_pctx *ctx, const char *name)
{
    int64_t v = 0;
    int rc = weir_params_get_int(RC(ctx)->params, name, &v);
    if (rc) param_problem(ctx, name, "int", rc);
    return v;
}

static double h_param_float(weir_pctx *ctx, const char *name)
{
    double v = 0;
    int rc = weir_params_get_float(RC(ctx)->params, name, &v);
    if (rc) param_problem(ctx, name, "float", rc);
    return v;
}

static int h_param_bool(weir_pctx *ctx, const char *name)
{
    int v = 0;
    int rc = weir_params_get_bool(RC(ctx)->params, name, &v);
    if (rc) param_problem(ctx, name, "bool", rc);
    return v;
}

static const char *h_param_bytes(weir_pctx *ctx, const char *name, size_t *len)
{
    const char *d = "";
    size_t l = 0;
    int rc = weir_params_get_bytes(RC(ctx)->params, name, &d, &l);
    if (rc) param_problem(ctx, name, "bytes", rc);
    if (len) *len = l;
    return d;
}

static const char *h_params_hash(weir_pctx *ctx)
{
    return weir_params_hash(RC(ctx)->params);
}

static int h_stins_parse(weir_pctx *ctx, const weir_event *ev, const char *stream,
                         weir_stins_packet *out)
{
    memset(out, 0, sizeof *out);
    const weir_stream_packet *s = weir_event_stream(ev, stream);
    if (!s) return WEIR_ENOTFOUND;
    char err[256];
    int rc = weir_stins_parse(&s->msg, 1, out, err, sizeof err);
    if (rc)
        h_log(ctx, WEIR_LOG_WARNING, "event %llu stream '%s': %s", (unsigned long long)ev->number,
              stream, err);
    return rc;
}

static int h_dectris_parse(weir_pctx *ctx, const weir_event *ev, const char *stream,
                           weir_dectris_packet *out)
{
    memset(out, 0, sizeof *out);
    const weir_stream_packet *s = weir_event_stream(ev, stream);
    if (!s) return WEIR_ENOTFOUND;
    char err[256];
    int rc;
    if (!strcmp(s->typ, "DECTRIS_STREAM2")) {
        if (s->msg.nparts != 1) return WEIR_EFORMAT;
        rc = weir_dectris_v2_parse(weir_buf_data(s->msg.parts[0]), weir_buf_size(s->msg.parts[0]),
                                   1, out, err, sizeof err);
    } else {
        rc = weir_dectris_v1_parse(&s->msg, 1, out, err, sizeof err);
    }
    if (rc)
        h_log(ctx, WEIR_LOG_WARNING, "event %llu stream '%s': %s", (unsigned long long)ev->number,
              stream, err);
    return rc;
}

static int h_merlin_parse(weir_pctx *ctx, const weir_event *ev, const char *stream, int *is_header,
                          weir_array *out, weir_merlin_frame_header *hdr)
{
    memset(out, 0, sizeof *out);
    *is_header = 0;
    const weir_stream_packet *s = weir_event_stream(ev, stream);
    if (!s) return WEIR_ENOTFOUND;
    if (s->msg.nparts == 0) return WEIR_OK; /* the end of the acquisition: no frame */
    if (s->msg.nparts != 1) return WEIR_EFORMAT;
    weir_buf *b = s->msg.parts[0];
    if (weir_buf_size(b) >= 4 && !memcmp(weir_buf_data(b), "HDR,", 4)) {
        *is_header = 1;
        return WEIR_OK;
    }
    weir_merlin_frame_header h;
    char err[256];
    int rc = weir_merlin_frame_parse(weir_buf_data(b), weir_buf_size(b), &h, err, sizeof err);
    if (!rc) rc = weir_merlin_decode(b, 0, &h, out, err, sizeof err);
    if (rc)
        h_log(ctx, WEIR_LOG_WARNING, "event %llu stream '%s': %s", (unsigned long long)ev->number,
              stream, err);
    else if (hdr)
        *hdr = h;
    return rc;
}

static int h_tpx3_frame(weir_pctx *ctx, const weir_event *ev, const char *stream, int *kind,
                        weir_array *out)
{
    memset(out, 0, sizeof *out);
    *kind = 0;
    const weir_stream_packet *s = weir_event_stream(ev, stream);
    if (!s) return WEIR_ENOTFOUND;
    if (s->msg.nparts == 0) return WEIR_OK;
    weir_tpx3_packet p;
    char err[256];
    int rc = weir_tpx3_packet_parse(&s->msg, 0, &p, err, sizeof err);
    if (!rc) {
        *kind = p.kind == WEIR_TPX3_MSG_START ? 1 : p.kind == WEIR_TPX3_MSG_END ? 3 : 2;
        if (p.kind == WEIR_TPX3_MSG_IMAGE)
            rc = weir_tpx3_chunk_dense(&p.chunk, p.row0, WEIR_DT_U32, out, err, sizeof err);
        weir_tpx3_packet_clear(&p);
    }
    if (rc)
        h_log(ctx, WEIR_LOG_WARNING, "event %llu stream '%s': %s", (unsigned long long)ev->number,
              stream, err);
    return rc;
}

static int h_concert_parse(weir_pctx *ctx, const weir_event *ev, const char *stream,
                           weir_concert_packet *out)
{
    memset(out, 0, sizeof *out);
    out->frame = -1;
    const weir_stream_packet *s = weir_event_stream(ev, stream);
    if (!s) return WEIR_ENOTFOUND;
    if (s->msg.nparts == 0) return WEIR_OK; /* event 0: no start message */
    char err[256];
    int rc = weir_concert_parse(&s->msg, 1, out, err, sizeof err);
    if (rc)
        h_log(ctx, WEIR_LOG_WARNING, "event %llu stream '%s': %s", (unsigned long long)ev->number,
              stream, err);
    return rc;
}

static weir_result *h_result_new(weir_pctx *ctx)
{
    role_ctx *rc = RC(ctx);
    return weir_result_new(rc->cur_event, rc->worker, weir_params_hash(rc->params));
}

static int h_emit(weir_pctx *ctx, weir_result *r)
{
    role_ctx *rc = RC(ctx);
    if (!r) return WEIR_EINVAL;
    if (rc->worker < 0) {
        weir_result_free(r);
        h_log(ctx, WEIR_LOG_ERROR, "emit() is for workers; the reducer publishes its output");
        return WEIR_EINVAL;
    }
    weir_buf *b = NULL;
    int err = weir_result_encode(r, &b);
    weir_result_free(r);
    if (err) return err;
    size_t nb = weir_buf_size(b);
    envelope env = {.kind = ENV_RESULT, .worker = rc->worker, .result = b};
    double blocked = 0;
    err = rc->eng->rq->ops->send(rc->eng->rq, &env, &blocked);
    rc->emit_blocked_s += blocked;
    pthread_mutex_lock(rc->stats_mu);
    rc->stats->blocked_seconds += blocked;
    if (!err) {
        rc->stats->results++;
        rc->stats->events_out++;
        rc->stats->bytes_out += nb;
    }
    pthread_mutex_unlock(rc->stats_mu);
    if (err) envelope_clear(&env);
    return err;
}

static int h_h5_create(weir_pctx *ctx, const char *path, weir_h5 **out)
{
    return weir_h5_create(path, out);
}

static const char *h_input_name(weir_pctx *ctx, size_t i)
{
    weir_engine *e = RC(ctx)->eng;
    return i < e->cfg.ninputs ? e->inputs[i] : NULL;
}

static const char *h_output_dir(weir_pctx *ctx)
{
    return RC(ctx)->eng->output_dir;
}

static int h_nav_shape(weir_pctx *ctx, int64_t *shape, int cap, uint64_t *frames)
{
    weir_engine *e = RC(ctx)->eng;
    pthread_mutex_lock(&e->mu);
    int n = e->nav_ndim;
    for (int i = 0; i < n && i < cap; i++)
        shape[i] = e->nav[i];
    if (frames) *frames = e->acq_frames;
    pthread_mutex_unlock(&e->mu);
    return n;
}

/* Live results: only the reducer publishes (one thread, so staging and
 * commit never interleave between publishers). */
static const char *publish_hash(role_ctx *rc)
{
    return rc->cur_hash ? rc->cur_hash : weir_params_hash(rc->params);
}

static int h_publish_f64(weir_pctx *ctx, const char *name, double v)
{
    role_ctx *rc = RC(ctx);
    if (rc->worker >= 0) return WEIR_EINVAL;
    return weir_results_stage_f64(rc->eng->results, name, v, publish_hash(rc));
}

static int h_publish_i64(weir_pctx *ctx, const char *name, int64_t v)
{
    role_ctx *rc = RC(ctx);
    if (rc->worker >= 0) return WEIR_EINVAL;
    return weir_results_stage_i64(rc->eng->results, name, v, publish_hash(rc));
}

static int h_publish_str(weir_pctx *ctx, const char *name, const char *v)
{
    role_ctx *rc = RC(ctx);
    if (rc->worker >= 0) return WEIR_EINVAL;
    return weir_results_stage_str(rc->eng->results, name, v, publish_hash(rc));
}

static int h_publish_array(weir_pctx *ctx, const char *name, const weir_array *a)
{
    role_ctx *rc = RC(ctx);
    if (rc->worker >= 0) return WEIR_EINVAL;
    return weir_results_stage_array(rc->eng->results, name, a, publish_hash(rc));
}

static int h_publish_commit(weir_pctx *ctx)
{
    role_ctx *rc = RC(ctx);
    if (rc->worker >= 0) return WEIR_EINVAL;
    return weir_results_commit(rc->eng->results);
}

const weir_host weir_host_table = {
    .abi_major = WEIR_ABI_MAJOR,
    .abi_minor = WEIR_ABI_MINOR,
    .struct_size = sizeof(weir_host),
    .log = h_log,
    .strerror = weir_strerror,
    .worker_index = h_worker_index,
    .nworkers = h_nworkers,
    .param_int = h_param_int,
    .param_float = h_param_float,
    .param_bool = h_param_bool,
    .param_bytes = h_param_bytes,
    .params_hash = h_params_hash,
    .stins_parse = h_stins_parse,
    .stins_clear = weir_stins_clear,
    .stins_get_f64 = weir_stins_get_f64,
    .stins_get_str = weir_stins_get_str,
    .array_get_f64 = weir_array_get_f64,
    .array_alloc = weir_array_alloc,
    .array_release = weir_array_release,
    .result_new = h_result_new,
    .result_set_i64 = weir_result_set_i64,
    .result_set_f64 = weir_result_set_f64,
    .result_set_str = weir_result_set_str,
    .result_set_bytes = weir_result_set_bytes,
    .result_set_array = weir_result_set_array,
    .emit = h_emit,
    .result_free = weir_result_free,
    .result_event = weir_result_event,
    .result_worker = weir_result_worker,
    .result_params_hash = weir_result_params_hash,
    .result_has = weir_result_has,
    .result_get_i64 = weir_result_get_i64,
    .result_get_f64 = weir_result_get_f64,
    .result_get_str = weir_result_get_str,
    .result_get_bytes = weir_result_get_bytes,
    .result_get_array = weir_result_get_array,
    .h5_create = h_h5_create,
    .h5_close = weir_h5_close,
    .h5_create_rows = weir_h5_create_rows,
    .h5_write_row = weir_h5_write_row,
    .h5_write_i64 = weir_h5_write_i64,
    .h5_write_f64 = weir_h5_write_f64,
    .h5_write_str = weir_h5_write_str,
    .h5_write_array = weir_h5_write_array,
    .h5_attr_str = weir_h5_attr_str,
    .h5_attr_i64 = weir_h5_attr_i64,
    .h5_attr_f64 = weir_h5_attr_f64,
    .h5_error = weir_h5_error,
    .input_name = h_input_name,
    .output_dir = h_output_dir,
    .dectris_parse = h_dectris_parse,
    .dectris_clear = weir_dectris_clear,
    .merlin_parse = h_merlin_parse,
    .concert_parse = h_concert_parse,
    .concert_clear = weir_concert_clear,
    .nav_shape = h_nav_shape,
    .tpx3_frame = h_tpx3_frame,
    .publish_f64 = h_publish_f64,
    .publish_i64 = h_publish_i64,
    .publish_str = h_publish_str,
    .publish_array = h_publish_array,
    .publish_commit = h_publish_commit,
};
