/* stins.c — the STINS ("stream1") protocol, decode and encode.
 *
 * Frame 0 is JSON (parsed with cJSON; the whole object is kept so unknown
 * fields pass through, as dranspose's pydantic models with extra="allow"
 * do). Images are exposed as zero-copy array views of frame 1 when
 * uncompressed, or decompressed into a new buffer for "bslz4". Every check
 * that fails says what was expected: a missing field, a dtype numpy would
 * not know, or a shape whose byte size differs from the pixel frame. */
#include "weir/stins.h"

#include "weir/bslz4.h"
#include "weir/error.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "STINS: ");
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int get_int(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    /* range check first: casting an out-of-range double is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -0x1p63 && v->valuedouble < 0x1p63) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

void weir_stins_clear(weir_stins_packet *p)
{
    if (!p) return;
    free(p->filename);
    weir_array_release(&p->data);
    weir_buf_unref(p->raw);
    for (size_t i = 0; i < p->nextra; i++)
        weir_buf_unref(p->extra[i]);
    free(p->extra);
    cJSON_Delete(p->json_);
    memset(p, 0, sizeof *p);
}

static int parse_image(const weir_msg *msg, const cJSON *j, int decode, weir_stins_packet *p,
                       char *err, size_t errlen)
{
    if (msg->nparts != 2)
        return fail(err, errlen, WEIR_EFORMAT,
                    "image message %lld: expected 2 frames (JSON + pixels), got %zu",
                    (long long)p->msg_number, msg->nparts);
    if (!get_int(j, "frame", &p->frame))
        return fail(err, errlen, WEIR_EFORMAT, "image message %lld: expected integer \"frame\"",
                    (long long)p->msg_number);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (nd < 0 || nd > WEIR_MAX_DIMS)
        return fail(err, errlen, WEIR_EFORMAT,
                    "image %lld: expected \"shape\" as a list of at most %d integers",
                    (long long)p->frame, WEIR_MAX_DIMS);
    size_t dims[WEIR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 ||
            d->valuedouble != (double)(size_t)d->valuedouble)
            return fail(err, errlen, WEIR_EFORMAT,
                        "image %lld: shape[%d] is not a non-negative integer", (long long)p->frame,
                        i);
        dims[i] = (size_t)d->valuedouble;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    weir_dtype dt;
    if (!cJSON_IsString(type) || weir_dtype_parse(type->valuestring, &dt))
        return fail(err, errlen, WEIR_EDTYPE,
                    "image %lld: unknown dtype %s%s%s (expected a numpy name such as \"uint16\")",
                    (long long)p->frame, cJSON_IsString(type) ? "\"" : "",
                    cJSON_IsString(type) ? type->valuestring : "(missing)",
                    cJSON_IsString(type) ? "\"" : "");
    const cJSON *comp = cJSON_GetObjectItemCaseSensitive(j, "compression");
    if (!comp || cJSON_IsNull(comp) || (cJSON_IsString(comp) && !strcmp(comp->valuestring, "none")))
        p->compression = WEIR_STINS_COMP_NONE;
    else if (cJSON_IsString(comp) && !strcmp(comp->valuestring, "bslz4"))
        p->compression = WEIR_STINS_COMP_BSLZ4;
    else
        return fail(err, errlen, WEIR_EUNSUPPORTED,
                    "image %lld: compression %s is not supported (expected \"none\" or \"bslz4\")",
                    (long long)p->frame, cJSON_IsString(comp) ? comp->valuestring : "(not text)");
    p->raw = weir_buf_ref(msg->parts[1]);
    size_t isz = weir_dtype_size(dt.kind), nbytes = isz;
    for (int i = 0; i < nd; i++) {
        if (dims[i] && nbytes > SIZE_MAX / dims[i])
            return fail(err, errlen, WEIR_ESHAPE, "image %lld: shape overflows",
                        (long long)p->frame);
        nbytes *= dims[i];
    }
    if (p->compression == WEIR_STINS_COMP_NONE) {
        if (weir_buf_size(p->raw) != nbytes)
            return fail(err, errlen, WEIR_ESHAPE,
                        "image %lld: shape and dtype %s need %zu bytes, the pixel frame has %zu",
                        (long long)p->frame, weir_dtype_name(dt.kind), nbytes,
                        weir_buf_size(p->raw));
        return weir_array_init(&p->data, dt, nd, dims, p->raw, 0);
    }
    if (!decode) return WEIR_OK;
    uint64_t declared;
    uint32_t block;
    int rc = weir_bslz4_header(weir_buf_data(p->raw), weir_buf_size(p->raw), &declared, &block);
    if (rc)
        return fail(err, errlen, rc, "image %lld: bslz4 frame has no valid 12-byte header",
                    (long long)p->frame);
    if (declared != nbytes)
        return fail(err, errlen, WEIR_ESHAPE,
                    "image %lld: shape and dtype %s need %zu bytes, bslz4 header says %llu",
                    (long long)p->frame, weir_dtype_name(dt.kind), nbytes,
                    (unsigned long long)declared);
    weir_buf *out = weir_buf_new(nbytes);
    if (!out) return WEIR_ENOMEM;
    rc = weir_bslz4_decode(weir_buf_data(p->raw), weir_buf_size(p->raw), weir_buf_mutable(out),
                           nbytes, isz);
    if (rc) {
        weir_buf_unref(out);
        return fail(err, errlen, rc, "image %lld: bslz4 data is corrupt: %s", (long long)p->frame,
                    weir_strerror(rc));
    }
    rc = weir_array_init(&p->data, dt, nd, dims, out, 0);
    weir_buf_unref(out);
    return rc;
}

int weir_stins_parse(const weir_msg *msg, int decode, weir_stins_packet *p, char *err,
                     size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    if (!msg || msg->nparts < 1) return fail(err, errlen, WEIR_EFORMAT, "empty message");
    const weir_buf *f0 = msg->parts[0];
    cJSON *j = cJSON_ParseWithLength((const char *)weir_buf_data(f0), weir_buf_size(f0));
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(err, errlen, WEIR_EJSON, "frame 0 (%zu bytes) is not a JSON object",
                    weir_buf_size(f0));
    }
    p->json_ = j;
    int rc;
    const cJSON *ht = cJSON_GetObjectItemCaseSensitive(j, "htype");
    if (!cJSON_IsString(ht)) {
        rc = fail(err, errlen, WEIR_EFORMAT, "frame 0 has no \"htype\" text field");
        goto out;
    }
    if (!get_int(j, "msg_number", &p->msg_number)) {
        rc = fail(err, errlen, WEIR_EFORMAT, "%s message: expected integer \"msg_number\"",
                  ht->valuestring);
        goto out;
    }
    if (!strcmp(ht->valuestring, "header")) {
        p->kind = WEIR_STINS_HEADER;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "filename");
        if (cJSON_IsString(fn) && !(p->filename = strdup(fn->valuestring))) {
            rc = WEIR_ENOMEM;
            goto out;
        }
        if (msg->nparts > 1) {
            p->extra = calloc(msg->nparts - 1, sizeof *p->extra);
            if (!p->extra) {
                rc = WEIR_ENOMEM;
                goto out;
            }
            for (size_t i = 1; i < msg->nparts; i++)
                p->extra[p->nextra++] = weir_buf_ref(msg->parts[i]);
        }
        rc = WEIR_OK;
    } else if (!strcmp(ht->valuestring, "image")) {
        p->kind = WEIR_STINS_IMAGE;
        rc = parse_image(msg, j, decode, p, err, errlen);
    } else if (!strcmp(ht->valuestring, "series_end")) {
        p->kind = WEIR_STINS_SERIES_END;
        rc = msg->nparts == 1 ? WEIR_OK
                              : fail(err, errlen, WEIR_EFORMAT,
                                     "series_end: expected 1 frame, got %zu", msg->nparts);
    } else {
        rc =
            fail(err, errlen, WEIR_EFORMAT,
                 "unknown htype \"%.40s\" (expected header, image or series_end)", ht->valuestring);
    }
out:
    if (rc) weir_stins_clear(p);
    return rc;
}

int weir_stins_get_f64(const weir_stins_packet *p, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->json_, key);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsNumber(v)) return WEIR_EINVAL;
    *out = v->valuedouble;
    return WEIR_OK;
}

int weir_stins_get_str(const weir_stins_packet *p, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->json_, key);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsString(v)) return WEIR_EINVAL;
    *out = v->valuestring;
    return WEIR_OK;
}

char *weir_stins_json(const weir_stins_packet *p)
{
    return p->json_ ? cJSON_PrintUnformatted(p->json_) : NULL;
}

/* Serialises j into a new frame appended to out; takes j. */
static int append_json(weir_msg *out, cJSON *j, const char *extra_json)
{
    int rc = WEIR_ENOMEM;
    if (!j) return WEIR_ENOMEM;
    if (extra_json) {
        cJSON *x = cJSON_Parse(extra_json);
        if (!cJSON_IsObject(x)) {
            cJSON_Delete(x);
            rc = WEIR_EJSON;
            goto done;
        }
        cJSON *it = x->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(x, it);
            cJSON_DeleteItemFromObjectCaseSensitive(j, it->string);
            cJSON_AddItemToObject(j, it->string, it);
            it = next;
        }
        cJSON_Delete(x);
    }
    char *s = cJSON_PrintUnformatted(j);
    if (!s) goto done;
    weir_buf *b = weir_buf_copy(s, strlen(s));
    free(s);
    rc = b ? weir_msg_append(out, b) : WEIR_ENOMEM;
done:
    cJSON_Delete(j);
    return rc;
}

