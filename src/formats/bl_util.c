/* bl_util.c — small helpers shared by the beamline stream formats
 * (bl_internal.h): JSON parts with error offsets, integer members checked
 * for exactness, encoder parts, and a growable byte string. */
#include "bl_internal.h"

#include "weir/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t bl_empty_pickle[] = {0x80, 0x04, ']', 0x94, '.'};
const size_t bl_empty_pickle_len = sizeof bl_empty_pickle;

void bl_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

cJSON *bl_json_part(const weir_msg *m, size_t i, const char *who, char *err, size_t errlen)
{
    if (!m || i >= m->nparts) {
        bl_err(err, errlen, "%s: part %zu missing (message has %zu parts)", who, i + 1,
               m ? m->nparts : 0);
        return NULL;
    }
    const char *s = (const char *)weir_buf_data(m->parts[i]);
    size_t n = weir_buf_size(m->parts[i]);
    const char *end = NULL;
    cJSON *j = n ? cJSON_ParseWithLengthOpts(s, n, &end, 0) : NULL;
    if (!j) {
        size_t off = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
        bl_err(err, errlen, "%s: part %zu (%zu bytes), offset %zu: expected a JSON object", who,
               i + 1, n, off);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        bl_err(err, errlen,
               "%s: part %zu (%zu bytes), offset 0: expected a JSON object, got another JSON value",
               who, i + 1, n);
        return NULL;
    }
    return j;
}

int bl_get_i64(const cJSON *j, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsNumber(v)) return WEIR_EINVAL;
    double d = v->valuedouble;
    if (!(d >= -0x1p63 && d < 0x1p63) || d != floor(d)) return WEIR_EINVAL;
    *out = (int64_t)d;
    return WEIR_OK;
}

int bl_get_f64(const cJSON *j, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsNumber(v)) return WEIR_EINVAL;
    *out = v->valuedouble;
    return WEIR_OK;
}

const char *bl_get_str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int bl_exact_i64(const weir_buf *part, const char *key, int64_t *out)
{
    const char *s = (const char *)weir_buf_data(part);
    size_t n = weir_buf_size(part), kl = strlen(key);
    for (size_t k = 0; k + kl + 2 <= n; k++) {
        if (s[k] != '"' || memcmp(s + k + 1, key, kl) || s[k + 1 + kl] != '"') continue;
        size_t p = k + kl + 2;
        while (p < n && isspace((unsigned char)s[p]))
            p++;
        if (p >= n || s[p] != ':') continue;
        p++;
        while (p < n && isspace((unsigned char)s[p]))
            p++;
        char num[32];
        size_t q = 0;
        while (p < n && q + 1 < sizeof num && (isdigit((unsigned char)s[p]) || s[p] == '-'))
            num[q++] = s[p++];
        num[q] = 0;
        if (!q || (p < n && (s[p] == '.' || s[p] == 'e' || s[p] == 'E'))) return WEIR_ENOTFOUND;
        char *e;
        errno = 0;
        long long v = strtoll(num, &e, 10);
        if (*e || errno) return WEIR_ENOTFOUND;
        *out = v;
        return WEIR_OK;
    }
    return WEIR_ENOTFOUND;
}

int bl_emit_bytes(weir_msg *out, const void *data, size_t n)
{
    weir_buf *b = weir_buf_copy(data, n);
    if (!b) return WEIR_ENOMEM;
    return weir_msg_append(out, b);
}

int bl_emit_json(weir_msg *out, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return WEIR_ENOMEM;
    int rc = bl_emit_bytes(out, s, strlen(s));
    free(s);
    return rc;
}

int bl_merge_json(cJSON *j, const char *extra_json)
{
    if (!extra_json) return WEIR_OK;
    cJSON *x = cJSON_Parse(extra_json);
    if (!cJSON_IsObject(x)) {
        cJSON_Delete(x);
        return WEIR_EJSON;
    }
    while (x->child) {
        cJSON *it = cJSON_DetachItemViaPointer(x, x->child);
        cJSON_DeleteItemFromObjectCaseSensitive(j, it->string);
        cJSON_AddItemToObject(j, it->string, it);
    }
    cJSON_Delete(x);
    return WEIR_OK;
}

static int grow(bl_bytes *b, size_t more)
{
    if (b->oom) return -1;
    if (b->n + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void bl_put(bl_bytes *b, const void *data, size_t n)
{
    if (!n || grow(b, n)) return;
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

void bl_putc(bl_bytes *b, uint8_t c)
{
    bl_put(b, &c, 1);
}

void bl_printf(bl_bytes *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)k < sizeof tmp) {
        bl_put(b, tmp, (size_t)k);
        return;
    }
    if (grow(b, (size_t)k + 1)) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

int bl_emit_built(weir_msg *out, bl_bytes *b)
{
    int rc = b->oom ? WEIR_ENOMEM : bl_emit_bytes(out, b->p, b->n);
    free(b->p);
    memset(b, 0, sizeof *b);
    return rc;
}
