/* result.c — building, encoding and reading results (see result.h).
 *
 * A worker fills a result with named values; values are kept as libcbor
 * items and serialised once, on emit, into one buffer. The reducer side
 * decodes that buffer with cbor_load and answers typed lookups from the item
 * tree. Arrays are stored as tag 40 + typed-array tags so a result array
 * keeps its dtype, byte order and shape across any transport. */
#include "result.h"

#include "cbor_guard.h"

#include "weir/error.h"

#include <cbor.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    cbor_item_t *val;
} kv;

struct weir_result {
    uint64_t event;
    int worker;
    char *hash;
    kv *v;
    size_t n, cap;
    weir_buf *src;     /* decoded results: the encoded bytes */
    cbor_item_t *root; /* decoded results */
    cbor_item_t *vals; /* decoded results: the "values" map */
    char **strs;       /* terminated copies handed out by get_str */
    size_t nstrs;
};

weir_result *weir_result_new(uint64_t event, int worker, const char *params_hash)
{
    weir_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->event = event;
    r->worker = worker;
    r->hash = strdup(params_hash ? params_hash : "");
    if (!r->hash) {
        free(r);
        return NULL;
    }
    return r;
}

void weir_result_free(weir_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        cbor_decref(&r->v[i].val);
    }
    free(r->v);
    for (size_t i = 0; i < r->nstrs; i++)
        free(r->strs[i]);
    free(r->strs);
    free(r->hash);
    if (r->root) cbor_decref(&r->root);
    weir_buf_unref(r->src);
    free(r);
}

size_t weir_result_nvalues(const weir_result *r)
{
    return r->root ? (r->vals ? cbor_map_size(r->vals) : 0) : r->n;
}

/* Unsigned integer item of the smallest width (libcbor writes an item at the
 * width it was built with; cbor2 and RFC 8949 preferred serialisation use
 * the shortest). */
static cbor_item_t *build_uint(uint64_t u)
{
    if (u <= UINT8_MAX) return cbor_build_uint8((uint8_t)u);
    if (u <= UINT16_MAX) return cbor_build_uint16((uint16_t)u);
    if (u <= UINT32_MAX) return cbor_build_uint32((uint32_t)u);
    return cbor_build_uint64(u);
}

/* Negative integer -1 - u, shortest width. */
static cbor_item_t *build_negint(uint64_t u)
{
    if (u <= UINT8_MAX) return cbor_build_negint8((uint8_t)u);
    if (u <= UINT16_MAX) return cbor_build_negint16((uint16_t)u);
    if (u <= UINT32_MAX) return cbor_build_negint32((uint32_t)u);
    return cbor_build_negint64(u);
}

/* Takes ownership of val (decref on failure). */
static int put(weir_result *r, const char *key, cbor_item_t *val)
{
    if (!val) return WEIR_ENOMEM;
    if (r->root || !key) {
        cbor_decref(&val);
        return WEIR_EINVAL;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!strcmp(r->v[i].key, key)) {
            cbor_decref(&r->v[i].val);
            r->v[i].val = val;
            return WEIR_OK;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        kv *nv = realloc(r->v, cap * sizeof *nv);
        if (!nv) goto oom;
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n].key = strdup(key);
    if (!r->v[r->n].key) goto oom;
    r->v[r->n++].val = val;
    return WEIR_OK;
oom:
    cbor_decref(&val);
    return WEIR_ENOMEM;
}

int weir_result_set_i64(weir_result *r, const char *key, int64_t v)
{
    cbor_item_t *it;
    if (v >= 0)
        it = build_uint((uint64_t)v);
    else
        it = build_negint((uint64_t)(-(v + 1)));
    return put(r, key, it);
}

int weir_result_set_f64(weir_result *r, const char *key, double v)
{
    return put(r, key, cbor_build_float8(v));
}

int weir_result_set_str(weir_result *r, const char *key, const char *v)
{
    return put(r, key, cbor_build_stringn(v ? v : "", v ? strlen(v) : 0));
}

int weir_result_set_bytes(weir_result *r, const char *key, const void *data, size_t len)
{
    return put(r, key, cbor_build_bytestring(len ? data : (const void *)"", len));
}

/* RFC 8746 §2.1 typed-array tags: 0b010_f_s_e_ll (e = 1: little endian;
 * ll = log2 of the size, floats: 1 = 32 bit, 2 = 64 bit). One table serves
 * both directions. */
