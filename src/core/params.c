/* params.c — typed parameters (include/weir/params.h).
 *
 * Each entry keeps the raw bytes it was set from (what dranspose stores and
 * what its parameter files hold) next to the parsed value, so a value can be
 * dumped back unchanged. Parsing follows dranspose's to_bytes/from_bytes
 * (int "3", float "0.5", bool "True"/"False") but refuses malformed values
 * instead of silently turning them into 0, because a typo in a live
 * parameter should be an error the operator sees.
 *
 * Parameter files are parsed with cJSON (JSON list) and libcbor (CBOR list),
 * the two forms dranspose's controller dumps and `replay -p` accepts. */
#include "weir/params.h"

#include "weir/error.h"

#include "cbor_guard.h"

#include <cbor.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    weir_param_type type;
    int declared;
    char *description;
    char *def;  /* declared default as text (NULL if undeclared) */
    char *data; /* raw bytes, NUL-terminated for convenience */
    size_t len;
    int64_t i;
    double f;
    int b;
} param;

struct weir_params {
    param *v;
    size_t n, cap;
    char hash[17];
    int hash_valid;
};

weir_params *weir_params_new(void)
{
    return calloc(1, sizeof(weir_params));
}

static void param_clear(param *p)
{
    free(p->name);
    free(p->description);
    free(p->def);
    free(p->data);
}

void weir_params_free(weir_params *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        param_clear(&p->v[i]);
    free(p->v);
    free(p);
}

static char *dupmem(const void *d, size_t len)
{
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (len) memcpy(s, d, len);
    s[len] = 0;
    return s;
}

weir_params *weir_params_clone(const weir_params *src)
{
    weir_params *p = weir_params_new();
    if (!p) return NULL;
    if (src->n) {
        p->v = calloc(src->n, sizeof *p->v);
        if (!p->v) goto fail;
        p->cap = src->n;
    }
    for (size_t i = 0; i < src->n; i++) {
        param *d = &p->v[i];
        *d = src->v[i];
        d->name = strdup(src->v[i].name);
        d->description = src->v[i].description ? strdup(src->v[i].description) : NULL;
        d->def = src->v[i].def ? strdup(src->v[i].def) : NULL;
        d->data = dupmem(src->v[i].data, src->v[i].len);
        p->n++;
        if (!d->name || !d->data || (src->v[i].description && !d->description) ||
            (src->v[i].def && !d->def))
            goto fail;
    }
    memcpy(p->hash, src->hash, sizeof p->hash);
    p->hash_valid = src->hash_valid;
    return p;
fail:
    weir_params_free(p);
    return NULL;
}

const char *weir_param_type_name(weir_param_type t)
{
    switch (t) {
    case WEIR_PARAM_INT:
        return "int";
    case WEIR_PARAM_FLOAT:
        return "float";
    case WEIR_PARAM_BOOL:
        return "bool";
    case WEIR_PARAM_STRING:
        return "str";
    case WEIR_PARAM_BINARY:
        return "binary";
    }
    return "?";
}

static param *find(const weir_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].name, name) == 0) return &p->v[i];
    return NULL;
}

/* Parses data (len bytes) as type t into tmp; returns 0 or WEIR_EPARAM. */
static int parse_value(weir_param_type t, const char *s, size_t len, param *tmp)
{
    char buf[128];
    if (t == WEIR_PARAM_STRING || t == WEIR_PARAM_BINARY) return WEIR_OK;
    /* an embedded NUL would end strtoll early and hide trailing garbage */
    if (len == 0 || len >= sizeof buf || memchr(s, 0, len)) return WEIR_EPARAM;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    switch (t) {
    case WEIR_PARAM_INT: {
        long long v = strtoll(buf, &end, 10);
        while (*end == ' ' || *end == '\n')
            end++;
        if (errno || *end || end == buf) return WEIR_EPARAM;
        tmp->i = v;
        return WEIR_OK;
    }
    case WEIR_PARAM_FLOAT: {
        double v = strtod(buf, &end);
        while (*end == ' ' || *end == '\n')
            end++;
        if (errno == ERANGE || *end || end == buf) return WEIR_EPARAM;
        tmp->f = v;
        return WEIR_OK;
    }
    case WEIR_PARAM_BOOL:
        if (!strcmp(buf, "True") || !strcmp(buf, "true") || !strcmp(buf, "1"))
            tmp->b = 1;
        else if (!strcmp(buf, "False") || !strcmp(buf, "false") || !strcmp(buf, "0"))
            tmp->b = 0;
        else
            return WEIR_EPARAM;
        return WEIR_OK;
    default:
        return WEIR_EPARAM;
    }
}

