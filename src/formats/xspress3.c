/* xspress3.c — the Xspress3 / Xspress3-mini stream (weir/beamline.h,
 * reference/dranspose.md §3.5).
 *
 * Part 1 is JSON with "htype": "header" (one part), "image" (three parts:
 * JSON, the [channels, bins] spectra as little-endian "type", a pickled list
 * of numpy arrays) or "series_end". Older devices send an image as three
 * single-part messages in a row; the assembler in beamline.c joins them, so
 * the parser only sees the 3-part form. The spectra are a zero-copy view
 * after an exact size check; the pickle is checked by walking its opcodes
 * and otherwise kept as opaque bytes. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "xspress3"

void weir_xspress3_clear(weir_xspress3_packet *p)
{
    if (!p) return;
    cJSON_Delete(p->json);
    weir_array_release(&p->data);
    weir_buf_unref(p->raw);
    weir_buf_unref(p->meta);
    memset(p, 0, sizeof *p);
    p->frame = -1;
}

static int parse_image(const weir_msg *m, int decode, weir_xspress3_packet *p, char *err,
                       size_t errlen)
{
    const cJSON *j = p->json;
    if (m->nparts != 3) {
        bl_err(err, errlen, WHO ": an image has 3 parts (JSON, spectra, pickled meta), got %zu%s",
               m->nparts,
               m->nparts == 1 ? " (an old-format image: assemble it with its next two messages)"
                              : "");
        return WEIR_EFORMAT;
    }
    if (bl_get_i64(j, "frame", &p->frame) || p->frame < 0) {
        bl_err(err, errlen, WHO ": part 1: expected \"frame\" as an integer >= 0");
        return WEIR_EFORMAT;
    }
    bl_get_f64(j, "exptime", &p->exptime);
    const char *comp = bl_get_str(j, "compression");
    if (comp && strcmp(comp, "none")) {
        bl_err(err, errlen, WHO ": part 1: \"compression\" \"%.20s\" (expected \"none\")", comp);
        return WEIR_EUNSUPPORTED;
    }
    const char *type = bl_get_str(j, "type");
    weir_dtype dt;
    if (!type || weir_dtype_parse(type, &dt)) {
        bl_err(err, errlen, WHO ": part 1: expected \"type\" as a numpy dtype name like uint32");
        return WEIR_EDTYPE;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
    if (nd < 1 || nd > WEIR_MAX_DIMS) {
        bl_err(err, errlen, WHO ": part 1: expected \"shape\" as a list like [channels, bins]");
        return WEIR_EFORMAT;
    }
    size_t shape[WEIR_MAX_DIMS], nelem = 1;
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e9) {
            bl_err(err, errlen, WHO ": part 1: shape[%d] is not a size", i);
            return WEIR_EFORMAT;
        }
        shape[i] = (size_t)d->valuedouble;
        nelem *= shape[i];
        if (nelem > ((size_t)1 << 40)) {
            bl_err(err, errlen, WHO ": part 1: shape too large");
            return WEIR_EFORMAT;
        }
    }
    size_t want = nelem * weir_dtype_size(dt.kind), got = weir_buf_size(m->parts[1]);
    if (want != got) {
        bl_err(err, errlen, WHO ": part 2: %zu bytes, expected %zu (shape x %s)", got, want, type);
        return WEIR_ESHAPE;
    }
    const uint8_t *pk = weir_buf_data(m->parts[2]);
    size_t pn = weir_buf_size(m->parts[2]);
    char perr[160];
    if (weir_pickle_scan(pk, pn, &p->meta_protocol, NULL, NULL, perr, sizeof perr)) {
        bl_err(err, errlen, WHO ": part 3 (meta): %s", perr);
        return WEIR_EFORMAT;
    }
    p->raw = weir_buf_ref(m->parts[1]);
    p->meta = weir_buf_ref(m->parts[2]);
    if (decode) {
        int rc = weir_array_init(&p->data, dt, nd, shape, m->parts[1], 0);
        if (rc) {
            bl_err(err, errlen, WHO ": part 2 does not match the shape");
            return rc;
        }
    }
    p->kind = WEIR_BL_DATA;
    return WEIR_OK;
}

int weir_xspress3_parse(const weir_msg *m, int decode, weir_xspress3_packet *p, char *err,
                        size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    p->json = bl_json_part(m, 0, WHO, err, errlen);
    if (!p->json) return WEIR_EJSON;
    const char *htype = bl_get_str(p->json, "htype");
    int rc = WEIR_OK;
    if (!htype) {
        bl_err(err, errlen, WHO ": part 1: expected \"htype\" (header, image or series_end)");
        rc = WEIR_EFORMAT;
    } else if (!strcmp(htype, "header")) {
        p->kind = WEIR_BL_START;
        p->filename = bl_get_str(p->json, "filename");
    } else if (!strcmp(htype, "series_end")) {
        p->kind = WEIR_BL_END;
    } else if (!strcmp(htype, "image")) {
        rc = parse_image(m, decode, p, err, errlen);
    } else {
        bl_err(err, errlen,
               WHO ": part 1: unknown \"htype\" \"%.30s\" (expected header, image or series_end)",
               htype);
        rc = WEIR_EFORMAT;
    }
    if (rc) weir_xspress3_clear(p);
    return rc;
}

int weir_xspress3_encode_header(weir_msg *out, const char *filename)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "header") ||
        !cJSON_AddStringToObject(j, "filename", filename ? filename : "") ||
        !cJSON_AddFalseToObject(j, "overwritable")) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}

int weir_xspress3_encode_image(weir_msg *out, int64_t frame, double exptime, weir_dtype_kind dt,
                               size_t channels, size_t bins, const void *pixels, const void *meta,
                               size_t metalen)
{
    size_t isz = weir_dtype_size(dt);
    if (!isz) return WEIR_EDTYPE;
    if (frame < 0 || (!pixels && channels * bins != 0)) return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    int ok = j && sh && cJSON_AddStringToObject(j, "htype", "image") &&
             cJSON_AddNumberToObject(j, "exptime", exptime) &&
             cJSON_AddNumberToObject(j, "frame", (double)frame) &&
             cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)channels)) &&
             cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)bins));
    if (ok) {
        ok = cJSON_AddItemToObject(j, "shape", sh) != 0;
        sh = NULL;
    }
    ok = ok && cJSON_AddStringToObject(j, "type", weir_dtype_name(dt)) &&
         cJSON_AddStringToObject(j, "compression", "none");
    cJSON_Delete(sh);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = bl_emit_json(out, j);
    if (!rc) rc = bl_emit_bytes(out, pixels, channels * bins * isz);
    if (!rc)
        rc = meta ? bl_emit_bytes(out, meta, metalen)
                  : bl_emit_bytes(out, bl_empty_pickle, bl_empty_pickle_len);
    return rc;
}

int weir_xspress3_encode_end(weir_msg *out)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "series_end")) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return bl_emit_json(out, j);
}

int weir_xspress3_split_old(const weir_msg *image, weir_msg out[3])
{
    if (!image || image->nparts != 3) return WEIR_EINVAL;
    for (int k = 0; k < 3; k++) {
        int rc = weir_msg_append(&out[k], weir_buf_ref(image->parts[k]));
        if (rc) return rc;
    }
    return WEIR_OK;
}
