/* npy.c — NumPy .npy files (include/weir/npy.h).
 *
 * A .npy file is a 6-byte magic, a version, a little-endian header length
 * (u16 for 1.0, u32 for 2.0/3.0), a header that is a Python dict literal
 * {'descr': ..., 'fortran_order': ..., 'shape': (...), } and then the raw
 * elements. The header is not JSON, so it is read by a small strict
 * tokenizer for exactly that grammar: quoted strings without escapes, the
 * words True/False, non-negative integers and tuples of them. Anything else
 * (structured dtypes, object arrays, extra keys) is refused with a message
 * naming the file, the byte offset and what was expected; numpy itself never
 * writes anything outside this grammar.
 *
 * Reading is zero copy: the array is a view into the mapped file. Writing
 * reproduces numpy's own header byte for byte (numpy >= 1.24: the sorted
 * keys, 21 - len(first dim) spare spaces so the shape can grow in place,
 * then space padding plus '\n' so the data starts on a 64-byte boundary), so
 * files written here compare equal to np.save output. */
#include "weir/npy.h"

#include "weir/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy's GROWTH_AXIS_MAX_DIGITS: spare room for the first dimension. */
#define NPY_GROWTH_DIGITS 21

/* Parser state: the header bytes, where we are, and where to report. */
typedef struct {
    const char *name; /* file name or "<buffer>" for messages */
    const uint8_t *p;
    size_t pos;  /* offset into the header */
    size_t len;  /* header length */
    size_t base; /* file offset of the header, so messages give file offsets */
    int allow_long_suffix;
    char *err;
    size_t errlen;
} npy_parser;

__attribute__((format(printf, 4, 5))) static int fail_at(npy_parser *ps, int code, size_t pos,
                                                         const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "%s: byte %zu: ", ps->name, ps->base + pos);
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* Printable description of the byte at pos for "found ..." messages. */
static void describe(const npy_parser *ps, size_t pos, char out[24])
{
    if (pos >= ps->len) {
        snprintf(out, 24, "end of header");
        return;
    }
    uint8_t c = ps->p[pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, 24, "'%c'", (char)c);
    else
        snprintf(out, 24, "byte 0x%02x", c);
}

static int expected(npy_parser *ps, int code, const char *what)
{
    char found[24];
    describe(ps, ps->pos, found);
    return fail_at(ps, code, ps->pos, "expected %s, found %s", what, found);
}

static void skip_ws(npy_parser *ps)
{
    while (ps->pos < ps->len) {
        uint8_t c = ps->p[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        ps->pos++;
    }
}

static int peek(npy_parser *ps)
{
    skip_ws(ps);
    return ps->pos < ps->len ? ps->p[ps->pos] : -1;
}

static int expect_char(npy_parser *ps, char c, const char *what)
{
    if (peek(ps) != (uint8_t)c) return expected(ps, WEIR_EFORMAT, what);
    ps->pos++;
    return WEIR_OK;
}

/* A quoted string without escapes; *s points into the header (not NUL
 * terminated). */
static int parse_string(npy_parser *ps, const char **s, size_t *n)
{
    int q = peek(ps);
    if (q != '\'' && q != '"') return expected(ps, WEIR_EFORMAT, "a quoted string");
    size_t start = ++ps->pos;
    while (ps->pos < ps->len && ps->p[ps->pos] != q) {
        uint8_t c = ps->p[ps->pos];
        if (c == '\\')
            return fail_at(ps, WEIR_EFORMAT, ps->pos, "escape sequences are not supported");
        if (c < 0x20 || c >= 0x7f)
            return fail_at(ps, WEIR_EFORMAT, ps->pos, "expected a printable ASCII character");
        ps->pos++;
    }
    if (ps->pos >= ps->len) return fail_at(ps, WEIR_EFORMAT, start - 1, "unterminated string");
    *s = (const char *)ps->p + start;
    *n = ps->pos - start;
    ps->pos++;
    return WEIR_OK;
}

static int match_word(npy_parser *ps, const char *w)
{
    size_t n = strlen(w);
    if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, w, n) != 0) return 0;
    /* "Falsey" is not False */
    if (ps->pos + n < ps->len) {
        uint8_t c = ps->p[ps->pos + n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return 0;
    }
    ps->pos += n;
    return 1;
}

static int parse_bool(npy_parser *ps, int *v)
{
    peek(ps);
    if (match_word(ps, "True"))
        *v = 1;
    else if (match_word(ps, "False"))
        *v = 0;
    else
        return expected(ps, WEIR_EFORMAT, "True or False");
    return WEIR_OK;
}

/* A non-negative decimal integer as Python writes it (no sign, no leading
 * zeros, no underscores); files from Python 2 may carry an 'L' suffix. */