static const char *type_default(weir_param_type t)
{
    switch (t) {
    case WEIR_PARAM_INT:
        return "0";
    case WEIR_PARAM_FLOAT:
        return "0.0";
    case WEIR_PARAM_BOOL:
        return "False";
    default:
        return "";
    }
}

static int store(param *e, const void *data, size_t len, const param *parsed)
{
    char *d = dupmem(data, len);
    if (!d) return WEIR_ENOMEM;
    free(e->data);
    e->data = d;
    e->len = len;
    e->i = parsed->i;
    e->f = parsed->f;
    e->b = parsed->b;
    return WEIR_OK;
}

static param *append(weir_params *p, const char *name)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        param *v = realloc(p->v, cap * sizeof *v);
        if (!v) return NULL;
        p->v = v;
        p->cap = cap;
    }
    param *e = &p->v[p->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return NULL;
    e->data = dupmem("", 0);
    if (!e->data) {
        free(e->name);
        return NULL;
    }
    p->n++;
    return e;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int weir_params_declare(weir_params *p, const weir_param_desc *d, char *err, size_t errlen)
{
    if (!d || !d->name || !*d->name) return WEIR_EINVAL;
    if (d->type < WEIR_PARAM_INT || d->type > WEIR_PARAM_BINARY) {
        seterr(err, errlen, "parameter '%s': unknown type %d", d->name, (int)d->type);
        return WEIR_EPARAM;
    }
    param *e = find(p, d->name);
    if (e && e->declared) {
        if (e->type != d->type) {
            seterr(err, errlen, "parameter '%s' declared twice with types %s and %s", d->name,
                   weir_param_type_name(e->type), weir_param_type_name(d->type));
            return WEIR_EPARAM;
        }
        return WEIR_OK;
    }
    const char *def = d->default_value ? d->default_value : type_default(d->type);
    param parsed = {0};
    if (parse_value(d->type, def, strlen(def), &parsed)) {
        seterr(err, errlen, "parameter '%s': default '%s' is not a valid %s", d->name, def,
               weir_param_type_name(d->type));
        return WEIR_EPARAM;
    }
    int had_value = e != NULL;
    if (!e && !(e = append(p, d->name))) return WEIR_ENOMEM;
    e->type = d->type;
    e->declared = 1;
    free(e->description);
    e->description = d->description ? strdup(d->description) : NULL;
    free(e->def);
    e->def = strdup(def);
    if (!e->def) return WEIR_ENOMEM;
    p->hash_valid = 0;
    if (had_value) {
        /* A value set before the declaration (from a file read first) must
         * now parse as the declared type. */
        if (parse_value(d->type, e->data, e->len, &parsed)) {
            seterr(err, errlen, "parameter '%s': expected %s, got '%.60s'", d->name,
                   weir_param_type_name(d->type), e->data);
            return WEIR_EPARAM;
        }
        e->i = parsed.i, e->f = parsed.f, e->b = parsed.b;
        return WEIR_OK;
    }
    return store(e, def, strlen(def), &parsed);
}

int weir_params_set(weir_params *p, const char *name, const void *data, size_t len, int strict,
                    char *err, size_t errlen)
{
    param *e = find(p, name);
    if (!e) {
        if (strict) {
            seterr(err, errlen, "unknown parameter '%s'", name);
            return WEIR_ENOTFOUND;
        }
        if (!(e = append(p, name))) return WEIR_ENOMEM;
        e->type = WEIR_PARAM_BINARY;
    }
    param parsed = {0};
    if (e->declared && parse_value(e->type, data, len, &parsed)) {
        seterr(err, errlen, "parameter '%s': expected %s, got '%.*s'", name,
               weir_param_type_name(e->type), (int)(len > 60 ? 60 : len), (const char *)data);
        return WEIR_EPARAM;
    }
    p->hash_valid = 0;
    return store(e, data, len, &parsed);
}

int weir_params_load_json(weir_params *p, const char *text, size_t len, char *err, size_t errlen)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    int rc = WEIR_OK;
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        seterr(err, errlen, "parameter file is not valid JSON (near offset %ld)",
               at ? (long)(at - text) : -1L);
        return WEIR_EJSON;
    }
    if (!cJSON_IsArray(root)) {
        seterr(err, errlen, "parameter file: expected a JSON list of {\"name\", \"data\"}");
        rc = WEIR_EFORMAT;
        goto done;
    }
    int idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "data");
        if (!cJSON_IsString(n) || !(cJSON_IsString(d) || cJSON_IsNumber(d) || cJSON_IsBool(d))) {
            seterr(err, errlen,
                   "parameter file: entry %d: expected {\"name\": string, \"data\": string}", idx);
            rc = WEIR_EFORMAT;
            goto done;
        }
        char num[64];
        const char *val = d->valuestring;
        if (cJSON_IsNumber(d)) {
            if (d->valuedouble >= -0x1p63 && d->valuedouble < 0x1p63 &&
                d->valuedouble == (double)(int64_t)d->valuedouble)
                snprintf(num, sizeof num, "%" PRId64, (int64_t)d->valuedouble);
            else
                snprintf(num, sizeof num, "%.17g", d->valuedouble);
            val = num;
        } else if (cJSON_IsBool(d)) {
            val = cJSON_IsTrue(d) ? "True" : "False";
        }
        rc = weir_params_set(p, n->valuestring, val, strlen(val), 0, err, errlen);
        if (rc) goto done;
        idx++;
    }