int weir_stins_encode_header(weir_msg *out, int64_t msg_number, const char *filename,
                             const char *extra_json)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "header") ||
        !cJSON_AddStringToObject(j, "filename", filename ? filename : "") ||
        !cJSON_AddNumberToObject(j, "msg_number", (double)msg_number)) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return append_json(out, j, extra_json);
}

int weir_stins_encode_series_end(weir_msg *out, int64_t msg_number)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "series_end") ||
        !cJSON_AddNumberToObject(j, "msg_number", (double)msg_number)) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return append_json(out, j, NULL);
}

int weir_stins_encode_image(weir_msg *out, int64_t msg_number, int64_t frame, weir_dtype dt,
                            int ndim, const size_t *shape, const void *pixels,
                            weir_stins_compression comp, const char *extra_json)
{
    size_t isz = weir_dtype_size(dt.kind);
    if (!isz || ndim < 0 || ndim > WEIR_MAX_DIMS) return WEIR_EINVAL;
    size_t nbytes = isz;
    for (int i = 0; i < ndim; i++)
        nbytes *= shape[i];
    char typestr[8];
    weir_dtype_typestr(dt, typestr);
    cJSON *j = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    int ok = j && sh;
    ok = ok && cJSON_AddStringToObject(j, "htype", "image");
    ok = ok && cJSON_AddNumberToObject(j, "frame", (double)frame);
    for (int i = 0; ok && i < ndim; i++)
        ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[i]));
    if (ok) {
        ok = cJSON_AddItemToObject(j, "shape", sh);
        sh = NULL;
    }
    /* numpy names are little-endian on the wire; keep typestrings for others */
    ok = ok &&
         cJSON_AddStringToObject(
             j, "type", dt.order == WEIR_LITTLE || isz == 1 ? weir_dtype_name(dt.kind) : typestr);
    ok = ok && cJSON_AddStringToObject(j, "compression",
                                       comp == WEIR_STINS_COMP_BSLZ4 ? "bslz4" : "none");
    ok = ok && cJSON_AddNumberToObject(j, "msg_number", (double)msg_number);
    cJSON_Delete(sh);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = append_json(out, j, extra_json);
    if (rc) return rc;
    weir_buf *px;
    if (comp == WEIR_STINS_COMP_BSLZ4) {
        size_t cap = weir_bslz4_bound(nbytes, isz, 0), len = 0;
        px = weir_buf_new(cap);
        if (!px) return WEIR_ENOMEM;
        rc = weir_bslz4_encode(pixels, nbytes, isz, 0, weir_buf_mutable(px), cap, &len);
        if (rc) {
            weir_buf_unref(px);
            return rc;
        }
        weir_buf *v = weir_buf_view(px, 0, len);
        weir_buf_unref(px);
        px = v;
    } else {
        px = weir_buf_copy(pixels, nbytes);
    }
    return px ? weir_msg_append(out, px) : WEIR_ENOMEM;
}