static const struct {
    uint64_t tag;
    weir_dtype_kind k;
    weir_byteorder o;
} typed_tags[] = {
    {64, WEIR_DT_U8, WEIR_LITTLE},  {72, WEIR_DT_I8, WEIR_LITTLE},  {69, WEIR_DT_U16, WEIR_LITTLE},
    {65, WEIR_DT_U16, WEIR_BIG},    {70, WEIR_DT_U32, WEIR_LITTLE}, {66, WEIR_DT_U32, WEIR_BIG},
    {71, WEIR_DT_U64, WEIR_LITTLE}, {67, WEIR_DT_U64, WEIR_BIG},    {77, WEIR_DT_I16, WEIR_LITTLE},
    {73, WEIR_DT_I16, WEIR_BIG},    {78, WEIR_DT_I32, WEIR_LITTLE}, {74, WEIR_DT_I32, WEIR_BIG},
    {79, WEIR_DT_I64, WEIR_LITTLE}, {75, WEIR_DT_I64, WEIR_BIG},    {85, WEIR_DT_F32, WEIR_LITTLE},
    {81, WEIR_DT_F32, WEIR_BIG},    {86, WEIR_DT_F64, WEIR_LITTLE}, {82, WEIR_DT_F64, WEIR_BIG},
};

uint64_t weir_typed_array_tag(weir_dtype dt)
{
    weir_dtype_kind k = dt.kind == WEIR_DT_BOOL ? WEIR_DT_U8 : dt.kind;
    int single = weir_dtype_size(k) == 1; /* one-byte types have no byte order */
    for (size_t i = 0; i < sizeof typed_tags / sizeof typed_tags[0]; i++)
        if (typed_tags[i].k == k && (single || typed_tags[i].o == dt.order))
            return typed_tags[i].tag;
    return 0;
}

int weir_typed_array_dtype(uint64_t tag, weir_dtype *out)
{
    for (size_t i = 0; i < sizeof typed_tags / sizeof typed_tags[0]; i++) {
        if (typed_tags[i].tag == tag) {
            out->kind = typed_tags[i].k;
            out->order = typed_tags[i].o;
            return WEIR_OK;
        }
    }
    return WEIR_EDTYPE;
}

cbor_item_t *weir_cbor_typed_array(const weir_array *a)
{
    /* bool travels as uint8: RFC 8746 has no boolean typed array */
    uint64_t tag = weir_typed_array_tag(a->dtype);
    if (!tag) return NULL;
    size_t n = weir_array_nelem(a), isz = weir_dtype_size(a->dtype.kind);
    uint8_t *tmp = NULL;
    const uint8_t *bytes = a->data;
    if (!weir_array_is_contiguous(a)) {
        tmp = malloc(n * isz > 0 ? n * isz : 1);
        if (!tmp) return NULL;
        weir_array_pack(a, tmp);
        bytes = tmp;
    }
    cbor_item_t *dims = cbor_new_definite_array((size_t)a->ndim);
    cbor_item_t *bs = cbor_build_bytestring(n * isz > 0 ? bytes : (const uint8_t *)"", n * isz);
    cbor_item_t *typed = bs ? cbor_build_tag(tag, bs) : NULL;
    cbor_item_t *pair = cbor_new_definite_array(2);
    cbor_item_t *outer = NULL;
    int ok = dims && typed && pair;
    for (int d = 0; ok && d < a->ndim; d++) {
        cbor_item_t *u = build_uint(a->shape[d]);
        ok = u && cbor_array_push(dims, u);
        if (u) cbor_decref(&u);
    }
    ok = ok && cbor_array_push(pair, dims) && cbor_array_push(pair, typed);
    if (ok) outer = cbor_build_tag(40, pair);
    if (dims) cbor_decref(&dims);
    if (bs) cbor_decref(&bs);
    if (typed) cbor_decref(&typed);
    if (pair) cbor_decref(&pair);
    free(tmp);
    return outer;
}

int weir_result_set_array(weir_result *r, const char *key, const weir_array *a)
{
    if (!weir_typed_array_tag(a->dtype)) return WEIR_EDTYPE;
    cbor_item_t *outer = weir_cbor_typed_array(a);
    if (!outer) return WEIR_ENOMEM;
    return put(r, key, outer);
}

static int map_add(cbor_item_t *map, const char *key, cbor_item_t *val)
{
    if (!val) return 0;
    cbor_item_t *k = cbor_build_string(key);
    int ok = k && cbor_map_add(map, (struct cbor_pair){.key = k, .value = val});
    if (k) cbor_decref(&k);
    cbor_decref(&val);
    return ok;
}