done:
    cJSON_Delete(root);
    return rc;
}

static int cbor_str(cbor_item_t *it, const char **s, size_t *len)
{
    if ((cbor_isa_string(it) && cbor_string_is_definite(it)) ||
        (cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it))) {
        *s = (const char *)(cbor_isa_string(it) ? cbor_string_handle(it)
                                                : cbor_bytestring_handle(it));
        *len = cbor_isa_string(it) ? cbor_string_length(it) : cbor_bytestring_length(it);
        if (!*s) *s = "";
        return 1;
    }
    return 0;
}

int weir_params_load_cbor(weir_params *p, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    size_t bad;
    if (weir_cbor_guard(data, len, &bad)) {
        seterr(err, errlen, "parameter file is not valid CBOR (at offset %zu)", bad);
        return WEIR_ECBOR;
    }
    struct cbor_load_result res;
    cbor_item_t *root = cbor_load(data, len, &res);
    int rc = WEIR_OK;
    if (!root || res.error.code != CBOR_ERR_NONE) {
        seterr(err, errlen, "parameter file is not valid CBOR (at offset %zu)", res.error.position);
        if (root) cbor_decref(&root);
        return WEIR_ECBOR;
    }
    if (res.read != len) {
        seterr(err, errlen,
               "parameter file: %zu unexpected bytes after the CBOR list at offset %zu",
               len - res.read, res.read);
        cbor_decref(&root);
        return WEIR_EFORMAT;
    }
    if (!cbor_isa_array(root)) {
        seterr(err, errlen, "parameter file: expected a CBOR list of {name, data} maps");
        rc = WEIR_EFORMAT;
        goto done;
    }
    for (size_t i = 0; i < cbor_array_size(root); i++) {
        cbor_item_t *m = cbor_array_handle(root)[i];
        const char *name = NULL, *val = NULL;
        size_t nlen = 0, vlen = 0;
        if (cbor_isa_map(m)) {
            struct cbor_pair *pairs = cbor_map_handle(m);
            for (size_t k = 0; k < cbor_map_size(m); k++) {
                const char *key;
                size_t klen;
                if (!cbor_str(pairs[k].key, &key, &klen)) continue;
                if (klen == 4 && !memcmp(key, "name", 4)) cbor_str(pairs[k].value, &name, &nlen);
                if (klen == 4 && !memcmp(key, "data", 4)) cbor_str(pairs[k].value, &val, &vlen);
            }
        }
        if (!name || !val) {
            seterr(err, errlen,
                   "parameter file: entry %zu: expected {\"name\": text, \"data\": "
                   "bytes|text}",
                   i);
            rc = WEIR_EFORMAT;
            goto done;
        }
        char *nm = dupmem(name, nlen);
        if (!nm) {
            rc = WEIR_ENOMEM;
            goto done;
        }
        rc = weir_params_set(p, nm, val, vlen, 0, err, errlen);
        free(nm);
        if (rc) goto done;
    }
done:
    cbor_decref(&root);
    return rc;
}