static int parse_dim(npy_parser *ps, size_t *v)
{
    int c = peek(ps);
    if (c < '0' || c > '9') return expected(ps, WEIR_EFORMAT, "a non-negative integer");
    size_t start = ps->pos, x = 0;
    while (ps->pos < ps->len && ps->p[ps->pos] >= '0' && ps->p[ps->pos] <= '9') {
        unsigned d = (unsigned)(ps->p[ps->pos] - '0');
        if (x > (SIZE_MAX - d) / 10)
            return fail_at(ps, WEIR_ESHAPE, start, "dimension does not fit in size_t");
        x = x * 10 + d;
        ps->pos++;
    }
    if (ps->pos - start > 1 && ps->p[start] == '0')
        return fail_at(ps, WEIR_EFORMAT, start, "expected an integer without leading zeros");
    if (ps->allow_long_suffix && ps->pos < ps->len && ps->p[ps->pos] == 'L') ps->pos++;
    *v = x;
    return WEIR_OK;
}

/* (), (n,), (a, b), (a, b,) — a one-element tuple needs its comma, as in
 * Python, since "(n)" is just the integer n. */
static int parse_shape(npy_parser *ps, int *ndim, size_t *shape)
{
    int rc = expect_char(ps, '(', "'(' opening the shape tuple");
    if (rc) return rc;
    int n = 0;
    for (;;) {
        if (peek(ps) == ')') { /* () or after a trailing comma */
            ps->pos++;
            break;
        }
        if (n == WEIR_MAX_DIMS)
            return fail_at(ps, WEIR_EUNSUPPORTED, ps->pos, "more than %d dimensions",
                           WEIR_MAX_DIMS);
        rc = parse_dim(ps, &shape[n]);
        if (rc) return rc;
        n++;
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == ')' && n > 1) {
            ps->pos++;
            break;
        }
        return expected(ps, WEIR_EFORMAT, n == 1 ? "',' after the only dimension" : "',' or ')'");
    }
    *ndim = n;
    return WEIR_OK;
}

/* Typestrings for weir's dtypes only: [<>|=] kind size, e.g. '<u2', '|b1'. */
static int parse_descr(npy_parser *ps, weir_dtype *dt)
{
    int first = peek(ps);
    size_t at = ps->pos;
    if (first == '[') return fail_at(ps, WEIR_EDTYPE, at, "structured dtypes are not supported");
    const char *s;
    size_t n;
    int rc = parse_string(ps, &s, &n);
    if (rc) return rc;
    at++; /* point at the typestring, not the quote */
    /* every supported typestring is exactly order, kind, one digit */
    if (n != 3 || !strchr("<>|=", s[0]) || s[2] < '1' || s[2] > '9')
        return fail_at(ps, WEIR_EDTYPE, at,
                       "unsupported dtype '%.*s' (expected a typestring like '<u2')",
                       (int)(n > 32 ? 32 : n), s);
    size_t size = (size_t)(s[2] - '0');
    static const struct {
        char kind;
        size_t size;
        weir_dtype_kind k;
    } map[] = {
        {'u', 1, WEIR_DT_U8},  {'u', 2, WEIR_DT_U16}, {'u', 4, WEIR_DT_U32},  {'u', 8, WEIR_DT_U64},
        {'i', 1, WEIR_DT_I8},  {'i', 2, WEIR_DT_I16}, {'i', 4, WEIR_DT_I32},  {'i', 8, WEIR_DT_I64},
        {'f', 4, WEIR_DT_F32}, {'f', 8, WEIR_DT_F64}, {'b', 1, WEIR_DT_BOOL},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].kind != s[1] || map[i].size != size) continue;
        /* '|' means "no byte order" and only makes sense for one byte */
        if (s[0] == '|' && size != 1) break;
        dt->kind = map[i].k;
        if (size == 1 || s[0] == '=')
            dt->order = weir_host_order();
        else
            dt->order = s[0] == '>' ? WEIR_BIG : WEIR_LITTLE;
        return WEIR_OK;
    }
    return fail_at(ps, WEIR_EDTYPE, at,
                   "unsupported dtype '%.*s' (expected one of u1-u8, i1-i8, f4, f8, b1)", (int)n,
                   s);
}

typedef struct {
    weir_dtype dt;
    int fortran;
    int ndim;
    size_t shape[WEIR_MAX_DIMS];
} npy_header;