int weir_result_encode(const weir_result *r, weir_buf **out)
{
    *out = NULL;
    cbor_item_t *root = cbor_new_definite_map(4);
    cbor_item_t *vals = cbor_new_definite_map(r->n);
    int ok = root && vals;
    for (size_t i = 0; ok && i < r->n; i++)
        ok = map_add(vals, r->v[i].key, cbor_incref(r->v[i].val));
    ok = ok && map_add(root, "event", build_uint(r->event));
    ok = ok && map_add(root, "worker",
                       r->worker >= 0 ? build_uint((uint64_t)r->worker)
                                      : build_negint((uint64_t)(-(r->worker + 1))));
    ok = ok && map_add(root, "params", cbor_build_string(r->hash));
    ok = ok && map_add(root, "values", cbor_incref(vals));
    int rc = WEIR_ENOMEM;
    if (ok) {
        unsigned char *bytes = NULL;
        size_t cap = 0;
        size_t len = cbor_serialize_alloc(root, &bytes, &cap);
        if (len) {
            *out = weir_buf_copy(bytes, len);
            if (*out) rc = WEIR_OK;
        }
        free(bytes);
    }
    if (vals) cbor_decref(&vals);
    if (root) cbor_decref(&root);
    return rc;
}

static cbor_item_t *map_get(const cbor_item_t *map, const char *key)
{
    if (!map || !cbor_isa_map(map)) return NULL;
    size_t kl = strlen(key);
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        if (cbor_isa_string(p[i].key) && cbor_string_is_definite(p[i].key) &&
            cbor_string_length(p[i].key) == kl && !memcmp(cbor_string_handle(p[i].key), key, kl))
            return p[i].value;
    }
    return NULL;
}

static int item_to_i64(const cbor_item_t *it, int64_t *out)
{
    if (cbor_isa_uint(it)) {
        uint64_t u = cbor_get_int(it);
        if (u > INT64_MAX) return WEIR_ERANGE;
        *out = (int64_t)u;
        return WEIR_OK;
    }
    if (cbor_isa_negint(it)) {
        uint64_t u = cbor_get_int(it);
        if (u > INT64_MAX) return WEIR_ERANGE;
        *out = -(int64_t)u - 1;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

int weir_result_decode(weir_buf *buf, weir_result **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t bad;
    int grc = weir_cbor_guard(weir_buf_data(buf), weir_buf_size(buf), &bad);
    if (grc) {
        if (err) snprintf(err, errlen, "result: malformed CBOR at offset %zu", bad);
        return WEIR_ECBOR;
    }
    struct cbor_load_result lr;
    cbor_item_t *root = cbor_load(weir_buf_data(buf), weir_buf_size(buf), &lr);
    if (!root || lr.error.code != CBOR_ERR_NONE) {
        if (err) snprintf(err, errlen, "result: malformed CBOR at offset %zu", lr.error.position);
        if (root) cbor_decref(&root);
        return WEIR_ECBOR;
    }
    cbor_item_t *ev = map_get(root, "event"), *wk = map_get(root, "worker"),
                *ph = map_get(root, "params"), *vals = map_get(root, "values");
    int64_t wkn;
    if (!ev || !wk || !ph || !vals || !cbor_isa_uint(ev) || item_to_i64(wk, &wkn) ||
        !cbor_isa_string(ph) || !cbor_string_is_definite(ph) || !cbor_isa_map(vals)) {
        if (err) snprintf(err, errlen, "result: expected map {event, worker, params, values}");
        cbor_decref(&root);
        return WEIR_EFORMAT;
    }
    weir_result *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->hash = strndup((const char *)cbor_string_handle(ph), cbor_string_length(ph));
    if (!r->hash) goto oom;
    r->event = cbor_get_int(ev);
    r->worker = (int)wkn;
    r->root = root;
    r->vals = vals;
    r->src = weir_buf_ref(buf);
    *out = r;
    return WEIR_OK;
oom:
    free(r);
    cbor_decref(&root);
    return WEIR_ENOMEM;
}

uint64_t weir_result_event(const weir_result *r)
{
    return r->event;
}

int weir_result_worker(const weir_result *r)
{
    return r->worker;
}

const char *weir_result_params_hash(const weir_result *r)
{
    return r->hash;
}

static cbor_item_t *value(const weir_result *r, const char *key)
{
    if (r->root) return map_get(r->vals, key);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].key, key)) return r->v[i].val;
    return NULL;
}

int weir_result_has(const weir_result *r, const char *key)
{
    return value(r, key) != NULL;
}

int weir_result_get_i64(const weir_result *r, const char *key, int64_t *out)
{
    cbor_item_t *it = value(r, key);
    if (!it) return WEIR_ENOTFOUND;
    return item_to_i64(it, out);
}

