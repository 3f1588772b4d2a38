/* merlin.c — Quantum Detectors Merlin (Medipix3) frames, decode and encode
 * (include/weir/merlin.h).
 *
 * A frame header is ASCII: "MQ1," then comma-separated fields, NUL-padded to
 * the data offset given in its third field. The header is parsed in place
 * (no copy, no allocation) by a field cursor over the text, following the
 * grammar of the headers Merlin writes: 14 fixed fields, 8 thresholds or one
 * empty field (raw headers), 0 or nchips DAC blocks ("3RX" + 27 values),
 * then optionally the "MQ1A" extension (timestamp, shutter ns, counter
 * depth) and a trailing empty field. Every field is checked and an error
 * names the byte offset, the field and what was expected.
 *
 * Pixels: U08/U16/U32/U64 images are used in place as big-endian array
 * views. R64 ("raw") data is the chip read-out itself, handled in 8-byte
 * chunks whose pixel order is reversed (1-bit: a big-endian u64 holds 64
 * pixels, pixel i = bit i; 6-bit: 8 bytes reversed; 12-bit: 4 big-endian
 * u16 reversed; 24-bit: two 12-bit images, the first holding the high 12
 * bits). A 2x2 quad sends 256-pixel chip rows as [Q4 | Q3 | Q2 | Q1] per
 * input row; Q1/Q2 form the top half as they are, Q3/Q4 the bottom half
 * flipped in x and y (LiberTEM-rs decoder.rs, LiberTEM mib.py). Decoding
 * and encoding share one pixel-address function per depth, so the encoder
 * is the decoder's exact inverse.
 *
 * The HDR text is "Key:<tab>Value" lines between "HDR," and "End"; it is
 * copied (it is small) so values can be looked up later. MPX framing is
 * split statelessly so a TCP client can call the splitter on its own
 * receive buffer. */
#include "weir/merlin.h"

#include "../core/bufreader.h"

#include "weir/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MQ1_MAGIC "MQ1,"
#define MPX_MAGIC "MPX,"
#define HDR_MAGIC "HDR,"
#define HDR_FILE_SIZE 2048 /* Merlin pads .hdr files to this size */
#define MQ1_ALIGN 384      /* Merlin's data offsets: 384 (1 chip), 768 (4 chips) */
#define CHIP_COLS 256

/* Where messages point: the input's name and the offset of byte 0. */
typedef struct {
    const char *name;
    const uint8_t *p;
    size_t base;
    char *err;
    size_t errlen;
} mctx;