int weir_stins_encode_slice(weir_msg *out, const weir_stins_packet *p, size_t r0, size_t r1)
{
    const weir_array *a = &p->data;
    if (p->kind != WEIR_STINS_IMAGE || a->ndim < 1 || !a->buf || r0 > r1 || r1 > a->shape[0] ||
        !weir_array_is_contiguous(a))
        return WEIR_EINVAL;
    size_t rowbytes = weir_dtype_size(a->dtype.kind);
    for (int d = 1; d < a->ndim; d++)
        rowbytes *= a->shape[d];
    cJSON *j = cJSON_Duplicate(p->json_, 1);
    cJSON *shape = cJSON_CreateArray(), *full = cJSON_CreateArray(), *slice = cJSON_CreateObject();
    int ok = j && shape && full && slice;
    for (int d = 0; ok && d < a->ndim; d++) {
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)(d ? a->shape[d] : r1 - r0)));
        ok = ok && cJSON_AddItemToArray(full, cJSON_CreateNumber((double)a->shape[d]));
    }
    ok = ok && cJSON_AddNumberToObject(slice, "start", (double)r0) &&
         cJSON_AddNumberToObject(slice, "stop", (double)r1) &&
         cJSON_AddItemToObject(slice, "full_shape", full);
    if (ok) full = NULL;
    ok = ok && cJSON_ReplaceItemInObjectCaseSensitive(j, "shape", shape);
    if (ok) shape = NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "compression");
    ok = ok && cJSON_AddStringToObject(j, "compression", "none");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "slice");
    ok = ok && cJSON_AddItemToObject(j, "slice", slice);
    if (ok) slice = NULL;
    cJSON_Delete(shape);
    cJSON_Delete(full);
    cJSON_Delete(slice);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = append_json(out, j, NULL);
    if (rc) return rc;
    size_t off = (size_t)(a->data - weir_buf_data(a->buf)) + r0 * rowbytes;
    weir_buf *v = weir_buf_view(a->buf, off, (r1 - r0) * rowbytes);
    return v ? weir_msg_append(out, v) : WEIR_ENOMEM;
}
