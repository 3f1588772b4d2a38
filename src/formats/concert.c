/* concert.c — Concert's ZeroMQ image protocol (weir/concert.h).
 *
 * The metadata is parsed with cJSON; the pixels are a zero-copy view of the
 * second part after an exact size check against dtype and shape. ucad
 * writes "frame-number" as a decimal string, Concert's Python side writes
 * none; both are accepted. */
#include "weir/concert.h"

#include "weir/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void weir_concert_clear(weir_concert_packet *p)
{
    if (!p) return;
    weir_array_release(&p->data);
    cJSON_Delete(p->json_);
    memset(p, 0, sizeof *p);
}

int weir_concert_parse(const weir_msg *msg, int decode, weir_concert_packet *p, char *err,
                       size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->frame = -1;
    if (!msg || msg->nparts < 1) {
        snprintf(err, errlen, "Concert: empty message");
        return WEIR_EFORMAT;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)weir_buf_data(msg->parts[0]),
                                     weir_buf_size(msg->parts[0]));
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "Concert: part 1 (%zu bytes) is not a JSON object",
                 weir_buf_size(msg->parts[0]));
        return WEIR_EJSON;
    }
    p->json_ = j;
    int rc = WEIR_EFORMAT;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "end"))) {
        p->end = 1;
        return WEIR_OK;
    }
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "frame-number");
    if (cJSON_IsString(fn)) {
        char *e;
        long long v = strtoll(fn->valuestring, &e, 10);
        if (*e || e == fn->valuestring || v < 0) {
            snprintf(err, errlen, "Concert: \"frame-number\" \"%.30s\" is not a number",
                     fn->valuestring);
            goto fail;
        }
        p->frame = v;
    } else if (cJSON_IsNumber(fn) && fn->valuedouble >= 0 && fn->valuedouble < 0x1p62) {
        p->frame = (int64_t)fn->valuedouble;
    }
    p->mirror = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "mirror"));
    const cJSON *rot = cJSON_GetObjectItemCaseSensitive(j, "rotate");
    if (cJSON_IsNumber(rot)) p->rotate = (int)rot->valuedouble;
    if (msg->nparts != 2) {
        snprintf(err, errlen, "Concert: an image has 2 parts (JSON, pixels), got %zu", msg->nparts);
        goto fail;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    weir_dtype dtype;
    if (!cJSON_IsString(dt) || weir_dtype_parse(dt->valuestring, &dtype)) {
        snprintf(err, errlen, "Concert: unknown \"dtype\" (expected a numpy name like uint16)");
        rc = WEIR_EDTYPE;
        goto fail;
    }
    int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
    if (nd < 1 || nd > WEIR_MAX_DIMS) {
        snprintf(err, errlen, "Concert: expected \"shape\" as a list like [rows, cols]");
        goto fail;
    }
    size_t shape[WEIR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12) {
            snprintf(err, errlen, "Concert: shape[%d] is not a size", i);
            goto fail;
        }
        shape[i] = (size_t)d->valuedouble;
    }
    if (!decode) return WEIR_OK;
    rc = weir_array_init(&p->data, dtype, nd, shape, msg->parts[1], 0);
    if (rc) {
        snprintf(err, errlen, "Concert: dtype and shape do not match the %zu pixel bytes",
                 weir_buf_size(msg->parts[1]));
        goto fail;
    }
    return WEIR_OK;
fail:
    weir_concert_clear(p);
    return rc;
}

static int add_json(weir_msg *out, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return WEIR_ENOMEM;
    weir_buf *b = weir_buf_copy(s, strlen(s));
    free(s);
    return b ? weir_msg_append(out, b) : WEIR_ENOMEM;
}

int weir_concert_encode_image(weir_msg *out, weir_dtype_kind dt, size_t rows, size_t cols,
                              const void *pixels, int64_t frame)
{
    size_t isz = weir_dtype_size(dt);
    if (!isz) return WEIR_EDTYPE;
    cJSON *j = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    int ok = j && sh && cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)rows)) &&
             cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)cols));
    if (ok) {
        ok = cJSON_AddItemToObject(j, "shape", sh) != 0;
        sh = NULL;
    }
    ok = ok && cJSON_AddStringToObject(j, "dtype", weir_dtype_name(dt)) &&
         cJSON_AddFalseToObject(j, "mirror") && cJSON_AddNumberToObject(j, "rotate", 0);
    if (ok && frame >= 0) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)frame); /* a string, as ucad writes */
        ok = cJSON_AddStringToObject(j, "frame-number", num) != NULL;
    }
    cJSON_Delete(sh);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = add_json(out, j);
    weir_buf *px = rc ? NULL : weir_buf_copy(pixels, rows * cols * isz);
    return rc ? rc : px ? weir_msg_append(out, px) : WEIR_ENOMEM;
}

int weir_concert_encode_end(weir_msg *out)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddTrueToObject(j, "end")) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return add_json(out, j);
}