__attribute__((format(printf, 4, 5))) static int fail_at(const mctx *c, int code, size_t pos,
                                                         const char *fmt, ...)
{
    if (c->err && c->errlen) {
        int n = snprintf(c->err, c->errlen, "%s: byte %zu: ", c->name, c->base + pos);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* Printable excerpt of p[s, e) for messages (at most 24 characters). */
static void show(const uint8_t *p, size_t s, size_t e, char out[32])
{
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = s; i < e && n < 26; i++)
        out[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    if (e - s > 24) out[n++] = '.', out[n++] = '.';
    out[n++] = '"';
    out[n] = 0;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ------------------------------------------------------------ field cursor */

typedef struct {
    size_t s, e; /* the field is p[s, e) */
} span;

typedef struct {
    const uint8_t *p;
    size_t pos, end;
    int idx; /* index of the field last returned */
    int done;
} cursor;

static int next_field(cursor *cu, span *f)
{
    if (cu->done) return 0;
    size_t i = cu->pos;
    while (i < cu->end && cu->p[i] != ',')
        i++;
    f->s = cu->pos;
    f->e = i;
    if (i < cu->end)
        cu->pos = i + 1;
    else
        cu->done = 1;
    cu->idx++;
    return 1;
}

static int span_is(const uint8_t *p, span f, const char *lit)
{
    size_t n = strlen(lit);
    return f.e - f.s == n && memcmp(p + f.s, lit, n) == 0;
}

/* Takes the next field or reports that the header ended too early. */
static int need_field(const mctx *c, cursor *cu, span *f, const char *what)
{
    if (next_field(cu, f)) return WEIR_OK;
    return fail_at(c, WEIR_EFORMAT, cu->end,
                   "MQ1 header: field %d (%s) is missing: the header ends after %d fields",
                   cu->idx + 1, what, cu->idx + 1);
}

static int bad_field(const mctx *c, int code, const cursor *cu, span f, const char *what,
                     const char *expect)
{
    char found[32];
    show(c->p, f.s, f.e, found);
    return fail_at(c, code, f.s, "MQ1 header: field %d (%s): expected %s, found %s", cu->idx, what,
                   expect, found);
}

/* Unsigned decimal of 1..maxdigits digits, at most maxval. */
static int field_uint(const mctx *c, const cursor *cu, span f, const char *what, size_t maxdigits,
                      uint64_t maxval, uint64_t *out)
{
    size_t n = f.e - f.s;
    uint64_t v = 0;
    int ok = n >= 1 && n <= maxdigits;
    for (size_t i = f.s; ok && i < f.e; i++) {
        if (!is_digit(c->p[i]) || v > (UINT64_MAX - 9) / 10)
            ok = 0;
        else
            v = v * 10 + (uint64_t)(c->p[i] - '0');
    }
    if (!ok || v > maxval) {
        char expect[64];
        snprintf(expect, sizeof expect, "a decimal number of at most %zu digits up to %llu",
                 maxdigits, (unsigned long long)maxval);
        return bad_field(c, WEIR_EFORMAT, cu, f, what, expect);
    }
    *out = v;
    return WEIR_OK;
}

/* A finite decimal float ("0.001000", "2.000000E+0"); strtod alone would
 * also take "inf", hex floats and leading blanks. */
static int field_float(const mctx *c, const cursor *cu, span f, const char *what, double *out)
{
    char tmp[40];
    size_t n = f.e - f.s;
    int digits = 0, ok = n >= 1 && n < sizeof tmp;
    for (size_t i = 0; ok && i < n; i++) {
        uint8_t ch = c->p[f.s + i];
        if (is_digit(ch))
            digits++;
        else if (ch != '.' && ch != 'e' && ch != 'E' && ch != '+' && ch != '-')
            ok = 0;
        if (ok) tmp[i] = (char)ch;
    }
    if (ok && digits) {
        tmp[n] = 0;
        char *end;
        double v = strtod(tmp, &end);
        if (end == tmp + n && isfinite(v)) {
            *out = v;
            return WEIR_OK;
        }
    }
    return bad_field(c, WEIR_EFORMAT, cu, f, what, "a decimal number");
}

/* "dddd-dd-dd<sep>dd:dd:dd" + optional ".d+" + suffix. */
static int ts_ok(const uint8_t *p, size_t s, size_t e, char sep, const char *suffix)
{
    static const char pat[] = "dddd-dd-dd?dd:dd:dd";
    size_t n = sizeof pat - 1, sl = strlen(suffix);
    if (e - s < n + sl) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[s + i];
        if (pat[i] == 'd' ? !is_digit(ch) : ch != (uint8_t)(pat[i] == '?' ? sep : pat[i])) return 0;
    }
    size_t i = s + n;
    if (i < e - sl && p[i] == '.') {
        i++;
        if (i >= e - sl) return 0;
        while (i < e - sl && is_digit(p[i]))
            i++;
    }
    return i == e - sl && memcmp(p + i, suffix, sl) == 0;
}

static int field_ts(const mctx *c, const cursor *cu, span f, const char *what, char sep,
                    const char *suffix, char *out, size_t outsz)
{
    if (f.e - f.s >= outsz || !ts_ok(c->p, f.s, f.e, sep, suffix)) {
        char expect[64];
        snprintf(expect, sizeof expect, "a timestamp \"YYYY-MM-DD%cHH:MM:SS.f%s\" (< %zu chars)",
                 sep, suffix, outsz);
        return bad_field(c, WEIR_EFORMAT, cu, f, what, expect);
    }
    memcpy(out, c->p + f.s, f.e - f.s);
    out[f.e - f.s] = 0;
    return WEIR_OK;
}

/* "1x1", "2x2G", "4x1"...: optional leading blanks (Merlin right-aligns it
 * in 6 characters), 1-2 digits, 'x', 1-2 digits, optional 'G'. */
static int parse_layout(const uint8_t *p, size_t n, weir_merlin_layout *l)
{
    size_t i = 0;
    unsigned v[2] = {0, 0};
    while (i < n && p[i] == ' ')
        i++;
    for (int k = 0; k < 2; k++) {
        size_t d0 = i;
        while (i < n && is_digit(p[i]) && i - d0 < 2)
            v[k] = v[k] * 10 + (unsigned)(p[i++] - '0');
        if (i == d0 || v[k] == 0) return WEIR_EFORMAT;
        if (k == 0) {
            if (i >= n || (p[i] != 'x' && p[i] != 'X')) return WEIR_EFORMAT;
            i++;
        }
    }
    int gap = 0;
    if (i < n && (p[i] == 'G' || p[i] == 'g')) gap = 1, i++;
    if (i != n) return WEIR_EFORMAT;
    l->nx = v[0];
    l->ny = v[1];
    l->gap = gap;
    return WEIR_OK;
}

static void layout_str(const weir_merlin_layout *l, char out[16])
{
    snprintf(out, 16, "%ux%u%s", l->nx, l->ny, l->gap ? "G" : "");
}

/* ------------------------------------------------------------ raw packing */

/* Bytes of raw data for n decoded pixels at a counter depth (one 12-bit
 * image each for the two halves of 24-bit). */
static size_t raw_bytes(unsigned depth, size_t n)
{
    switch (depth) {
    case 1:
        return n / 8;
    case 6:
        return n;
    case 12:
        return 2 * n;
    default:
        return 4 * n;
    }
}

static size_t raw_px_per_chunk(unsigned depth)
{
    return depth == 1 ? 64 : depth == 6 ? 8 : 4;
}

/* Pixel i of a run of raw chunks (depth 1, 6 or 12). */
static inline uint32_t raw_get(unsigned depth, const uint8_t *in, size_t i)
{
    if (depth == 1) return (in[(i >> 6 << 3) + 7 - ((i & 63) >> 3)] >> (i & 7)) & 1u;
    if (depth == 6) return in[(i & ~(size_t)7) + 7 - (i & 7)];
    const uint8_t *q = in + 2 * ((i & ~(size_t)3) + 3 - (i & 3));
    return (uint32_t)q[0] << 8 | q[1];
}

/* The inverse of raw_get; out must start zeroed for depth 1. */
static inline void raw_put(unsigned depth, uint8_t *out, size_t i, uint32_t v)
{
    if (depth == 1) {
        out[(i >> 6 << 3) + 7 - ((i & 63) >> 3)] |= (uint8_t)((v & 1u) << (i & 7));
    } else if (depth == 6) {
        out[(i & ~(size_t)7) + 7 - (i & 7)] = (uint8_t)v;
    } else {
        uint8_t *q = out + 2 * ((i & ~(size_t)3) + 3 - (i & 3));
        q[0] = (uint8_t)(v >> 8);
        q[1] = (uint8_t)v;
    }
}

static inline void set_px(uint8_t *base, size_t isz, size_t idx, uint32_t v)
{
    /* the output comes from weir_buf_new: 64-byte aligned, so typed stores are fine */
    if (isz == 1)
        base[idx] = (uint8_t)v;
    else if (isz == 2)
        ((uint16_t *)base)[idx] = (uint16_t)v;
    else
        ((uint32_t *)base)[idx] = v;
}

/* Position of quad raw pixel (r = input row, q = 0..3 for Q1..Q4, c = 0..255
 * in the chip row as sent) in the decoded (2R+g) x (512+g) image. */
static inline size_t quad_index(size_t R, size_t g, size_t r, unsigned q, size_t c)
{
    size_t W = 2 * CHIP_COLS + g, H = 2 * R + g;
    switch (q) {
    case 0:
        return r * W + c; /* Q1: top left */
    case 1:
        return r * W + CHIP_COLS + g + c; /* Q2: top right */
    case 2:
        return (H - 1 - r) * W + (CHIP_COLS - 1 - c); /* Q3: flipped x and y */
    default:
        return (H - 1 - r) * W + CHIP_COLS + g + (CHIP_COLS - 1 - c); /* Q4 */
    }
}

/* Input offset of quadrant q's chip row in one input row: [Q4|Q3|Q2|Q1]. */
static inline size_t quad_part(unsigned q, size_t bpr)
{
    return (size_t)(3 - q) * bpr;
}

/* ------------------------------------------------------------ frame header */

static const char *const field_names[] = {"magic",        "sequence number",
                                          "data offset",  "number of chips",
                                          "width",        "height",
                                          "pixel depth",  "sensor layout",
                                          "chip select",  "timestamp",
                                          "shutter time", "counter",
                                          "colour mode",  "gain"};

/* Fills the derived fields (payload size, decoded dtype and shape) from the
 * parsed ones. code/message name the first field that makes it impossible. */
static int derive(const mctx *c, weir_merlin_frame_header *h)
{
    size_t w = h->width, ht = h->height, n;
    weir_dtype_kind k;
    switch (h->pixel) {
    case WEIR_MERLIN_U01:
    case WEIR_MERLIN_U08:
        k = WEIR_DT_U8;
        break;
    case WEIR_MERLIN_U16:
        k = WEIR_DT_U16;
        break;
    case WEIR_MERLIN_U32:
        k = WEIR_DT_U32;
        break;
    case WEIR_MERLIN_U64:
        k = WEIR_DT_U64;
        break;
    case WEIR_MERLIN_R64:
        k = WEIR_DT_INVALID;
        break;
    default:
        return fail_at(c, WEIR_EDTYPE, 0, "MQ1 header: unknown pixel depth code %d", h->pixel);
    }
    if (k != WEIR_DT_INVALID) {
        h->dtype.kind = k;
        /* one-byte pixels have no byte order; host order keeps them comparable */
        h->dtype.order = k == WEIR_DT_U8 ? weir_host_order() : WEIR_BIG;
        h->shape[0] = ht;
        h->shape[1] = w;
        if (!mul_ok(w, ht, &n) || !mul_ok(n, weir_dtype_size(k), &h->payload_bytes))
            return fail_at(c, WEIR_ESHAPE, 0, "MQ1 header: %zu x %zu pixels overflow", ht, w);
        return WEIR_OK;
    }
    /* raw */
    if (!h->has_ext)
        return fail_at(c, WEIR_EUNSUPPORTED, 0,
                       "MQ1 header: raw (R64) frame without the MQ1A extension: its counter "
                       "depth, which gives the packing, is unknown");
    unsigned d = h->counter_depth;
    h->dtype.kind = d <= 6 ? WEIR_DT_U8 : d == 12 ? WEIR_DT_U16 : WEIR_DT_U32;
    h->dtype.order = weir_host_order();
    if (h->layout.nx == 1 && h->layout.ny == 1) {
        if (h->nchips != 1)
            return fail_at(c, WEIR_EFORMAT, 0,
                           "MQ1 header: raw 1x1 frame with %u chips (expected 1)", h->nchips);
        if (d == 24) {
            /* two 12-bit images; LiberTEM reads the width as twice the image's */
            if (w % 2)
                return fail_at(c, WEIR_ESHAPE, 0,
                               "MQ1 header: raw 24-bit width %zu is odd (expected 2 x the image "
                               "width)",
                               w);
            w /= 2;
        }
        h->shape[0] = ht;
        h->shape[1] = w;
        if (!mul_ok(w, ht, &n))
            return fail_at(c, WEIR_ESHAPE, 0, "MQ1 header: %zu x %zu pixels overflow", ht, w);
    } else if (h->layout.nx == 2 && h->layout.ny == 2) {
        if (d == 24)
            return fail_at(c, WEIR_EUNSUPPORTED, 0,
                           "MQ1 header: raw 24-bit quad (2x2) frames are not supported");
        if (h->nchips != 4 || w != 4 * CHIP_COLS)
            return fail_at(c, WEIR_EFORMAT, 0,
                           "MQ1 header: raw quad frame with %u chips and width %zu (expected 4 "
                           "chips, width 1024)",
                           h->nchips, w);
        size_t g = h->layout.gap ? 2 : 0;
        h->shape[0] = 2 * ht + g;
        h->shape[1] = 2 * CHIP_COLS + g;
        if (!mul_ok(w, ht, &n))
            return fail_at(c, WEIR_ESHAPE, 0, "MQ1 header: %zu x %zu pixels overflow", ht, w);
    } else {
        return fail_at(c, WEIR_EUNSUPPORTED, 0,
                       "MQ1 header: raw (R64) frames with layout %ux%u are not supported (only "
                       "1x1 and 2x2)",
                       h->layout.nx, h->layout.ny);
    }
    if (n % raw_px_per_chunk(d))
        return fail_at(c, WEIR_ESHAPE, 0,
                       "MQ1 header: %zu raw pixels are not whole 8-byte chunks of %zu %u-bit "
                       "pixels",
                       n, raw_px_per_chunk(d), d);
    h->payload_bytes = raw_bytes(d, n);
    return WEIR_OK;
}

/* The input ends before the comma after the data offset (a stream reader
 * peeking at a header): WEIR_ETRUNCATED if what is there can start a
 * header, else the error of the first bad field. */
static int early_end(const mctx *c, size_t len)
{
    cursor cu = {c->p, 0, len, -1, 0};
    span f;
    uint64_t v;
    int rc;
    next_field(&cu, &f); /* "MQ1" */
    while (next_field(&cu, &f)) {
        const char *what = field_names[cu.idx];
        size_t maxd = cu.idx == 1 ? 20 : 9;
        if (!cu.done) {
            if ((rc = field_uint(c, &cu, f, what, maxd, UINT64_MAX, &v))) return rc;
            continue;
        }
        /* the last, possibly partial field: digits so far */
        for (size_t i = f.s; i < f.e; i++)
            if (!is_digit(c->p[i]) || i - f.s >= maxd)
                return bad_field(c, WEIR_EFORMAT, &cu, f, what, "decimal digits");
    }
    return fail_at(c, WEIR_ETRUNCATED, len,
                   "MQ1 header: the input (%zu bytes) ends before the data offset field is "
                   "complete",
                   len);
}

static int parse_frame(const mctx *c, size_t len, weir_merlin_frame_header *h)
{
    const uint8_t *p = c->p;
    memset(h, 0, sizeof *h);
    if (len < 4 || memcmp(p, MQ1_MAGIC, 4) != 0) {
        if (len < 4 && memcmp(p, MQ1_MAGIC, len) == 0)
            return fail_at(c, WEIR_ETRUNCATED, 0, "MQ1 header: input ends after %zu bytes", len);
        char found[32];
        show(p, 0, len < 4 ? len : 4, found);
        return fail_at(c, WEIR_EFORMAT, 0, "expected \"MQ1,\" (a Merlin frame header), found %s",
                       found);
    }
    cursor cu = {p, 0, len, -1, 0};
    span f;
    uint64_t v;
    int rc;
    /* Fields 0..2 locate the end of the header; the rest is read within it. */
    next_field(&cu, &f); /* "MQ1" */
    if (!next_field(&cu, &f) || !next_field(&cu, &f) || cu.done) return early_end(c, len);
    cu = (cursor){p, 0, len, -1, 0};
    next_field(&cu, &f);
    next_field(&cu, &f);
    if ((rc = field_uint(c, &cu, f, field_names[1], 20, UINT64_MAX, &h->sequence))) return rc;
    next_field(&cu, &f);
    if ((rc = field_uint(c, &cu, f, field_names[2], 9, 999999999, &v))) return rc;
    h->data_offset = (size_t)v;
    if (h->data_offset > len)
        return fail_at(c, WEIR_ETRUNCATED, f.s,
                       "MQ1 header: field 2 (data offset): the header is %zu bytes, past the end "
                       "of the input (%zu bytes)",
                       h->data_offset, len);
    if (h->data_offset < cu.pos)
        return fail_at(c, WEIR_EFORMAT, f.s,
                       "MQ1 header: field 2 (data offset): %zu ends the header inside its own "
                       "first fields",
                       h->data_offset);
    /* the text ends at the first NUL; only NUL (or blank) padding may follow */
    const uint8_t *nul = memchr(p, 0, h->data_offset);
    size_t tend = nul ? (size_t)(nul - p) : h->data_offset;
    for (size_t i = tend; i < h->data_offset; i++)
        if (p[i] != 0 && p[i] != ' ')
            return fail_at(c, WEIR_EFORMAT, i,
                           "MQ1 header: expected NUL padding up to the data offset %zu, found "
                           "byte 0x%02x",
                           h->data_offset, p[i]);
    while (tend > cu.pos && p[tend - 1] == ' ')
        tend--;
    if (tend < cu.pos)
        return fail_at(c, WEIR_EFORMAT, tend, "MQ1 header: NUL inside the first fields");
    cu.end = tend;

    if ((rc = need_field(c, &cu, &f, field_names[3]))) return rc;
    if ((rc = field_uint(c, &cu, f, field_names[3], 2, 99, &v))) return rc;
    if (v == 0) return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[3], "1 to 99 chips");
    h->nchips = (unsigned)v;
    if ((rc = need_field(c, &cu, &f, field_names[4]))) return rc;
    if ((rc = field_uint(c, &cu, f, field_names[4], 5, 65535, &v))) return rc;
    if (v == 0) return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[4], "a width >= 1");
    h->width = (unsigned)v;
    if ((rc = need_field(c, &cu, &f, field_names[5]))) return rc;
    if ((rc = field_uint(c, &cu, f, field_names[5], 5, 65535, &v))) return rc;
    if (v == 0) return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[5], "a height >= 1");
    h->height = (unsigned)v;

    if ((rc = need_field(c, &cu, &f, field_names[6]))) return rc;
    static const char *const pix[] = {"U01", "U08", "U16", "U32", "U64", "R64"};
    for (int i = 0; i < 6; i++)
        if (span_is(p, f, pix[i])) h->pixel = (weir_merlin_pixel)(WEIR_MERLIN_U01 + i);
    if (!h->pixel)
        return bad_field(c, WEIR_EDTYPE, &cu, f, field_names[6],
                         "a known pixel depth (U01, U08, U16, U32, U64 or R64)");

    if ((rc = need_field(c, &cu, &f, field_names[7]))) return rc;
    if (parse_layout(p + f.s, f.e - f.s, &h->layout))
        return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[7],
                         "a layout such as \"   1x1\", \"   2x2\", \"  2x2G\" or \"   4x1\"");

    if ((rc = need_field(c, &cu, &f, field_names[8]))) return rc;
    h->chip_select = 0;
    if (f.e - f.s < 1 || f.e - f.s > 8)
        return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[8], "1 to 8 hex digits");
    for (size_t i = f.s; i < f.e; i++) {
        uint8_t ch = p[i];
        unsigned d = is_digit(ch)               ? (unsigned)(ch - '0')
                     : (ch >= 'A' && ch <= 'F') ? (unsigned)(ch - 'A' + 10)
                     : (ch >= 'a' && ch <= 'f') ? (unsigned)(ch - 'a' + 10)
                                                : 16u;
        if (d == 16) return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[8], "hex digits");
        h->chip_select = h->chip_select << 4 | d;
    }

    if ((rc = need_field(c, &cu, &f, field_names[9]))) return rc;
    if ((rc = field_ts(c, &cu, f, field_names[9], ' ', "", h->timestamp, sizeof h->timestamp)))
        return rc;
    if ((rc = need_field(c, &cu, &f, field_names[10]))) return rc;
    if ((rc = field_float(c, &cu, f, field_names[10], &h->shutter_s))) return rc;
    if (h->shutter_s < 0) return bad_field(c, WEIR_EFORMAT, &cu, f, field_names[10], "a time >= 0");
    unsigned *small[3] = {&h->counter, &h->colour_mode, &h->gain};
    for (int i = 0; i < 3; i++) {
        if ((rc = need_field(c, &cu, &f, field_names[11 + i]))) return rc;
        if ((rc = field_uint(c, &cu, f, field_names[11 + i], 3, 999, &v))) return rc;
        *small[i] = (unsigned)v;
    }

    /* thresholds: 8 numbers, or one empty field (raw headers) */
    if ((rc = need_field(c, &cu, &f, "threshold 0"))) return rc;
    if (f.e > f.s) {
        for (int i = 0; i < WEIR_MERLIN_NTHRESHOLDS; i++) {
            char what[24];
            snprintf(what, sizeof what, "threshold %d", i);
            if (i && (rc = need_field(c, &cu, &f, what))) return rc;
            if ((rc = field_float(c, &cu, f, what, &h->thresholds[i]))) return rc;
        }
        h->nthresholds = WEIR_MERLIN_NTHRESHOLDS;
    }

    /* DAC blocks, then MQ1A or the end */
    int more = next_field(&cu, &f);
    while (more && f.e > f.s && !span_is(p, f, "MQ1A")) {
        int alpha = 0, ok = f.e - f.s < sizeof h->chip_type;
        for (size_t i = f.s; ok && i < f.e; i++) {
            uint8_t ch = p[i];
            if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
                alpha = 1;
            else if (!is_digit(ch) && ch != '.')
                ok = 0;
        }
        if (!ok || !alpha)
            return bad_field(c, WEIR_EFORMAT, &cu, f, "chip type",
                             "a DAC block's chip type such as \"3RX\", \"MQ1A\" or the end");
        if (h->ndac_blocks == 0) {
            memcpy(h->chip_type, p + f.s, f.e - f.s);
            h->chip_type[f.e - f.s] = 0;
        }
        for (int i = 0; i < WEIR_MERLIN_NDACS; i++) {
            char what[32];
            snprintf(what, sizeof what, "DAC %d of chip %u", i, h->ndac_blocks + 1);
            if ((rc = need_field(c, &cu, &f, what))) return rc;
            if ((rc = field_uint(c, &cu, f, what, 5, 65535, &v))) return rc;
            if (h->ndac_blocks < WEIR_MERLIN_MAX_DAC_CHIPS)
                h->dacs[h->ndac_blocks][i] = (uint16_t)v;
        }
        h->ndac_blocks++;
        if (h->ndac_blocks > h->nchips)
            return fail_at(c, WEIR_EFORMAT, f.e,
                           "MQ1 header: more DAC blocks than the %u chips of field 3", h->nchips);
        more = next_field(&cu, &f);
    }
    if (h->ndac_blocks && h->ndac_blocks != h->nchips)
        return fail_at(c, WEIR_EFORMAT, more ? f.s : cu.end,
                       "MQ1 header: %u DAC blocks for %u chips (expected 0 or one per chip)",
                       h->ndac_blocks, h->nchips);
    if (more && span_is(p, f, "MQ1A")) {
        h->has_ext = 1;
        if ((rc = need_field(c, &cu, &f, "MQ1A timestamp"))) return rc;
        if ((rc = field_ts(c, &cu, f, "MQ1A timestamp", 'T', "Z", h->ext_timestamp,
                           sizeof h->ext_timestamp)))
            return rc;
        if ((rc = need_field(c, &cu, &f, "MQ1A shutter time"))) return rc;
        if (f.e - f.s < 3 || p[f.e - 2] != 'n' || p[f.e - 1] != 's')
            return bad_field(c, WEIR_EFORMAT, &cu, f, "MQ1A shutter time",
                             "nanoseconds such as \"1000000ns\"");
        span num = {f.s, f.e - 2};
        if ((rc = field_uint(c, &cu, num, "MQ1A shutter time", 19, UINT64_MAX, &h->ext_shutter_ns)))
            return rc;
        if ((rc = need_field(c, &cu, &f, "MQ1A counter depth"))) return rc;
        if ((rc = field_uint(c, &cu, f, "MQ1A counter depth", 2, 99, &v))) return rc;
        if (v != 1 && v != 6 && v != 12 && v != 24)
            return bad_field(c, WEIR_EFORMAT, &cu, f, "MQ1A counter depth", "1, 6, 12 or 24");
        h->counter_depth = (unsigned)v;
        more = next_field(&cu, &f);
    }
    /* a trailing comma leaves one empty field; nothing may follow it */
    if (more && f.e == f.s) more = next_field(&cu, &f);
    if (more)
        return bad_field(c, WEIR_EFORMAT, &cu, f, "end", "the end of the header (too many fields)");
    return derive(c, h);
}