int weir_result_get_f64(const weir_result *r, const char *key, double *out)
{
    cbor_item_t *it = value(r, key);
    if (!it) return WEIR_ENOTFOUND;
    if (cbor_isa_float_ctrl(it) && cbor_float_get_width(it) != CBOR_FLOAT_0) {
        *out = cbor_float_get_float(it);
        return WEIR_OK;
    }
    int64_t i;
    if (item_to_i64(it, &i) == WEIR_OK) {
        *out = (double)i;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

int weir_result_get_str(const weir_result *r, const char *key, const char **out)
{
    cbor_item_t *it = value(r, key);
    if (!it) return WEIR_ENOTFOUND;
    if (!cbor_isa_string(it) || !cbor_string_is_definite(it)) return WEIR_EINVAL;
    /* CBOR text is not NUL-terminated; hand out a terminated copy whose
     * lifetime follows the result (the result is logically const). */
    const char *s = (const char *)cbor_string_handle(it);
    char *copy = strndup(s ? s : "", cbor_string_length(it));
    if (!copy) return WEIR_ENOMEM;
    weir_result *mr = (weir_result *)r;
    char **ns = realloc(mr->strs, (mr->nstrs + 1) * sizeof *ns);
    if (!ns) {
        free(copy);
        return WEIR_ENOMEM;
    }
    mr->strs = ns;
    mr->strs[mr->nstrs++] = copy;
    *out = copy;
    return WEIR_OK;
}

int weir_result_get_bytes(const weir_result *r, const char *key, const void **data, size_t *len)
{
    cbor_item_t *it = value(r, key);
    if (!it) return WEIR_ENOTFOUND;
    if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it)) return WEIR_EINVAL;
    *data = cbor_bytestring_handle(it);
    *len = cbor_bytestring_length(it);
    return WEIR_OK;
}

int weir_result_get_array(const weir_result *r, const char *key, weir_array *out)
{
    memset(out, 0, sizeof *out);
    cbor_item_t *it = value(r, key);
    if (!it) return WEIR_ENOTFOUND;
    if (!cbor_isa_tag(it) || cbor_tag_value(it) != 40) return WEIR_EINVAL;
    cbor_item_t *pair = cbor_tag_item(it);
    int rc = WEIR_EFORMAT;
    cbor_item_t *typed = NULL, *bs = NULL;
    if (!cbor_isa_array(pair) || cbor_array_size(pair) != 2) goto done;
    cbor_item_t *dims = cbor_array_handle(pair)[0];
    typed = cbor_array_handle(pair)[1];
    if (!cbor_isa_array(dims) || cbor_array_size(dims) > WEIR_MAX_DIMS || !cbor_isa_tag(typed))
        goto done;
    weir_dtype dt;
    if (weir_typed_array_dtype(cbor_tag_value(typed), &dt)) {
        rc = WEIR_EDTYPE;
        goto done;
    }
    bs = cbor_tag_item(typed);
    if (!cbor_isa_bytestring(bs) || !cbor_bytestring_is_definite(bs)) goto done;
    out->ndim = (int)cbor_array_size(dims);
    /* nz: product of the non-zero dims times the item size, which the byte
     * strides must hold even when a zero dim empties the array */
    size_t n = 1, nz = weir_dtype_size(dt.kind);
    for (int d = 0; d < out->ndim; d++) {
        cbor_item_t *u = cbor_array_handle(dims)[d];
        if (!cbor_isa_uint(u)) goto done;
        uint64_t dim = cbor_get_int(u);
        if (dim > (uint64_t)PTRDIFF_MAX || (dim && nz > (size_t)PTRDIFF_MAX / dim)) {
            rc = WEIR_ESHAPE;
            goto done;
        }
        out->shape[d] = (size_t)dim;
        if (dim) nz *= (size_t)dim;
        n *= (size_t)dim;
    }
    if (n * weir_dtype_size(dt.kind) != cbor_bytestring_length(bs)) {
        rc = WEIR_ESHAPE;
        goto done;
    }
    out->dtype = dt;
    ptrdiff_t s = (ptrdiff_t)weir_dtype_size(dt.kind);
    for (int d = out->ndim - 1; d >= 0; d--) {
        out->strides[d] = s;
        s *= (ptrdiff_t)out->shape[d];
    }
    out->data = cbor_bytestring_handle(bs);
    out->buf = NULL; /* borrowed from the result */
    rc = WEIR_OK;
done:
    /* typed is borrowed from the array handle; pair and bs were incref'd. */
    if (bs) cbor_decref(&bs);
    cbor_decref(&pair);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}
