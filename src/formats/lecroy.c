/* lecroy.c — the LeCroy oscilloscope stream (weir/beamline.h,
 * reference/dranspose.md §3.10).
 *
 * Control messages are one JSON part {"htype": "msg", "what": w, "frame": n}
 * with w = 0 PREPARE, 1 SEQSTART ("ntriggers", "seqno", "channels"),
 * 2 SEQEND, 3 STOP. A trace is three parts: JSON {"htype": "traces", "ch",
 * "frame", "shape", "dtype", ...}, the samples, and a pickled list of float
 * timestamps (kept opaque). dranspose's ingester turns everything from
 * SEQSTART to SEQEND into one frame [SeqStart, (meta, data, ts) × n,
 * SeqEnd]; the assembler in beamline.c builds the same message and this
 * parser reads it as one DATA packet with n traces. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "lecroy"

static void trace_clear(weir_lecroy_trace *t)
{
    cJSON_Delete(t->json);
    weir_array_release(&t->data);
    weir_buf_unref(t->raw);
    weir_buf_unref(t->ts);
    memset(t, 0, sizeof *t);
}

void weir_lecroy_clear(weir_lecroy_packet *p)
{
    if (!p) return;
    cJSON_Delete(p->json);
    cJSON_Delete(p->seq_end);
    for (size_t k = 0; k < p->ntraces; k++)
        trace_clear(&p->traces[k]);
    free(p->traces);
    memset(p, 0, sizeof *p);
    p->frame = -1;
}

/* A control JSON: its "what" (0..3) or -1 with err. */
static int control_what(const cJSON *j, size_t part, char *err, size_t errlen)
{
    const char *ht = bl_get_str(j, "htype");
    int64_t w;
    if (!ht || strcmp(ht, "msg") || bl_get_i64(j, "what", &w) || w < 0 || w > 3) {
        bl_err(err, errlen, WHO ": part %zu: expected {\"htype\": \"msg\", \"what\": 0..3}",
               part + 1);
        return -1;
    }
    return (int)w;
}

/* Parts [i, i+3) of m as a trace. */
static int parse_trace(const weir_msg *m, size_t i, int decode, weir_lecroy_trace *t, char *err,
                       size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->json = bl_json_part(m, i, WHO, err, errlen);
    if (!t->json) return WEIR_EJSON;
    const char *ht = bl_get_str(t->json, "htype");
    int64_t ch;
    if (!ht || strcmp(ht, "traces")) {
        bl_err(err, errlen, WHO ": part %zu: expected {\"htype\": \"traces\", ...}", i + 1);
        return WEIR_EFORMAT;
    }
    if (bl_get_i64(t->json, "ch", &ch) || ch < 0 || ch > 1000 ||
        bl_get_i64(t->json, "frame", &t->frame)) {
        bl_err(err, errlen, WHO ": part %zu: a trace needs \"ch\" and \"frame\" as integers",
               i + 1);
        return WEIR_EFORMAT;
    }
    t->ch = (int)ch;
    const char *dts = bl_get_str(t->json, "dtype");
    weir_dtype dt;
    if (!dts || weir_dtype_parse(dts, &dt)) {
        bl_err(err, errlen, WHO ": part %zu: expected \"dtype\" as a numpy name like float64",
               i + 1);
        return WEIR_EDTYPE;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t->json, "shape");
    int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
    if (nd < 1 || nd > WEIR_MAX_DIMS) {
        bl_err(err, errlen, WHO ": part %zu: expected \"shape\" as a list like [1, 8002]", i + 1);
        return WEIR_EFORMAT;
    }
    size_t shape[WEIR_MAX_DIMS], nelem = 1;
    for (int k = 0; k < nd; k++) {
        const cJSON *d = cJSON_GetArrayItem(sh, k);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e9) {
            bl_err(err, errlen, WHO ": part %zu: shape[%d] is not a size", i + 1, k);
            return WEIR_EFORMAT;
        }
        shape[k] = (size_t)d->valuedouble;
        nelem *= shape[k];
        if (nelem > ((size_t)1 << 40)) {
            bl_err(err, errlen, WHO ": part %zu: shape too large", i + 1);
            return WEIR_EFORMAT;
        }
    }
    size_t want = nelem * weir_dtype_size(dt.kind), got = weir_buf_size(m->parts[i + 1]);
    if (want != got) {
        bl_err(err, errlen, WHO ": part %zu: %zu bytes, expected %zu (shape x %s)", i + 2, got,
               want, dts);
        return WEIR_ESHAPE;
    }
    char perr[160];
    if (weir_pickle_scan(weir_buf_data(m->parts[i + 2]), weir_buf_size(m->parts[i + 2]), NULL, NULL,
                         NULL, perr, sizeof perr)) {
        bl_err(err, errlen, WHO ": part %zu (timestamps): %s", i + 3, perr);
        return WEIR_EFORMAT;
    }
    t->raw = weir_buf_ref(m->parts[i + 1]);
    t->ts = weir_buf_ref(m->parts[i + 2]);
    if (decode) return weir_array_init(&t->data, dt, nd, shape, m->parts[i + 1], 0);
    return WEIR_OK;
}