int weir_merlin_frame_parse(const uint8_t *data, size_t len, weir_merlin_frame_header *h, char *err,
                            size_t errlen)
{
    mctx c = {"<buffer>", data, 0, err, errlen};
    if (!data || !h) return WEIR_EINVAL;
    return parse_frame(&c, len, h);
}

/* ------------------------------------------------------------------ decode */

static void decode_raw(const weir_merlin_frame_header *h, const uint8_t *in, uint8_t *out)
{
    unsigned d = h->counter_depth;
    size_t isz = weir_dtype_size(h->dtype.kind);
    if (h->layout.nx == 1) {
        size_t n = h->shape[0] * h->shape[1];
        if (d == 24) {
            const uint8_t *lo = in + raw_bytes(12, n);
            for (size_t i = 0; i < n; i++)
                set_px(out, isz, i, (raw_get(12, in, i) << 12) + raw_get(12, lo, i));
        } else {
            for (size_t i = 0; i < n; i++)
                set_px(out, isz, i, raw_get(d, in, i));
        }
        return;
    }
    size_t R = h->height, g = h->layout.gap ? 2 : 0, bpr = raw_bytes(d, CHIP_COLS);
    for (size_t r = 0; r < R; r++) {
        const uint8_t *row = in + r * 4 * bpr;
        for (unsigned q = 0; q < 4; q++) {
            const uint8_t *part = row + quad_part(q, bpr);
            for (size_t col = 0; col < CHIP_COLS; col++)
                set_px(out, isz, quad_index(R, g, r, q, col), raw_get(d, part, col));
        }
    }
}