static int parse_dict(npy_parser *ps, npy_header *h)
{
    enum { K_DESCR = 1, K_FORTRAN = 2, K_SHAPE = 4 };
    unsigned seen = 0;
    int rc = expect_char(ps, '{', "'{' opening the header dict");
    if (rc) return rc;
    for (;;) {
        if (peek(ps) == '}') {
            ps->pos++;
            break;
        }
        size_t key_at = ps->pos;
        const char *k;
        size_t kn;
        rc = parse_string(ps, &k, &kn);
        if (rc) return rc;
        unsigned which = 0;
        if (kn == 5 && !memcmp(k, "descr", 5))
            which = K_DESCR;
        else if (kn == 13 && !memcmp(k, "fortran_order", 13))
            which = K_FORTRAN;
        else if (kn == 5 && !memcmp(k, "shape", 5))
            which = K_SHAPE;
        else
            return fail_at(ps, WEIR_EFORMAT, key_at,
                           "unexpected key '%.*s' (expected 'descr', 'fortran_order' or 'shape')",
                           (int)(kn > 32 ? 32 : kn), k);
        if (seen & which)
            return fail_at(ps, WEIR_EFORMAT, key_at, "duplicate key '%.*s'", (int)kn, k);
        seen |= which;
        rc = expect_char(ps, ':', "':' after a key");
        if (rc) return rc;
        if (which == K_DESCR)
            rc = parse_descr(ps, &h->dt);
        else if (which == K_FORTRAN)
            rc = parse_bool(ps, &h->fortran);
        else
            rc = parse_shape(ps, &h->ndim, h->shape);
        if (rc) return rc;
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == '}') {
            ps->pos++;
            break;
        }
        return expected(ps, WEIR_EFORMAT, "',' or '}' after a value");
    }
    if (seen != (K_DESCR | K_FORTRAN | K_SHAPE))
        return fail_at(ps, WEIR_EFORMAT, ps->pos, "header lacks %s",
                       !(seen & K_DESCR)     ? "'descr'"
                       : !(seen & K_FORTRAN) ? "'fortran_order'"
                                             : "'shape'");
    if (peek(ps) != -1) return expected(ps, WEIR_EFORMAT, "only padding after the header dict");
    return WEIR_OK;
}