int weir_lecroy_parse(const weir_msg *m, int decode, weir_lecroy_packet *p, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    if (!m || m->nparts < 1) {
        bl_err(err, errlen, WHO ": empty message");
        return WEIR_EFORMAT;
    }
    cJSON *j = bl_json_part(m, 0, WHO, err, errlen);
    if (!j) return WEIR_EJSON;
    int rc = WEIR_EFORMAT;
    const char *ht = bl_get_str(j, "htype");
    if (ht && !strcmp(ht, "traces")) { /* a lone trace */
        cJSON_Delete(j);
        if (m->nparts != 3) {
            bl_err(err, errlen,
                   WHO ": a trace has 3 parts (JSON, samples, pickled timestamps), got %zu",
                   m->nparts);
            return WEIR_EFORMAT;
        }
        p->traces = calloc(1, sizeof *p->traces);
        if (!p->traces) return WEIR_ENOMEM;
        p->ntraces = 1;
        rc = parse_trace(m, 0, decode, &p->traces[0], err, errlen);
        if (rc) goto fail;
        p->what = WEIR_LECROY_TRACES;
        p->kind = WEIR_BL_OTHER;
        return WEIR_OK;
    }
    p->json = j;
    int w = control_what(j, 0, err, errlen);
    if (w < 0) goto fail;
    if (m->nparts == 1) {
        p->what = (weir_lecroy_what)w;
        p->kind = w == WEIR_LECROY_PREPARE ? WEIR_BL_START
                  : w == WEIR_LECROY_STOP  ? WEIR_BL_END
                                           : WEIR_BL_OTHER;
        return WEIR_OK;
    }
    /* an assembled sequence */
    if (w != WEIR_LECROY_SEQSTART || m->nparts < 2 || (m->nparts - 2) % 3) {
        bl_err(err, errlen,
               WHO
               ": a sequence is [SeqStart, (meta, data, timestamps) x n, SeqEnd]; got %zu parts "
               "starting with what=%d",
               m->nparts, w);
        goto fail;
    }
    p->seq_end = bl_json_part(m, m->nparts - 1, WHO, err, errlen);
    if (!p->seq_end) {
        rc = WEIR_EJSON;
        goto fail;
    }
    if (control_what(p->seq_end, m->nparts - 1, err, errlen) != WEIR_LECROY_SEQEND) {
        bl_err(err, errlen, WHO ": part %zu: expected the SeqEnd message (what 2)", m->nparts);
        goto fail;
    }
    size_t n = (m->nparts - 2) / 3;
    p->traces = n ? calloc(n, sizeof *p->traces) : NULL;
    if (n && !p->traces) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    for (size_t k = 0; k < n; k++) {
        p->ntraces = k + 1;
        rc = parse_trace(m, 1 + 3 * k, decode, &p->traces[k], err, errlen);
        if (rc) goto fail;
    }
    p->ntraces = n;
    p->what = WEIR_LECROY_SEQUENCE;
    p->kind = WEIR_BL_DATA;
    return WEIR_OK;
fail:
    weir_lecroy_clear(p);
    return rc;
}

int weir_lecroy_encode_msg(weir_msg *out, weir_lecroy_what what, int64_t frame,
                           const char *extra_json)
{
    if ((int)what < 0 || what > WEIR_LECROY_STOP) return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "msg") ||
        !cJSON_AddNumberToObject(j, "what", (double)what) ||
        !cJSON_AddNumberToObject(j, "frame", (double)frame)) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = bl_merge_json(j, extra_json);
    if (rc) {
        cJSON_Delete(j);
        return rc;
    }
    return bl_emit_json(out, j);
}

int weir_lecroy_encode_trace(weir_msg *out, int ch, int64_t frame, double ts, size_t rows,
                             size_t cols, const double *samples, const double *timestamps,
                             size_t nts)
{
    if ((rows * cols != 0 && !samples) || (nts && !timestamps)) return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    int ok = j && sh && cJSON_AddStringToObject(j, "htype", "traces") &&
             cJSON_AddNumberToObject(j, "ch", ch) && cJSON_AddNumberToObject(j, "ts", ts) &&
             cJSON_AddNumberToObject(j, "frame", (double)frame) &&
             cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)rows)) &&
             cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)cols));
    if (ok) {
        ok = cJSON_AddItemToObject(j, "shape", sh) != 0;
        sh = NULL;
    }
    ok = ok && cJSON_AddNumberToObject(j, "horiz_offset", 0) &&
         cJSON_AddNumberToObject(j, "horiz_interval", 1.25e-11) &&
         cJSON_AddStringToObject(j, "dtype", "float64");
    cJSON_Delete(sh);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = bl_emit_json(out, j);
    if (!rc) rc = bl_emit_bytes(out, samples, rows * cols * sizeof(double));
    if (rc) return rc;
    /* pickle protocol 4: EMPTY_LIST MEMOIZE [MARK BINFLOAT... APPENDS] STOP */
    bl_bytes b = {0};
    const uint8_t head[] = {0x80, 0x04, ']', 0x94};
    bl_put(&b, head, sizeof head);
    if (nts) bl_putc(&b, '(');
    for (size_t k = 0; k < nts; k++) {
        uint64_t u;
        memcpy(&u, &timestamps[k], sizeof u);
        bl_putc(&b, 'G');
        for (int s = 7; s >= 0; s--)
            bl_putc(&b, (uint8_t)(u >> (8 * s)));
    }
    if (nts) bl_putc(&b, 'e');
    bl_putc(&b, '.');
    return bl_emit_built(out, &b);
}