int weir_merlin_decode(weir_buf *buf, size_t off, const weir_merlin_frame_header *h,
                       weir_array *out, char *err, size_t errlen)
{
    mctx c = {"<buffer>", NULL, off, err, errlen};
    int rc;
    if (!buf || !h || !out) return WEIR_EINVAL;
    memset(out, 0, sizeof *out);
    /* h may have been edited by the caller: the loops below trust only values
     * derived again here */
    weir_merlin_frame_header chk = *h;
    if ((rc = derive(&c, &chk))) return rc;
    if (chk.payload_bytes != h->payload_bytes || chk.shape[0] != h->shape[0] ||
        chk.shape[1] != h->shape[1] || chk.dtype.kind != h->dtype.kind)
        return fail_at(&c, WEIR_EINVAL, 0, "MQ1 header: derived fields do not match the header");
    size_t size = weir_buf_size(buf);
    if (off > size || size - off < h->data_offset ||
        size - off - h->data_offset < chk.payload_bytes)
        return fail_at(&c, WEIR_ETRUNCATED, 0,
                       "frame %llu needs %zu header + %zu pixel bytes, the input has %zu",
                       (unsigned long long)h->sequence, h->data_offset, chk.payload_bytes,
                       off > size ? 0 : size - off);
    size_t pix = off + h->data_offset;
    if (h->pixel != WEIR_MERLIN_R64) {
        weir_buf *view = weir_buf_view(buf, pix, chk.payload_bytes);
        if (!view) return WEIR_ENOMEM;
        rc = weir_array_init(out, chk.dtype, 2, chk.shape, view, 0);
        weir_buf_unref(view);
        return rc;
    }
    weir_buf *ob = weir_buf_new(chk.shape[0] * chk.shape[1] * weir_dtype_size(chk.dtype.kind));
    if (!ob) return WEIR_ENOMEM;
    uint8_t *o = weir_buf_mutable(ob);
    /* gap pixels of 2x2G stay 0 */
    memset(o, 0, weir_buf_size(ob));
    decode_raw(&chk, weir_buf_data(buf) + pix, o);
    rc = weir_array_init(out, chk.dtype, 2, chk.shape, ob, 0);
    weir_buf_unref(ob);
    return rc;
}

/* ------------------------------------------------------------------ encode */

/* The DACs of the rosettasciio sample files (Medipix3RX, SPM). */
static const uint16_t sample_dacs[WEIR_MERLIN_NDACS] = {
    11, 511, 0,  0,  0,   0, 0,   0,   175, 10,  200, 125, 100, 100,
    93, 100, 99, 30, 128, 4, 255, 140, 128, 191, 179, 511, 511};