int weir_params_load_file(weir_params *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        seterr(err, errlen, "%s: cannot open parameter file: %s", path, strerror(errno));
        return errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = WEIR_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                rc = WEIR_ENOMEM;
                goto done;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    /* dranspose tries JSON, then pickle, then CBOR; a JSON list starts with
     * '[' after optional whitespace, a CBOR list with 0x80..0x9f. */
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
        i++;
    char sub[400] = "";
    if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) {
        /* PROTO opcode: dranspose's pickle form, which weir does not read */
        rc = WEIR_EUNSUPPORTED;
        snprintf(sub, sizeof sub,
                 "this is a Python pickle (protocol %d); pickle parameter files are not "
                 "supported: use the JSON or CBOR form",
                 buf[1]);
    } else if (i < len && buf[i] == '[')
        rc = weir_params_load_json(p, (const char *)buf, len, sub, sizeof sub);
    else if (len && buf[0] >= 0x80 && buf[0] <= 0x9f)
        rc = weir_params_load_cbor(p, buf, len, sub, sizeof sub);
    else {
        rc = WEIR_EFORMAT;
        snprintf(sub, sizeof sub,
                 "expected a JSON list [{\"name\":..,\"data\":..}] or its CBOR form (pickle "
                 "parameter files are not supported)");
    }
    if (rc) seterr(err, errlen, "%s: %s", path, sub);
done:
    free(buf);
    fclose(f);
    return rc;
}

size_t weir_params_count(const weir_params *p)
{
    return p->n;
}

int weir_params_info(const weir_params *p, size_t i, weir_param_info *out)
{
    if (i >= p->n) return WEIR_ENOTFOUND;
    const param *e = &p->v[i];
    out->name = e->name;
    out->type = e->type;
    out->declared = e->declared;
    out->description = e->description;
    out->default_value = e->def;
    return WEIR_OK;
}

const char *weir_params_name(const weir_params *p, size_t i)
{
    return i < p->n ? p->v[i].name : NULL;
}

static int lookup(const weir_params *p, const char *name, weir_param_type t, param **e)
{
    *e = find(p, name);
    if (!*e) return WEIR_ENOTFOUND;
    if ((*e)->type != t) return WEIR_EPARAM;
    return WEIR_OK;
}

int weir_params_get_int(const weir_params *p, const char *name, int64_t *out)
{
    param *e;
    int rc = lookup(p, name, WEIR_PARAM_INT, &e);
    if (!rc) *out = e->i;
    return rc;
}

int weir_params_get_float(const weir_params *p, const char *name, double *out)
{
    param *e;
    int rc = lookup(p, name, WEIR_PARAM_FLOAT, &e);
    if (!rc) *out = e->f;
    return rc;
}

int weir_params_get_bool(const weir_params *p, const char *name, int *out)
{
    param *e;
    int rc = lookup(p, name, WEIR_PARAM_BOOL, &e);
    if (!rc) *out = e->b;
    return rc;
}

int weir_params_get_bytes(const weir_params *p, const char *name, const char **data, size_t *len)
{
    param *e = find(p, name);
    if (!e) return WEIR_ENOTFOUND;
    *data = e->data;
    if (len) *len = e->len;
    return WEIR_OK;
}

const char *weir_params_format(const weir_params *p, const char *name, char *buf, size_t len)
{
    param *e = find(p, name);
    if (!e)
        snprintf(buf, len, "<unset>");
    else if (e->type == WEIR_PARAM_BINARY)
        snprintf(buf, len, "<%zu bytes>", e->len);
    else
        snprintf(buf, len, "%s", e->data);
    return buf;
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
    const param *v = ctx;
    return strcmp(v[*(const size_t *)a].name, v[*(const size_t *)b].name);
}

const char *weir_params_hash(const weir_params *pc)
{
    weir_params *p = (weir_params *)pc; /* the cache is logically const */
    if (p->hash_valid) return p->hash;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t *idx = p->n ? malloc(p->n * sizeof *idx) : NULL;
    for (size_t i = 0; i < p->n; i++)
        if (idx) idx[i] = i;
    if (idx) qsort_r(idx, p->n, sizeof *idx, cmp_idx, p->v);
#define MIX(ptr, n)                                                                                \
    for (size_t k_ = 0; k_ < (n); k_++) {                                                          \
        h ^= ((const uint8_t *)(ptr))[k_];                                                         \
        h *= 0x100000001b3ULL;                                                                     \
    }
    for (size_t j = 0; j < p->n; j++) {
        const param *e = &p->v[idx ? idx[j] : j];
        uint8_t t = (uint8_t)e->type;
        uint64_t l = e->len;
        MIX(e->name, strlen(e->name) + 1);
        MIX(&t, 1);
        MIX(&l, sizeof l);
        MIX(e->data, e->len);
    }
#undef MIX
    free(idx);
    snprintf(p->hash, sizeof p->hash, "%016" PRIx64, h);
    p->hash_valid = 1;
    return p->hash;
}