static uint32_t get_le(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int parse_named(weir_buf *buf, const char *name, weir_array *out, char *err, size_t errlen)
{
    npy_parser ps = {.name = name, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = 0;
    if (!buf) return fail_at(&ps, WEIR_EINVAL, 0, "no buffer");
    const uint8_t *d = weir_buf_data(buf);
    size_t size = weir_buf_size(buf);
    if (size < NPY_MAGIC_LEN + 2)
        return fail_at(
            &ps, size && memcmp(d, NPY_MAGIC, size < 6 ? size : 6) ? WEIR_EFORMAT : WEIR_ETRUNCATED,
            size, "expected the 8-byte magic and version, file has %zu bytes", size);
    if (memcmp(d, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return fail_at(&ps, WEIR_EFORMAT, 0, "expected the magic \"\\x93NUMPY\"");
    unsigned major = d[6], minor = d[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return fail_at(&ps, WEIR_EUNSUPPORTED, 6, "expected version 1.0, 2.0 or 3.0, found %u.%u",
                       major, minor);
    int lenbytes = major == 1 ? 2 : 4;
    size_t hstart = 8 + (size_t)lenbytes;
    if (size < hstart)
        return fail_at(&ps, WEIR_ETRUNCATED, size, "expected a %d-byte header length", lenbytes);
    size_t hlen = get_le(d + 8, lenbytes);
    if (hlen > size - hstart)
        return fail_at(&ps, WEIR_ETRUNCATED, size,
                       "expected a %zu-byte header from byte %zu, file has %zu bytes", hlen, hstart,
                       size);
    ps.p = d + hstart;
    ps.len = hlen;
    ps.base = hstart;
    /* numpy strips Python 2's 'L' suffixes only in version 1.0 and 2.0 headers */
    ps.allow_long_suffix = major < 3;
    npy_header h;
    memset(&h, 0, sizeof h);
    int rc = parse_dict(&ps, &h);
    if (rc) return rc;
    /* Like numpy, refuse shapes whose extent overflows even when a zero
     * dimension makes the array empty: strides are computed from the other
     * dimensions and must stay representable. */
    size_t span = weir_dtype_size(h.dt.kind);
    int empty = 0;
    for (int i = 0; i < h.ndim; i++) {
        if (!h.shape[i]) {
            empty = 1;
            continue;
        }
        if (span > (size_t)PTRDIFF_MAX / h.shape[i])
            return fail_at(&ps, WEIR_ESHAPE, hlen, "shape is too large (extent overflows)");
        span *= h.shape[i];
    }
    /* positions below are relative to the header: hlen is where the data starts */
    size_t data_off = hstart + hlen;
    rc = weir_array_init(out, h.dt, h.ndim, h.shape, buf, data_off);
    if (rc == WEIR_ESHAPE)
        return fail_at(&ps, rc, hlen, "expected %zu data bytes for the shape, found %zu",
                       empty ? 0 : span, size - data_off);
    if (rc) return fail_at(&ps, rc, hlen, "cannot build the array: %s", weir_strerror(rc));
    if (h.fortran) {
        ptrdiff_t s = (ptrdiff_t)weir_dtype_size(h.dt.kind);
        for (int i = 0; i < h.ndim; i++) {
            out->strides[i] = s;
            s *= (ptrdiff_t)h.shape[i];
        }
    }
    return WEIR_OK;
}

int weir_npy_parse(weir_buf *buf, weir_array *out, char *err, size_t errlen)
{
    if (!out) return WEIR_EINVAL;
    return parse_named(buf, "<buffer>", out, err, errlen);
}

int weir_npy_read(const char *path, weir_array *out, char *err, size_t errlen)
{
    if (!path || !out) return WEIR_EINVAL;
    memset(out, 0, sizeof *out);
    weir_buf *buf = NULL;
    int rc = weir_buf_map_file(path, &buf);
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read: %s", path, weir_strerror(rc));
        return rc;
    }
    rc = parse_named(buf, path, out, err, errlen);
    weir_buf_unref(buf); /* the array holds its own reference */
    return rc;
}

/* Appends to a bounded string; the caller checks the final length. */
static void put(char *s, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *s, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(s + *n, cap - *n, fmt, ap);
    va_end(ap);
    *n = k < 0 ? cap : *n + (size_t)k;
}

/* Builds the complete header (magic to '\n') into hdr; returns its length
 * or 0 if it does not fit. */
static size_t build_header(const weir_array *a, uint8_t *hdr, size_t cap)
{
    char dict[512], ts[8];
    size_t n = 0;
    weir_dtype_typestr(a->dtype, ts);
    put(dict, sizeof dict, &n, "{'descr': '%s', 'fortran_order': False, 'shape': (", ts);
    for (int i = 0; i < a->ndim; i++)
        put(dict, sizeof dict, &n, i ? ", %zu" : "%zu", a->shape[i]);
    put(dict, sizeof dict, &n, "%s), }", a->ndim == 1 ? "," : "");
    if (a->ndim > 0) {
        char first[32];
        int digits = snprintf(first, sizeof first, "%zu", a->shape[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
            put(dict, sizeof dict, &n, " ");
    }
    if (n >= sizeof dict) return 0;
    /* version 1.0 unless the header length no longer fits in a u16 */
    size_t prefix = 10;
    size_t pad = NPY_ALIGN - ((prefix + n + 1) % NPY_ALIGN);
    if (n + 1 + pad > 0xffff) {
        prefix = 12;
        pad = NPY_ALIGN - ((prefix + n + 1) % NPY_ALIGN);
    }
    size_t total = prefix + n + pad + 1;
    if (total > cap) return 0;
    size_t hlen = total - prefix;
    memcpy(hdr, NPY_MAGIC, NPY_MAGIC_LEN);
    hdr[6] = prefix == 10 ? 1 : 2;
    hdr[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        hdr[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(hdr + prefix, dict, n);
    memset(hdr + prefix + n, ' ', pad);
    hdr[total - 1] = '\n';
    return total;
}

static int check_array(const weir_array *a)
{
    if (!a || !weir_dtype_size(a->dtype.kind) || a->ndim < 0 || a->ndim > WEIR_MAX_DIMS)
        return WEIR_EINVAL;
    size_t n = weir_dtype_size(a->dtype.kind);
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && n > SIZE_MAX / a->shape[i]) return WEIR_ESHAPE;
        n *= a->shape[i];
    }
    if (n && !a->data) return WEIR_EINVAL;
    return WEIR_OK;
}

int weir_npy_encode(const weir_array *a, weir_buf **out)
{
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    int rc = check_array(a);
    if (rc) return rc;
    uint8_t hdr[1024];
    size_t hn = build_header(a, hdr, sizeof hdr);
    if (!hn) return WEIR_EINVAL;
    size_t nbytes = weir_array_nbytes(a);
    if (nbytes > SIZE_MAX - hn) return WEIR_ESHAPE;
    weir_buf *b = weir_buf_new(hn + nbytes);
    if (!b) return WEIR_ENOMEM;
    uint8_t *w = weir_buf_mutable(b);
    memcpy(w, hdr, hn);
    weir_array_pack(a, w + hn);
    *out = b;
    return WEIR_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return WEIR_EIO;
        }
        p += k;
        n -= (size_t)k;
    }
    return WEIR_OK;
}

int weir_npy_write(const char *path, const weir_array *a)
{
    if (!path) return WEIR_EINVAL;
    weir_buf *b = NULL;
    int rc = weir_npy_encode(a, &b);
    if (rc) return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
        goto unref;
    }
    rc = write_all(fd, weir_buf_data(b), weir_buf_size(b));
    if (close(fd) != 0 && !rc) rc = WEIR_EIO;
unref:
    weir_buf_unref(b);
    return rc;
}