int weir_merlin_frame_header_init(weir_merlin_frame_header *h, weir_merlin_pixel pixel,
                                  const char *layout, unsigned counter_depth)
{
    if (!h || !layout || pixel < WEIR_MERLIN_U01 || pixel > WEIR_MERLIN_R64) return WEIR_EINVAL;
    if (counter_depth != 1 && counter_depth != 6 && counter_depth != 12 && counter_depth != 24)
        return WEIR_EINVAL;
    memset(h, 0, sizeof *h);
    if (parse_layout((const uint8_t *)layout, strlen(layout), &h->layout)) return WEIR_EINVAL;
    unsigned nchips = h->layout.nx * h->layout.ny;
    if (nchips > 99) return WEIR_EINVAL;
    h->sequence = 1;
    h->nchips = nchips;
    h->pixel = pixel;
    h->chip_select = nchips >= 32 ? 0xffffffffu : (1u << nchips) - 1;
    snprintf(h->timestamp, sizeof h->timestamp, "1970-01-01 00:00:00.000000");
    h->shutter_s = 0.001;
    h->nthresholds = WEIR_MERLIN_NTHRESHOLDS;
    h->thresholds[0] = 2.0;
    h->thresholds[1] = 511.0;
    if (nchips <= WEIR_MERLIN_MAX_DAC_CHIPS) {
        h->ndac_blocks = nchips;
        snprintf(h->chip_type, sizeof h->chip_type, "3RX");
        for (unsigned i = 0; i < nchips; i++)
            memcpy(h->dacs[i], sample_dacs, sizeof sample_dacs);
    }
    h->has_ext = 1;
    snprintf(h->ext_timestamp, sizeof h->ext_timestamp, "1970-01-01T00:00:00.000000000Z");
    h->ext_shutter_ns = 1000000;
    h->counter_depth = counter_depth;
    return WEIR_OK;
}

/* A growing text with one error flag instead of a check per append. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* "%.6E" with Merlin's exponent: "2.000000E+0", not "2.000000E+00". */
static void fmt_exp(double v, char out[32])
{
    snprintf(out, 32, "%.6E", v);
    char *e = strchr(out, 'E');
    if (!e || !e[1]) return;
    char *d = e + 2, *z = d;
    while (z[0] == '0' && z[1])
        z++;
    memmove(d, z, strlen(z) + 1);
}

static int text_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n >= max) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* The header text for h with the given data offset. */
static int header_text(const weir_merlin_frame_header *h, size_t data_offset, strbuf *b)
{
    static const char *const pix[] = {"", "U01", "U08", "U16", "U32", "U64", "R64"};
    char lay[16], lay6[16];
    layout_str(&h->layout, lay);
    snprintf(lay6, sizeof lay6, "%6s", lay);
    const char *ts = h->timestamp[0] ? h->timestamp : "1970-01-01 00:00:00.000000";
    sb_printf(b, "MQ1,%06llu,%05zu,%02u,%04u,%04u,%s,%s,%02X,%s,%.6f,%u,%u,%u,",
              (unsigned long long)h->sequence, data_offset, h->nchips, h->width, h->height,
              pix[h->pixel], lay6, (unsigned)h->chip_select, ts, h->shutter_s, h->counter,
              h->colour_mode, h->gain);
    if (h->nthresholds) {
        for (int i = 0; i < WEIR_MERLIN_NTHRESHOLDS; i++) {
            char e[32];
            fmt_exp(h->thresholds[i], e);
            sb_printf(b, "%s,", e);
        }
    } else {
        sb_printf(b, ",");
    }
    for (unsigned k = 0; k < h->ndac_blocks; k++) {
        sb_printf(b, "%s,", h->chip_type[0] ? h->chip_type : "3RX");
        for (int i = 0; i < WEIR_MERLIN_NDACS; i++)
            sb_printf(b, "%03u,", (unsigned)h->dacs[k][i]);
    }
    if (h->has_ext) {
        const char *ets = h->ext_timestamp[0] ? h->ext_timestamp : "1970-01-01T00:00:00.000000000Z";
        sb_printf(b, "MQ1A,%s,%lluns,%u,", ets, (unsigned long long)h->ext_shutter_ns,
                  h->counter_depth);
    }
    return b->oom ? WEIR_ENOMEM : WEIR_OK;
}

/* Element (r, col) of a 2-D integer array of any dtype, order and strides. */
static int get_u64(const weir_array *a, size_t r, size_t col, uint64_t *out)
{
    size_t isz = weir_dtype_size(a->dtype.kind);
    const uint8_t *p = a->data + (ptrdiff_t)r * a->strides[0] + (ptrdiff_t)col * a->strides[1];
    uint8_t t[8];
    if (isz > 1 && a->dtype.order != weir_host_order())
        for (size_t i = 0; i < isz; i++)
            t[i] = p[isz - 1 - i];
    else
        memcpy(t, p, isz);
    switch (a->dtype.kind) {
    case WEIR_DT_U8:
    case WEIR_DT_BOOL:
        *out = t[0];
        return WEIR_OK;
    case WEIR_DT_U16: {
        uint16_t v;
        memcpy(&v, t, 2);
        *out = v;
        return WEIR_OK;
    }
    case WEIR_DT_U32: {
        uint32_t v;
        memcpy(&v, t, 4);
        *out = v;
        return WEIR_OK;
    }
    case WEIR_DT_U64: {
        uint64_t v;
        memcpy(&v, t, 8);
        *out = v;
        return WEIR_OK;
    }
    case WEIR_DT_I8: {
        int8_t v = (int8_t)t[0];
        *out = (uint64_t)v;
        return v < 0 ? WEIR_ERANGE : WEIR_OK;
    }
    case WEIR_DT_I16: {
        int16_t v;
        memcpy(&v, t, 2);
        *out = (uint64_t)v;
        return v < 0 ? WEIR_ERANGE : WEIR_OK;
    }
    case WEIR_DT_I32: {
        int32_t v;
        memcpy(&v, t, 4);
        *out = (uint64_t)v;
        return v < 0 ? WEIR_ERANGE : WEIR_OK;
    }
    case WEIR_DT_I64: {
        int64_t v;
        memcpy(&v, t, 8);
        *out = (uint64_t)v;
        return v < 0 ? WEIR_ERANGE : WEIR_OK;
    }
    default:
        return WEIR_EDTYPE;
    }
}

int weir_merlin_encode_frame(const weir_merlin_frame_header *h, const weir_array *pixels, int mpx,
                             weir_buf **out, char *err, size_t errlen)
{
    mctx c = {"<encoder>", NULL, 0, err, errlen};
    strbuf tb = {0};
    weir_buf *ob = NULL;
    int rc = WEIR_EINVAL;
    if (out) *out = NULL;
    if (!h || !pixels || !out) return WEIR_EINVAL;
    if (pixels->ndim != 2 || !pixels->shape[0] || !pixels->shape[1]) {
        rc = fail_at(&c, WEIR_ESHAPE, 0, "expected a non-empty 2-D array, got %d dimensions",
                     pixels->ndim);
        goto done;
    }
    if (!weir_dtype_size(pixels->dtype.kind) || pixels->dtype.kind == WEIR_DT_F32 ||
        pixels->dtype.kind == WEIR_DT_F64) {
        rc = fail_at(&c, WEIR_EDTYPE, 0, "expected an integer array, got %s",
                     weir_dtype_name(pixels->dtype.kind));
        goto done;
    }
    weir_merlin_frame_header hh = *h;
    unsigned d = h->counter_depth;
    if (h->pixel < WEIR_MERLIN_U01 || h->pixel > WEIR_MERLIN_R64 || !h->layout.nx ||
        !h->layout.ny || h->layout.nx > 99 || h->layout.ny > 99 || !h->nchips || h->nchips > 99 ||
        (h->has_ext && d != 1 && d != 6 && d != 12 && d != 24) ||
        (h->nthresholds != 0 && h->nthresholds != WEIR_MERLIN_NTHRESHOLDS) ||
        (h->ndac_blocks &&
         (h->ndac_blocks != h->nchips || h->ndac_blocks > WEIR_MERLIN_MAX_DAC_CHIPS)) ||
        !text_ok(h->timestamp, sizeof h->timestamp) ||
        !text_ok(h->chip_type, sizeof h->chip_type) ||
        !text_ok(h->ext_timestamp, sizeof h->ext_timestamp) || !isfinite(h->shutter_s) ||
        h->shutter_s < 0) {
        rc = fail_at(&c, WEIR_EINVAL, 0, "header fields out of range for an MQ1 header");
        goto done;
    }
    for (int i = 0; i < h->nthresholds; i++)
        if (!isfinite(h->thresholds[i])) {
            rc = fail_at(&c, WEIR_EINVAL, 0, "threshold %d is not finite", i);
            goto done;
        }
    size_t rows = pixels->shape[0], cols = pixels->shape[1];
    int raw = h->pixel == WEIR_MERLIN_R64;
    size_t g = h->layout.gap ? 2 : 0, w, ht;
    if (!raw) {
        w = cols;
        ht = rows;
    } else if (h->layout.nx == 2 && h->layout.ny == 2) {
        w = 4 * CHIP_COLS;
        ht = rows > g ? (rows - g) / 2 : 0;
    } else {
        w = d == 24 ? 2 * cols : cols;
        ht = rows;
    }
    if (w > 65535 || ht > 65535 || !w || !ht) {
        rc = fail_at(&c, WEIR_ESHAPE, 0, "%zu x %zu pixels do not fit an MQ1 header", rows, cols);
        goto done;
    }
    hh.width = (unsigned)w;
    hh.height = (unsigned)ht;
    if ((rc = derive(&c, &hh))) goto done;
    if (hh.shape[0] != rows || hh.shape[1] != cols) {
        rc = fail_at(&c, WEIR_ESHAPE, 0, "%zu x %zu pixels: layout %ux%u%s needs %zu x %zu", rows,
                     cols, h->layout.nx, h->layout.ny, h->layout.gap ? "G" : "", hh.shape[0],
                     hh.shape[1]);
        goto done;
    }
    /* the offset's digits are part of the text: measure, choose, then write */
    size_t off = h->data_offset;
    if ((rc = header_text(&hh, off ? off : 0, &tb))) goto done;
    if (!off) {
        off = (tb.len + MQ1_ALIGN - 1) / MQ1_ALIGN * MQ1_ALIGN;
        tb.len = 0;
        if ((rc = header_text(&hh, off, &tb))) goto done;
    }
    if (tb.len > off) {
        rc = fail_at(&c, WEIR_ERANGE, 0, "the header text (%zu bytes) does not fit data offset %zu",
                     tb.len, off);
        goto done;
    }
    size_t pre = mpx ? WEIR_MERLIN_MPX_PREFIX : 0;
    size_t total = pre + off + hh.payload_bytes;
    ob = weir_buf_new(total);
    if (!ob) {
        rc = WEIR_ENOMEM;
        goto done;
    }
    uint8_t *o = weir_buf_mutable(ob);
    if (mpx) {
        char px[WEIR_MERLIN_MPX_PREFIX + 1];
        if ((rc = weir_merlin_mpx_prefix(off + hh.payload_bytes, px))) goto done;
        memcpy(o, px, WEIR_MERLIN_MPX_PREFIX);
    }
    memcpy(o + pre, tb.s, tb.len);
    memset(o + pre + tb.len, 0, off - tb.len + (raw ? hh.payload_bytes : 0));
    uint8_t *pay = o + pre + off;
    uint64_t maxv;
    size_t isz = 0;
    if (raw)
        maxv = d == 24 ? 0xffffffu : (1u << d) - 1;
    else {
        isz = weir_dtype_size(hh.dtype.kind);
        maxv = isz == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * isz)) - 1;
    }
    size_t R = hh.height, bpr = raw ? raw_bytes(d, CHIP_COLS) : 0, n = rows * cols;
    for (size_t r = 0; r < rows; r++) {
        for (size_t col = 0; col < cols; col++) {
            size_t oi = r * cols + col;
            if (raw && hh.layout.nx == 2 && g &&
                (r == R || r == R + 1 || col == CHIP_COLS || col == CHIP_COLS + 1))
                continue; /* gap pixels are not sent */
            uint64_t v;
            rc = get_u64(pixels, r, col, &v);
            if (rc || v > maxv) {
                rc = fail_at(
                    &c, WEIR_ERANGE, 0, "pixel (%zu, %zu) = %s%llu does not fit %s (max %llu)", r,
                    col, rc ? "-" : "", rc ? 0ULL : (unsigned long long)v,
                    raw ? "the raw counter depth" : "the pixel format", (unsigned long long)maxv);
                goto done;
            }
            if (!raw) {
                for (size_t b = 0; b < isz; b++)
                    pay[oi * isz + b] = (uint8_t)(v >> (8 * (isz - 1 - b)));
            } else if (hh.layout.nx == 1) {
                if (d == 24) {
                    raw_put(12, pay, oi, (uint32_t)(v >> 12));
                    raw_put(12, pay + raw_bytes(12, n), oi, (uint32_t)(v & 0xfff));
                } else {
                    raw_put(d, pay, oi, (uint32_t)v);
                }
            } else {
                /* invert quad_index: which quadrant, input row and chip column */
                int top = r < R, left = col < CHIP_COLS;
                unsigned q = top ? (left ? 0 : 1) : (left ? 2 : 3);
                size_t ir = top ? r : 2 * R + g - 1 - r;
                size_t cc = left ? col : col - CHIP_COLS - g;
                size_t ic = top ? cc : CHIP_COLS - 1 - cc;
                raw_put(d, pay + ir * 4 * bpr + quad_part(q, bpr), ic, (uint32_t)v);
            }
        }
    }
    *out = ob;
    ob = NULL;
    rc = WEIR_OK;
done:
    weir_buf_unref(ob);
    free(tb.s);
    return rc;
}

/* --------------------------------------------------------------------- HDR */

/* One line of HDR text: [s, e) without the newline, and trimmed. */
typedef struct {
    size_t s, e;   /* whole line, without "\r\n" */
    size_t ks, ke; /* key (trimmed) */
    size_t vs, ve; /* value (trimmed); ks == ke when there is no ':' */
    int colon;
} hline;

static int is_blank(uint8_t ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

static void trim(const uint8_t *p, size_t *s, size_t *e)
{
    while (*s < *e && is_blank(p[*s]))
        (*s)++;
    while (*e > *s && is_blank(p[*e - 1]))
        (*e)--;
}

static int next_line(const uint8_t *p, size_t len, size_t *pos, hline *l)
{
    if (*pos >= len) return 0;
    const uint8_t *nl = memchr(p + *pos, '\n', len - *pos);
    l->s = *pos;
    l->e = nl ? (size_t)(nl - p) : len;
    *pos = nl ? l->e + 1 : len;
    const uint8_t *colon = memchr(p + l->s, ':', l->e - l->s);
    l->colon = colon != NULL;
    l->ks = l->s;
    l->ke = colon ? (size_t)(colon - p) : l->e;
    l->vs = colon ? l->ke + 1 : l->e;
    l->ve = l->e;
    trim(p, &l->ks, &l->ke);
    trim(p, &l->vs, &l->ve);
    return 1;
}

static int line_is_end(const uint8_t *p, const hline *l)
{
    size_t s = l->s, e = l->e;
    trim(p, &s, &e);
    return e - s == 3 && memcmp(p + s, "End", 3) == 0;
}

static int acq_value(const uint8_t *p, size_t len, const char *key, size_t *vs, size_t *ve)
{
    size_t pos = 0, kl = strlen(key);
    hline l;
    next_line(p, len, &pos, &l); /* "HDR," */
    while (next_line(p, len, &pos, &l)) {
        if (line_is_end(p, &l)) break;
        if (l.colon && l.ke - l.ks == kl && memcmp(p + l.ks, key, kl) == 0) {
            *vs = l.vs;
            *ve = l.ve;
            return WEIR_OK;
        }
    }
    return WEIR_ENOTFOUND;
}

static int acq_uint(const mctx *c, size_t len, const char *key, int required, uint64_t *out,
                    int *found)
{
    size_t vs, ve;
    if (found) *found = 0;
    if (acq_value(c->p, len, key, &vs, &ve)) {
        if (!required) return WEIR_OK;
        return fail_at(c, WEIR_EFORMAT, 0, "HDR: required key \"%s\" is missing", key);
    }
    uint64_t v = 0;
    int ok = ve > vs && ve - vs <= 19;
    for (size_t i = vs; ok && i < ve; i++) {
        if (!is_digit(c->p[i]))
            ok = 0;
        else
            v = v * 10 + (uint64_t)(c->p[i] - '0');
    }
    if (!ok) {
        char found_s[32];
        show(c->p, vs, ve, found_s);
        return fail_at(c, WEIR_EFORMAT, vs, "HDR: \"%s\": expected a whole number, found %s", key,
                       found_s);
    }
    *out = v;
    if (found) *found = 1;
    return WEIR_OK;
}

static int parse_acq(const mctx *c, size_t len, weir_merlin_acq *a)
{
    const uint8_t *p = c->p;
    size_t pos = 0;
    hline l;
    int rc;
    if (len < 4 || memcmp(p, HDR_MAGIC, 4) != 0) {
        char found[32];
        show(p, 0, len < 4 ? len : 4, found);
        return fail_at(c, len < 4 && !memcmp(p, HDR_MAGIC, len) ? WEIR_ETRUNCATED : WEIR_EFORMAT, 0,
                       "expected \"HDR,\" (a Merlin acquisition header), found %s", found);
    }
    next_line(p, len, &pos, &l);
    for (size_t i = 4; i < l.e; i++)
        if (!is_blank(p[i]))
            return fail_at(c, WEIR_EFORMAT, i, "HDR: expected the end of the \"HDR,\" line");
    int end = 0;
    while (!end && next_line(p, len, &pos, &l)) {
        if (line_is_end(p, &l)) {
            end = 1;
        } else if (l.s == l.e || (!l.colon && l.ks == l.ke)) {
            continue; /* blank line */
        } else if (!l.colon || l.ks == l.ke) {
            char found[32];
            show(p, l.s, l.e, found);
            return fail_at(c, WEIR_EFORMAT, l.s,
                           "HDR: expected a \"Key:<tab>Value\" line or \"End\", found %s", found);
        }
    }
    if (!end) return fail_at(c, WEIR_EFORMAT, len, "HDR: no \"End\" line");
    for (size_t i = pos; i < len; i++)
        if (!is_blank(p[i]) && p[i] != '\n' && p[i] != 0)
            return fail_at(c, WEIR_EFORMAT, i,
                           "HDR: expected only blank or NUL padding after \"End\", found byte "
                           "0x%02x",
                           p[i]);
    uint64_t v;
    int found;
    if ((rc = acq_uint(c, len, "Frames in Acquisition (Number)", 1, &a->frames_in_acquisition,
                       NULL)))
        return rc;
    if ((rc = acq_uint(c, len, "Frames per Trigger (Number)", 1, &a->frames_per_trigger, NULL)))
        return rc;
    if ((rc = acq_uint(c, len, "Counter Depth (number)", 0, &v, &found))) return rc;
    if (found) {
        if (v != 1 && v != 6 && v != 12 && v != 24) {
            size_t vs, ve;
            acq_value(p, len, "Counter Depth (number)", &vs, &ve);
            return fail_at(c, WEIR_EFORMAT, vs,
                           "HDR: \"Counter Depth (number)\": expected 1, 6, 12 or 24, found %llu",
                           (unsigned long long)v);
        }
        a->counter_depth = (unsigned)v;
    }
    size_t vs, ve;
    if (!acq_value(p, len, "Assembly Size (NX1, 2X2)", &vs, &ve)) {
        if (parse_layout(p + vs, ve - vs, &a->layout)) {
            char fs[32];
            show(p, vs, ve, fs);
            return fail_at(c, WEIR_EFORMAT, vs,
                           "HDR: \"Assembly Size (NX1, 2X2)\": expected a layout such as 1x1 "
                           "or 2x2, found %s",
                           fs);
        }
        a->has_layout = 1;
    }
    int fx, fy;
    if ((rc = acq_uint(c, len, "ScanX", 0, &a->scan_x, &fx))) return rc;
    if ((rc = acq_uint(c, len, "ScanY", 0, &a->scan_y, &fy))) return rc;
    a->has_scan = fx && fy;
    return WEIR_OK;
}

int weir_merlin_acq_parse(const uint8_t *data, size_t len, weir_merlin_acq *a, char *err,
                          size_t errlen)
{
    if (!a || (!data && len)) return WEIR_EINVAL;
    memset(a, 0, sizeof *a);
    /* parse the copy, so offsets and values refer to what the caller keeps */
    char *text = malloc(len + 1);
    if (!text) return WEIR_ENOMEM;
    if (len) memcpy(text, data, len);
    text[len] = 0;
    mctx c = {"<buffer>", (const uint8_t *)text, 0, err, errlen};
    int rc = parse_acq(&c, len, a);
    if (rc) {
        free(text);
        memset(a, 0, sizeof *a);
        return rc;
    }
    a->text = text;
    a->text_len = len;
    return WEIR_OK;
}

int weir_merlin_acq_read(const char *path, weir_merlin_acq *a, char *err, size_t errlen)
{
    weir_buf *b = NULL;
    if (!path || !a) return WEIR_EINVAL;
    memset(a, 0, sizeof *a);
    int rc = weir_buf_map_file(path, &b);
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read: %s", path, weir_strerror(rc));
        return rc;
    }
    rc = weir_merlin_acq_parse(weir_buf_data(b), weir_buf_size(b), a, err, errlen);
    if (rc && err && errlen) {
        /* "<buffer>: byte N: ..." -> "path: byte N: ..." */
        char tmp[512];
        const char *rest = strncmp(err, "<buffer>", 8) == 0 ? err + 8 : err;
        snprintf(tmp, sizeof tmp, "%s%s", path, rest);
        snprintf(err, errlen, "%s", tmp);
    }
    weir_buf_unref(b);
    return rc;
}

int weir_merlin_acq_get(const weir_merlin_acq *a, const char *key, const char **val, size_t *len)
{
    size_t vs, ve;
    if (!a || !a->text || !key) return WEIR_EINVAL;
    int rc = acq_value((const uint8_t *)a->text, a->text_len, key, &vs, &ve);
    if (rc) return rc;
    if (val) *val = a->text + vs;
    if (len) *len = ve - vs;
    return WEIR_OK;
}

void weir_merlin_acq_clear(weir_merlin_acq *a)
{
    if (!a) return;
    free(a->text);
    memset(a, 0, sizeof *a);
}

int weir_merlin_acq_encode(const weir_merlin_acq *a, int mpx, weir_buf **out)
{
    strbuf b = {0};
    int rc = WEIR_ENOMEM;
    if (out) *out = NULL;
    if (!a || !out) return WEIR_EINVAL;
    sb_printf(&b, "HDR,\t\r\n");
    sb_printf(&b, "Time and Date Stamp (day, mnth, yr, hr, min, s):\t01/01/1970 00:00:00\r\n");
    sb_printf(&b, "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX):\tMedipix 3RX\r\n");
    if (a->has_layout) {
        char lay[16];
        layout_str(&a->layout, lay);
        sb_printf(&b, "Assembly Size (NX1, 2X2):\t%6s\r\n", lay);
    }
    if (a->counter_depth) sb_printf(&b, "Counter Depth (number):\t%u\r\n", a->counter_depth);
    sb_printf(&b, "Frames in Acquisition (Number):\t%llu\r\n",
              (unsigned long long)a->frames_in_acquisition);
    sb_printf(&b, "Frames per Trigger (Number):\t%llu\r\n",
              (unsigned long long)a->frames_per_trigger);
    if (a->has_scan)
        sb_printf(&b, "ScanX:\t%llu\r\nScanY:\t%llu\r\n", (unsigned long long)a->scan_x,
                  (unsigned long long)a->scan_y);
    sb_printf(&b, "End\t");
    if (b.oom) goto done;
    size_t body = b.len < HDR_FILE_SIZE ? HDR_FILE_SIZE : b.len;
    size_t pre = mpx ? WEIR_MERLIN_MPX_PREFIX : 0;
    weir_buf *ob = weir_buf_new(pre + body);
    if (!ob) goto done;
    uint8_t *o = weir_buf_mutable(ob);
    if (mpx) {
        char px[WEIR_MERLIN_MPX_PREFIX + 1];
        weir_merlin_mpx_prefix(body, px); /* body < 10^10: cannot fail */
        memcpy(o, px, WEIR_MERLIN_MPX_PREFIX);
    }
    memcpy(o + pre, b.s, b.len);
    memset(o + pre + b.len, ' ', body - b.len);
    *out = ob;
    rc = WEIR_OK;
done:
    free(b.s);
    return rc;
}

/* --------------------------------------------------------------------- MPX */

int weir_merlin_mpx_prefix(size_t payload_len, char out[WEIR_MERLIN_MPX_PREFIX + 1])
{
    if (!out) return WEIR_EINVAL;
    /* the number counts the comma after the digits as well */
    if ((uint64_t)payload_len >= UINT64_C(9999999999)) return WEIR_ERANGE;
    snprintf(out, WEIR_MERLIN_MPX_PREFIX + 1, "MPX,%010llu,", (unsigned long long)payload_len + 1);
    return WEIR_OK;
}

static int mpx_split(const mctx *c, size_t len, weir_merlin_mpx *m)
{
    const uint8_t *p = c->p;
    memset(m, 0, sizeof *m);
    m->total = WEIR_MERLIN_MPX_PREFIX;
    m->payload_off = WEIR_MERLIN_MPX_PREFIX;
    /* check what is there before asking for more, so garbage fails at once */
    size_t have = len < WEIR_MERLIN_MPX_PREFIX ? len : WEIR_MERLIN_MPX_PREFIX;
    for (size_t i = 0; i < have; i++) {
        if (i < 4 && p[i] != (uint8_t)MPX_MAGIC[i]) {
            char found[32];
            show(p, 0, have < 4 ? have : 4, found);
            return fail_at(c, WEIR_EFORMAT, i, "expected \"MPX,\" (a Merlin message), found %s",
                           found);
        }
        if (i >= 4 && i < 14 && !is_digit(p[i])) {
            char found[32];
            show(p, 4, have < 14 ? have : 14, found);
            return fail_at(c, WEIR_EFORMAT, i, "MPX length: expected 10 decimal digits, found %s",
                           found);
        }
        if (i == 14 && p[i] != ',')
            return fail_at(c, WEIR_EFORMAT, i,
                           "MPX length: expected ',' after the 10 digits, found byte 0x%02x", p[i]);
    }
    if (len < WEIR_MERLIN_MPX_PREFIX) return WEIR_ETRUNCATED;
    uint64_t n = 0;
    for (size_t i = 4; i < 14; i++)
        n = n * 10 + (uint64_t)(p[i] - '0');
    if (n == 0)
        return fail_at(c, WEIR_EFORMAT, 4,
                       "MPX length: 0 (expected at least 1: the length counts the comma)");
    if (n - 1 > SIZE_MAX - WEIR_MERLIN_MPX_PREFIX)
        return fail_at(c, WEIR_ERANGE, 4, "MPX length %llu does not fit in memory",
                       (unsigned long long)n);
    m->payload_len = (size_t)(n - 1);
    m->total = WEIR_MERLIN_MPX_PREFIX + m->payload_len;
    if (len < m->total) return WEIR_ETRUNCATED;
    const uint8_t *pl = p + WEIR_MERLIN_MPX_PREFIX;
    if (m->payload_len >= 4 && !memcmp(pl, HDR_MAGIC, 4))
        m->kind = WEIR_MERLIN_MSG_HDR;
    else if (m->payload_len >= 4 && !memcmp(pl, MQ1_MAGIC, 4))
        m->kind = WEIR_MERLIN_MSG_FRAME;
    else
        m->kind = WEIR_MERLIN_MSG_OTHER;
    return WEIR_OK;
}

int weir_merlin_mpx_split(const uint8_t *data, size_t len, weir_merlin_mpx *m, char *err,
                          size_t errlen)
{
    mctx c = {"<buffer>", data, 0, err, errlen};
    if (!m || (!data && len)) return WEIR_EINVAL;
    int rc = mpx_split(&c, len, m);
    if (rc == WEIR_ETRUNCATED)
        fail_at(&c, rc, len, "MPX message incomplete: %zu of %zu bytes", len, m->total);
    return rc;
}

/* ------------------------------------------------------------------ reader */

struct weir_merlin_reader {
    weir_bufreader b; /* first: see bufreader.h */
    int has_acq;
    weir_merlin_acq acq;
};

void weir_merlin_frame_clear(weir_merlin_frame *f)
{
    if (!f) return;
    weir_buf_unref(f->buf);
    memset(f, 0, sizeof *f);
}

int weir_merlin_reader_new(weir_buf *buf, const char *name, weir_merlin_reader **out)
{
    return weir_bufreader_new(sizeof **out, buf, name, (void **)out);
}

int weir_merlin_reader_open(const char *path, weir_merlin_reader **out, char *err, size_t errlen)
{
    return weir_bufreader_open(sizeof **out, path, (void **)out, err, errlen);
}

const weir_merlin_acq *weir_merlin_reader_acq(const weir_merlin_reader *r)
{
    return r && r->has_acq ? &r->acq : NULL;
}

void weir_merlin_reader_free(weir_merlin_reader *r)
{
    if (!r) return;
    weir_merlin_acq_clear(&r->acq);
    weir_bufreader_free(r);
}

/* The next MPX message that is a frame; HDR messages on the way are kept. */
static int next_mpx(weir_merlin_reader *r, const uint8_t *d, size_t size, weir_merlin_frame *fr,
                    char *err, size_t errlen)
{
    for (;;) {
        if (r->b.pos == size) return 1;
        mctx c = {r->b.name, d + r->b.pos, r->b.pos, err, errlen};
        weir_merlin_mpx m;
        size_t left = size - r->b.pos;
        int rc = mpx_split(&c, left, &m);
        if (rc == WEIR_ETRUNCATED)
            return fail_at(&c, rc, 0, "MPX message cut short: it needs %zu bytes, %zu are left",
                           m.total, left);
        if (rc) return rc;
        mctx pc = {r->b.name, d + r->b.pos + m.payload_off, r->b.pos + m.payload_off, err, errlen};
        if (m.kind == WEIR_MERLIN_MSG_HDR) {
            weir_merlin_acq a = {0};
            char *text = malloc(m.payload_len + 1);
            if (!text) return WEIR_ENOMEM;
            memcpy(text, pc.p, m.payload_len);
            text[m.payload_len] = 0;
            pc.p = (const uint8_t *)text;
            rc = parse_acq(&pc, m.payload_len, &a);
            if (rc) {
                free(text);
                return rc;
            }
            a.text = text;
            a.text_len = m.payload_len;
            weir_merlin_acq_clear(&r->acq);
            r->acq = a;
            r->has_acq = 1;
            r->b.pos += m.total;
            continue;
        }
        if (m.kind != WEIR_MERLIN_MSG_FRAME)
            return fail_at(&c, WEIR_EFORMAT, WEIR_MERLIN_MPX_PREFIX,
                           "expected an \"HDR,\" or \"MQ1,\" message in the data stream");
        if ((rc = parse_frame(&pc, m.payload_len, &fr->hdr))) return rc;
        if (fr->hdr.data_offset + fr->hdr.payload_bytes != m.payload_len)
            return fail_at(&c,
                           fr->hdr.data_offset + fr->hdr.payload_bytes > m.payload_len
                               ? WEIR_ETRUNCATED
                               : WEIR_EFORMAT,
                           0,
                           "MPX frame message: %zu payload bytes, the MQ1 header describes %zu "
                           "header + %zu pixel bytes",
                           m.payload_len, fr->hdr.data_offset, fr->hdr.payload_bytes);
        fr->offset = r->b.pos + m.payload_off;
        r->b.pos += m.total;
        return WEIR_OK;
    }
}

int weir_merlin_reader_next(weir_merlin_reader *r, weir_merlin_frame *fr, int *eof, char *err,
                            size_t errlen)
{
    if (!r || !fr || !eof) return WEIR_EINVAL;
    memset(fr, 0, sizeof *fr);
    *eof = 0;
    const uint8_t *d = weir_buf_data(r->b.buf);
    size_t size = weir_buf_size(r->b.buf), save = r->b.pos;
    int rc;
    if (r->b.pos == size) {
        *eof = 1;
        return WEIR_OK;
    }
    if (size - r->b.pos >= 4 && !memcmp(d + r->b.pos, MPX_MAGIC, 4)) {
        rc = next_mpx(r, d, size, fr, err, errlen);
        if (rc == 1) {
            *eof = 1;
            return WEIR_OK;
        }
    } else {
        mctx c = {r->b.name, d + r->b.pos, r->b.pos, err, errlen};
        size_t left = size - r->b.pos;
        if ((rc = parse_frame(&c, left, &fr->hdr))) goto fail;
        if (left - fr->hdr.data_offset < fr->hdr.payload_bytes) {
            rc = fail_at(&c, WEIR_ETRUNCATED, 0,
                         "frame %llu (sequence %llu) cut short: it needs %zu header + %zu pixel "
                         "bytes, %zu are left",
                         (unsigned long long)r->b.index, (unsigned long long)fr->hdr.sequence,
                         fr->hdr.data_offset, fr->hdr.payload_bytes, left);
            goto fail;
        }
        fr->offset = r->b.pos;
        r->b.pos += fr->hdr.data_offset + fr->hdr.payload_bytes;
    }
    if (rc) goto fail;
    fr->buf = weir_buf_ref(r->b.buf);
    fr->index = r->b.index++;
    return WEIR_OK;
fail:
    r->b.pos = save; /* stay at the bad item */
    memset(fr, 0, sizeof *fr);
    return rc;
}
