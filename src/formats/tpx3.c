/* tpx3.c — the ASI CheeTah TPX3 sparse stream, decode and encode
 * (include/weir/tpx3.h).
 *
 * The wire format is LiberTEM-rs's (libertem_asi_tpx3 headers.rs): each
 * header is a bincode struct, fixint and little-endian, so fields sit back
 * to back with no alignment and the reserved bytes fill it to 32. The
 * offsets are written out once below (OFF_*) and used by both directions;
 * the unit test checks them against bytes it writes by hand.
 *
 * The framer is a push parser for bytes that arrive over TCP in arbitrary
 * pieces. feed() consumes bytes at once: header bytes are staged in 32
 * bytes, then the payload size follows from the header (and, for a chunk,
 * the dtypes of the last AcquisitionStart) and payload bytes are copied
 * straight into a buffer of that size, so a message is copied exactly once.
 * A complete wire message goes through a small state machine (acquisition
 * / scan) that queues weir messages, or an error entry, for next() to pop.
 * Errors that lose the framing (a header that cannot be sized) make the
 * framer broken: with no magic or length prefix there is no way to find the
 * next header again, exactly as in LiberTEM's receiver, which bails out.
 *
 * Image messages are zero-copy views: the payload buffer and the 32-byte
 * header buffers are shared by all messages cut from one chunk, only the
 * 16-byte frame range is new per message. */
#include "weir/tpx3.h"

#include "../core/bufreader.h"

#include "weir/error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* AcquisitionStart */
#define OFF_AS_VERSION 1
#define OFF_AS_FORMAT 2
#define OFF_AS_NAV 3 /* 2 x u16 */
#define OFF_AS_INDPTR_DT 7
#define OFF_AS_SIG 8 /* 2 x u16 */
#define OFF_AS_INDICES_DT 12
#define OFF_AS_SEQ 13
#define OFF_AS_RESERVED 17 /* 15 bytes */
/* ScanStart */
#define OFF_SS_SEQ 1
#define OFF_SS_META 5
#define OFF_SS_RESERVED 13 /* 19 bytes */
/* ArrayChunk */
#define OFF_AC_VALUE_DT 1
#define OFF_AC_NFRAMES 2
#define OFF_AC_LENGTH 6
#define OFF_AC_INDICES 10
#define OFF_AC_VALUES 14
#define OFF_AC_RESERVED 18 /* 14 bytes */
/* ScanEnd, AcquisitionEnd */
#define OFF_END_SEQ 1
#define OFF_END_RESERVED 5 /* 27 bytes */

#define DEFAULT_MAX_PAYLOAD (UINT64_C(1) << 30)

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t rd_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t max_of(size_t size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

/* ------------------------------------------------------------------ names */

size_t weir_tpx3_dtype_size(unsigned code)
{
    switch (code) {
    case WEIR_TPX3_U8:
        return 1;
    case WEIR_TPX3_U16:
        return 2;
    case WEIR_TPX3_U32:
        return 4;
    case WEIR_TPX3_U64:
        return 8;
    default:
        return 0;
    }
}

const char *weir_tpx3_dtype_name(unsigned code)
{
    static const char *const n[] = {"u1", "u4", "uint8", "uint16", "uint32", "uint64"};
    return code < 6 ? n[code] : "?";
}

const char *weir_tpx3_tag_name(unsigned tag)
{
    static const char *const n[] = {"AcquisitionStart", "ScanStart", "ArrayChunk", "ScanEnd",
                                    "AcquisitionEnd"};
    return tag < 5 ? n[tag] : "unknown";
}

/* ---------------------------------------------------------------- headers */

static int check_dtype(unsigned code, const char *what, size_t pos, char *err, size_t errlen)
{
    if (code > WEIR_TPX3_U64)
        return fail(err, errlen, WEIR_EFORMAT,
                    "byte %zu: %s: dtype code %u, expected 0..5 (u1 u4 u8 u16 u32 u64)", pos, what,
                    code);
    if (!weir_tpx3_dtype_size(code))
        return fail(err, errlen, WEIR_EUNSUPPORTED,
                    "byte %zu: %s: dtype %s is not supported (expected uint8..uint64)", pos, what,
                    weir_tpx3_dtype_name(code));
    return WEIR_OK;
}

int weir_tpx3_header_decode(const uint8_t *p, size_t len, weir_tpx3_header *h, char *err,
                            size_t errlen)
{
    int rc;
    if (!h || (!p && len)) return WEIR_EINVAL;
    memset(h, 0, sizeof *h);
    if (len < WEIR_TPX3_HEADER_SIZE)
        return fail(err, errlen, WEIR_ETRUNCATED, "byte 0: TPX3 header cut short: %zu of %d bytes",
                    len, WEIR_TPX3_HEADER_SIZE);
    if (p[0] > WEIR_TPX3_ACQ_END)
        return fail(err, errlen, WEIR_EFORMAT,
                    "byte 0: TPX3 header tag 0x%02x, expected 0x00..0x04 (AcquisitionStart, "
                    "ScanStart, ArrayChunk, ScanEnd, AcquisitionEnd)",
                    p[0]);
    h->tag = (weir_tpx3_tag)p[0];
    switch (h->tag) {
    case WEIR_TPX3_ACQ_START: {
        weir_tpx3_acq_start *a = &h->u.acq_start;
        a->version = p[OFF_AS_VERSION];
        a->format_type = p[OFF_AS_FORMAT];
        a->nav_shape[0] = (uint16_t)rd_le(p + OFF_AS_NAV, 2);
        a->nav_shape[1] = (uint16_t)rd_le(p + OFF_AS_NAV + 2, 2);
        a->indptr_dtype = p[OFF_AS_INDPTR_DT];
        a->sig_shape[0] = (uint16_t)rd_le(p + OFF_AS_SIG, 2);
        a->sig_shape[1] = (uint16_t)rd_le(p + OFF_AS_SIG + 2, 2);
        a->indices_dtype = p[OFF_AS_INDICES_DT];
        a->sequence = (uint32_t)rd_le(p + OFF_AS_SEQ, 4);
        memcpy(a->reserved, p + OFF_AS_RESERVED, sizeof a->reserved);
        if (a->version != WEIR_TPX3_VERSION)
            return fail(err, errlen, WEIR_EUNSUPPORTED,
                        "byte %d: AcquisitionStart version %u, expected %d", OFF_AS_VERSION,
                        a->version, WEIR_TPX3_VERSION);
        if (a->format_type > WEIR_TPX3_FORMAT_TOT)
            return fail(err, errlen, WEIR_EFORMAT,
                        "byte %d: AcquisitionStart format type %u, expected 0 (CSR) or 1 (CSR "
                        "with ToT)",
                        OFF_AS_FORMAT, a->format_type);
        if ((rc = check_dtype(a->indptr_dtype, "AcquisitionStart indptr dtype", OFF_AS_INDPTR_DT,
                              err, errlen)))
            return rc;
        if ((rc = check_dtype(a->indices_dtype, "AcquisitionStart indices dtype", OFF_AS_INDICES_DT,
                              err, errlen)))
            return rc;
        if (!a->sig_shape[0] || !a->sig_shape[1])
            return fail(err, errlen, WEIR_ESHAPE,
                        "byte %d: AcquisitionStart signal shape %u x %u, expected both > 0",
                        OFF_AS_SIG, a->sig_shape[0], a->sig_shape[1]);
        break;
    }
    case WEIR_TPX3_SCAN_START: {
        weir_tpx3_scan_start *s = &h->u.scan_start;
        s->sequence = (uint32_t)rd_le(p + OFF_SS_SEQ, 4);
        s->metadata_length = rd_le(p + OFF_SS_META, 8);
        memcpy(s->reserved, p + OFF_SS_RESERVED, sizeof s->reserved);
        break;
    }
    case WEIR_TPX3_ARRAY_CHUNK: {
        weir_tpx3_array_chunk *c = &h->u.chunk;
        c->value_dtype = p[OFF_AC_VALUE_DT];
        c->nframes = (uint32_t)rd_le(p + OFF_AC_NFRAMES, 4);
        c->length = (uint32_t)rd_le(p + OFF_AC_LENGTH, 4);
        c->indices_offset = (uint32_t)rd_le(p + OFF_AC_INDICES, 4);
        c->values_offset = (uint32_t)rd_le(p + OFF_AC_VALUES, 4);
        memcpy(c->reserved, p + OFF_AC_RESERVED, sizeof c->reserved);
        if ((rc = check_dtype(c->value_dtype, "ArrayChunk value dtype", OFF_AC_VALUE_DT, err,
                              errlen)))
            return rc;
        break;
    }
    default: {
        weir_tpx3_end *e = &h->u.end;
        e->sequence = (uint32_t)rd_le(p + OFF_END_SEQ, 4);
        memcpy(e->reserved, p + OFF_END_RESERVED, sizeof e->reserved);
        break;
    }
    }
    return WEIR_OK;
}

int weir_tpx3_header_encode(const weir_tpx3_header *h, uint8_t out[WEIR_TPX3_HEADER_SIZE])
{
    if (!h || !out || (unsigned)h->tag > WEIR_TPX3_ACQ_END) return WEIR_EINVAL;
    memset(out, 0, WEIR_TPX3_HEADER_SIZE);
    out[0] = (uint8_t)h->tag;
    switch (h->tag) {
    case WEIR_TPX3_ACQ_START: {
        const weir_tpx3_acq_start *a = &h->u.acq_start;
        out[OFF_AS_VERSION] = a->version;
        out[OFF_AS_FORMAT] = a->format_type;
        wr_le(out + OFF_AS_NAV, a->nav_shape[0], 2);
        wr_le(out + OFF_AS_NAV + 2, a->nav_shape[1], 2);
        out[OFF_AS_INDPTR_DT] = a->indptr_dtype;
        wr_le(out + OFF_AS_SIG, a->sig_shape[0], 2);
        wr_le(out + OFF_AS_SIG + 2, a->sig_shape[1], 2);
        out[OFF_AS_INDICES_DT] = a->indices_dtype;
        wr_le(out + OFF_AS_SEQ, a->sequence, 4);
        memcpy(out + OFF_AS_RESERVED, a->reserved, sizeof a->reserved);
        break;
    }
    case WEIR_TPX3_SCAN_START:
        wr_le(out + OFF_SS_SEQ, h->u.scan_start.sequence, 4);
        wr_le(out + OFF_SS_META, h->u.scan_start.metadata_length, 8);
        memcpy(out + OFF_SS_RESERVED, h->u.scan_start.reserved, sizeof h->u.scan_start.reserved);
        break;
    case WEIR_TPX3_ARRAY_CHUNK: {
        const weir_tpx3_array_chunk *c = &h->u.chunk;
        out[OFF_AC_VALUE_DT] = c->value_dtype;
        wr_le(out + OFF_AC_NFRAMES, c->nframes, 4);
        wr_le(out + OFF_AC_LENGTH, c->length, 4);
        wr_le(out + OFF_AC_INDICES, c->indices_offset, 4);
        wr_le(out + OFF_AC_VALUES, c->values_offset, 4);
        memcpy(out + OFF_AC_RESERVED, c->reserved, sizeof c->reserved);
        break;
    }
    default:
        wr_le(out + OFF_END_SEQ, h->u.end.sequence, 4);
        memcpy(out + OFF_END_RESERVED, h->u.end.reserved, sizeof h->u.end.reserved);
        break;
    }
    return WEIR_OK;
}

void weir_tpx3_acq_start_init(weir_tpx3_header *h, weir_tpx3_format format, uint16_t nav_h,
                              uint16_t nav_w, weir_tpx3_dtype indptr_dtype, uint16_t sig_h,
                              uint16_t sig_w, weir_tpx3_dtype indices_dtype, uint32_t sequence)
{
    memset(h, 0, sizeof *h);
    h->tag = WEIR_TPX3_ACQ_START;
    weir_tpx3_acq_start *a = &h->u.acq_start;
    a->version = WEIR_TPX3_VERSION;
    a->format_type = (uint8_t)format;
    a->nav_shape[0] = nav_h;
    a->nav_shape[1] = nav_w;
    a->indptr_dtype = (uint8_t)indptr_dtype;
    a->sig_shape[0] = sig_h;
    a->sig_shape[1] = sig_w;
    a->indices_dtype = (uint8_t)indices_dtype;
    a->sequence = sequence;
}

void weir_tpx3_scan_start_init(weir_tpx3_header *h, uint32_t sequence, uint64_t metadata_length)
{
    memset(h, 0, sizeof *h);
    h->tag = WEIR_TPX3_SCAN_START;
    h->u.scan_start.sequence = sequence;
    h->u.scan_start.metadata_length = metadata_length;
}

void weir_tpx3_end_init(weir_tpx3_header *h, weir_tpx3_tag tag, uint32_t sequence)
{
    memset(h, 0, sizeof *h);
    h->tag = tag;
    h->u.end.sequence = sequence;
}

/* ------------------------------------------------------------- CSR chunks */

int weir_tpx3_chunk_size(const weir_tpx3_acq_start *acq, const weir_tpx3_array_chunk *c, size_t at,
                         uint64_t *size, char *err, size_t errlen)
{
    if (!acq || !c || !size) return WEIR_EINVAL;
    size_t ip = weir_tpx3_dtype_size(acq->indptr_dtype);
    size_t ix = weir_tpx3_dtype_size(acq->indices_dtype);
    size_t vs = weir_tpx3_dtype_size(c->value_dtype);
    if (!ip || !ix || !vs)
        return fail(err, errlen, WEIR_EDTYPE, "byte %zu: ArrayChunk: unsupported dtype", at);
    /* all in 64 bits: u32 counts times 8 cannot overflow */
    uint64_t indptr_end = ((uint64_t)c->nframes + 1) * ip;
    uint64_t indices_end = (uint64_t)c->indices_offset + (uint64_t)c->length * ix;
    if (c->indices_offset < indptr_end)
        return fail(err, errlen, WEIR_EFORMAT,
                    "byte %zu: ArrayChunk: indices_offset %u is inside indptr (%u frames + 1 "
                    "entries of %zu bytes end at %llu)",
                    at + OFF_AC_INDICES, c->indices_offset, c->nframes, ip,
                    (unsigned long long)indptr_end);
    if (c->values_offset < indices_end)
        return fail(err, errlen, WEIR_EFORMAT,
                    "byte %zu: ArrayChunk: values_offset %u is inside the indices (%u entries of "
                    "%zu bytes from %u end at %llu)",
                    at + OFF_AC_VALUES, c->values_offset, c->length, ix, c->indices_offset,
                    (unsigned long long)indices_end);
    *size = (uint64_t)c->values_offset + (uint64_t)c->length * vs;
    return WEIR_OK;
}

uint64_t weir_tpx3_chunk_indptr(const weir_tpx3_chunk *c, size_t i)
{
    return rd_le(c->indptr + i * c->indptr_size, c->indptr_size);
}

uint64_t weir_tpx3_chunk_index(const weir_tpx3_chunk *c, size_t k)
{
    return rd_le(c->indices + k * c->indices_size, c->indices_size);
}

uint64_t weir_tpx3_chunk_value(const weir_tpx3_chunk *c, size_t k)
{
    return rd_le(c->values + k * c->value_size, c->value_size);
}

/* Checks indptr[row], indptr[row + 1] and the row's indices; gives the
 * element range. */
static int row_range(const weir_tpx3_chunk *c, size_t row, uint64_t *k0, uint64_t *k1,
                     int check_indices, char *err, size_t errlen)
{
    if (row >= c->hdr.nframes)
        return fail(err, errlen, WEIR_ERANGE, "ArrayChunk: row %zu of %u", row, c->hdr.nframes);
    uint64_t a = weir_tpx3_chunk_indptr(c, row), b = weir_tpx3_chunk_indptr(c, row + 1);
    if (a > b || b > c->hdr.length)
        return fail(err, errlen, WEIR_EFORMAT,
                    "ArrayChunk: indptr[%zu] = %llu, indptr[%zu] = %llu: expected non-decreasing "
                    "and at most the length %u",
                    row, (unsigned long long)a, row + 1, (unsigned long long)b, c->hdr.length);
    if (check_indices)
        for (uint64_t k = a; k < b; k++) {
            uint64_t ix = weir_tpx3_chunk_index(c, k);
            if (ix >= c->npixels)
                return fail(err, errlen, WEIR_ERANGE,
                            "ArrayChunk: row %zu: indices[%llu] = %llu, expected < %zu (signal "
                            "%u x %u)",
                            row, (unsigned long long)k, (unsigned long long)ix, c->npixels,
                            c->acq.sig_shape[0], c->acq.sig_shape[1]);
        }
    *k0 = a;
    *k1 = b;
    return WEIR_OK;
}

int weir_tpx3_chunk_view(const weir_tpx3_acq_start *acq, const weir_tpx3_array_chunk *hdr,
                         weir_buf *payload, int validate, weir_tpx3_chunk *out, char *err,
                         size_t errlen)
{
    if (!out) return WEIR_EINVAL;
    memset(out, 0, sizeof *out);
    if (!acq || !hdr || !payload) return WEIR_EINVAL;
    uint64_t need;
    int rc = weir_tpx3_chunk_size(acq, hdr, 0, &need, err, errlen);
    if (rc) return rc;
    size_t have = weir_buf_size(payload);
    if (have != need)
        return fail(err, errlen, have < need ? WEIR_ETRUNCATED : WEIR_EFORMAT,
                    "ArrayChunk payload: %zu bytes, the header describes %llu", have,
                    (unsigned long long)need);
    weir_tpx3_chunk c = {0};
    c.acq = *acq;
    c.hdr = *hdr;
    const uint8_t *d = weir_buf_data(payload);
    c.indptr_size = weir_tpx3_dtype_size(acq->indptr_dtype);
    c.indices_size = weir_tpx3_dtype_size(acq->indices_dtype);
    c.value_size = weir_tpx3_dtype_size(hdr->value_dtype);
    c.indptr = d;
    c.indices = d + hdr->indices_offset;
    c.values = d + hdr->values_offset;
    c.npixels = (size_t)acq->sig_shape[0] * acq->sig_shape[1];
    if (validate) {
        if (weir_tpx3_chunk_indptr(&c, 0) != 0)
            return fail(err, errlen, WEIR_EFORMAT,
                        "ArrayChunk payload byte 0: indptr[0] = %llu, expected 0",
                        (unsigned long long)weir_tpx3_chunk_indptr(&c, 0));
        for (size_t r = 0; r < hdr->nframes; r++) {
            uint64_t k0, k1;
            if ((rc = row_range(&c, r, &k0, &k1, 1, err, errlen))) return rc;
        }
        uint64_t last = weir_tpx3_chunk_indptr(&c, hdr->nframes);
        if (last != hdr->length)
            return fail(err, errlen, WEIR_EFORMAT,
                        "ArrayChunk payload byte %zu: indptr[%u] = %llu, expected the length %u",
                        (size_t)hdr->nframes * c.indptr_size, hdr->nframes,
                        (unsigned long long)last, hdr->length);
    }
    c.buf = weir_buf_ref(payload);
    *out = c;
    return WEIR_OK;
}

void weir_tpx3_chunk_clear(weir_tpx3_chunk *c)
{
    if (!c) return;
    weir_buf_unref(c->buf);
    memset(c, 0, sizeof *c);
}

int weir_tpx3_chunk_dense(const weir_tpx3_chunk *c, size_t row, weir_dtype_kind kind,
                          weir_array *out, char *err, size_t errlen)
{
    if (!out) return WEIR_EINVAL;
    memset(out, 0, sizeof *out);
    if (!c || !c->indptr) return WEIR_EINVAL;
    if (kind != WEIR_DT_U8 && kind != WEIR_DT_U16 && kind != WEIR_DT_U32 && kind != WEIR_DT_U64 &&
        kind != WEIR_DT_F32 && kind != WEIR_DT_F64)
        return fail(err, errlen, WEIR_EDTYPE,
                    "dense TPX3 frame: dtype %s, expected an unsigned integer, float32 or float64",
                    weir_dtype_name(kind));
    uint64_t k0, k1;
    int rc = row_range(c, row, &k0, &k1, 1, err, errlen);
    if (rc) return rc;
    size_t shape[2] = {c->acq.sig_shape[0], c->acq.sig_shape[1]};
    weir_dtype dt = {kind, weir_host_order()};
    if ((rc = weir_array_alloc(out, dt, 2, shape))) return rc;
    /* weir_array_alloc gives zeroed, 64-byte aligned, sole-owner memory */
    uint8_t *base = weir_buf_mutable(out->buf);
    uint64_t lim = max_of(weir_dtype_size(kind));
    for (uint64_t k = k0; k < k1; k++) {
        size_t ix = (size_t)weir_tpx3_chunk_index(c, k);
        uint64_t v = weir_tpx3_chunk_value(c, k);
        switch (kind) {
        case WEIR_DT_F32:
            ((float *)base)[ix] += (float)v;
            break;
        case WEIR_DT_F64:
            ((double *)base)[ix] += (double)v;
            break;
        default: {
            size_t isz = weir_dtype_size(kind);
            uint64_t cur = isz == 1   ? base[ix]
                           : isz == 2 ? ((uint16_t *)base)[ix]
                           : isz == 4 ? ((uint32_t *)base)[ix]
                                      : ((uint64_t *)base)[ix];
            if (v > lim - cur) {
                weir_array_release(out);
                return fail(err, errlen, WEIR_ERANGE,
                            "dense TPX3 frame: row %zu pixel %zu: %llu + %llu does not fit %s", row,
                            ix, (unsigned long long)cur, (unsigned long long)v,
                            weir_dtype_name(kind));
            }
            cur += v;
            if (isz == 1)
                base[ix] = (uint8_t)cur;
            else if (isz == 2)
                ((uint16_t *)base)[ix] = (uint16_t)cur;
            else if (isz == 4)
                ((uint32_t *)base)[ix] = (uint32_t)cur;
            else
                ((uint64_t *)base)[ix] = cur;
        }
        }
    }
    return WEIR_OK;
}

int weir_tpx3_chunk_add_f64(const weir_tpx3_chunk *c, size_t row0, size_t nrows, double *acc,
                            char *err, size_t errlen)
{
    if (!c || !c->indptr || !acc) return WEIR_EINVAL;
    if (row0 > c->hdr.nframes || nrows > c->hdr.nframes - row0)
        return fail(err, errlen, WEIR_ERANGE, "ArrayChunk: rows %zu..%zu of %u", row0, row0 + nrows,
                    c->hdr.nframes);
    for (size_t r = row0; r < row0 + nrows; r++) {
        uint64_t k0, k1;
        int rc = row_range(c, r, &k0, &k1, 1, err, errlen);
        if (rc) return rc;
        for (uint64_t k = k0; k < k1; k++)
            acc[weir_tpx3_chunk_index(c, k)] += (double)weir_tpx3_chunk_value(c, k);
    }
    return WEIR_OK;
}

static uint64_t round_up(uint64_t v, size_t align)
{
    return align > 1 ? (v + align - 1) / align * align : v;
}

int weir_tpx3_chunk_encode(const weir_tpx3_acq_start *acq, weir_tpx3_dtype value_dtype,
                           uint32_t nframes, const uint64_t *indptr, const uint64_t *indices,
                           const uint64_t *values, size_t align, weir_buf **out, char *err,
                           size_t errlen)
{
    if (out) *out = NULL;
    if (!acq || !indptr || !out) return WEIR_EINVAL;
    size_t ip = weir_tpx3_dtype_size(acq->indptr_dtype);
    size_t ix = weir_tpx3_dtype_size(acq->indices_dtype);
    size_t vs = weir_tpx3_dtype_size(value_dtype);
    if (!ip || !ix || !vs)
        return fail(err, errlen, WEIR_EDTYPE, "ArrayChunk encode: dtypes %s/%s/%s",
                    weir_tpx3_dtype_name(acq->indptr_dtype),
                    weir_tpx3_dtype_name(acq->indices_dtype), weir_tpx3_dtype_name(value_dtype));
    if (indptr[0] != 0)
        return fail(err, errlen, WEIR_EFORMAT, "ArrayChunk encode: indptr[0] = %llu, expected 0",
                    (unsigned long long)indptr[0]);
    for (uint32_t r = 0; r < nframes; r++) {
        if (indptr[r + 1] < indptr[r])
            return fail(err, errlen, WEIR_EFORMAT,
                        "ArrayChunk encode: indptr[%u] = %llu < indptr[%u] = %llu", r + 1,
                        (unsigned long long)indptr[r + 1], r, (unsigned long long)indptr[r]);
        if (indptr[r + 1] > max_of(ip))
            return fail(err, errlen, WEIR_ERANGE, "ArrayChunk encode: indptr[%u] = %llu: not %s",
                        r + 1, (unsigned long long)indptr[r + 1],
                        weir_tpx3_dtype_name(acq->indptr_dtype));
    }
    uint64_t nnz = indptr[nframes];
    if (nnz && (!indices || !values)) return WEIR_EINVAL;
    if (nnz > UINT32_MAX)
        return fail(err, errlen, WEIR_ERANGE, "ArrayChunk encode: %llu elements, at most 2^32-1",
                    (unsigned long long)nnz);
    size_t npix = (size_t)acq->sig_shape[0] * acq->sig_shape[1];
    for (uint64_t k = 0; k < nnz; k++) {
        if (indices[k] >= npix || indices[k] > max_of(ix))
            return fail(err, errlen, WEIR_ERANGE,
                        "ArrayChunk encode: indices[%llu] = %llu: expected < %zu and %s",
                        (unsigned long long)k, (unsigned long long)indices[k], npix,
                        weir_tpx3_dtype_name(acq->indices_dtype));
        if (values[k] > max_of(vs))
            return fail(err, errlen, WEIR_ERANGE, "ArrayChunk encode: values[%llu] = %llu: not %s",
                        (unsigned long long)k, (unsigned long long)values[k],
                        weir_tpx3_dtype_name(value_dtype));
    }
    uint64_t ioff = round_up(((uint64_t)nframes + 1) * ip, align);
    uint64_t voff = round_up(ioff + nnz * ix, align);
    uint64_t total = voff + nnz * vs;
    if (voff > UINT32_MAX || total > SIZE_MAX - WEIR_TPX3_HEADER_SIZE)
        return fail(err, errlen, WEIR_ERANGE,
                    "ArrayChunk encode: values offset %llu does not fit u32",
                    (unsigned long long)voff);
    weir_buf *b = weir_buf_new(WEIR_TPX3_HEADER_SIZE + (size_t)total);
    if (!b) return WEIR_ENOMEM;
    uint8_t *o = weir_buf_mutable(b);
    memset(o, 0, WEIR_TPX3_HEADER_SIZE + (size_t)total);
    weir_tpx3_header h = {.tag = WEIR_TPX3_ARRAY_CHUNK};
    h.u.chunk.value_dtype = (uint8_t)value_dtype;
    h.u.chunk.nframes = nframes;
    h.u.chunk.length = (uint32_t)nnz;
    h.u.chunk.indices_offset = (uint32_t)ioff;
    h.u.chunk.values_offset = (uint32_t)voff;
    weir_tpx3_header_encode(&h, o);
    uint8_t *pl = o + WEIR_TPX3_HEADER_SIZE;
    for (uint32_t r = 0; r <= nframes; r++)
        wr_le(pl + (size_t)r * ip, indptr[r], ip);
    for (uint64_t k = 0; k < nnz; k++) {
        wr_le(pl + ioff + k * ix, indices[k], ix);
        wr_le(pl + voff + k * vs, values[k], vs);
    }
    *out = b;
    return WEIR_OK;
}

int weir_tpx3_control_encode(const weir_tpx3_header *h, const void *metadata, size_t metadata_len,
                             weir_buf **out)
{
    if (out) *out = NULL;
    if (!h || !out || h->tag == WEIR_TPX3_ARRAY_CHUNK || (unsigned)h->tag > WEIR_TPX3_ACQ_END)
        return WEIR_EINVAL;
    size_t meta = h->tag == WEIR_TPX3_SCAN_START ? metadata_len : 0;
    if (h->tag == WEIR_TPX3_SCAN_START &&
        (h->u.scan_start.metadata_length != metadata_len || (metadata_len && !metadata)))
        return WEIR_EINVAL;
    if (meta > SIZE_MAX - WEIR_TPX3_HEADER_SIZE) return WEIR_ERANGE;
    weir_buf *b = weir_buf_new(WEIR_TPX3_HEADER_SIZE + meta);
    if (!b) return WEIR_ENOMEM;
    uint8_t *o = weir_buf_mutable(b);
    weir_tpx3_header_encode(h, o);
    if (meta) memcpy(o + WEIR_TPX3_HEADER_SIZE, metadata, meta);
    *out = b;
    return WEIR_OK;
}

/* --------------------------------------------------------------- messages */

static int part_header(const weir_msg *m, size_t i, weir_tpx3_header *h, char *err, size_t errlen)
{
    size_t n = weir_buf_size(m->parts[i]);
    if (n != WEIR_TPX3_HEADER_SIZE)
        return fail(err, errlen, WEIR_EFORMAT,
                    "TPX3 message part %zu: %zu bytes, expected a 32-byte header", i, n);
    int rc = weir_tpx3_header_decode(weir_buf_data(m->parts[i]), n, h, err, errlen);
    if (rc && err && errlen) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "TPX3 message part %zu: %s", i, err);
        snprintf(err, errlen, "%s", tmp);
    }
    return rc;
}

static int parse_msg(const weir_msg *m, int payload, int validate, weir_tpx3_packet *p, char *err,
                     size_t errlen)
{
    int rc;
    if (!m->nparts)
        return fail(err, errlen, WEIR_EFORMAT, "TPX3 message: no parts, expected a header");
    if ((rc = part_header(m, 0, &p->head, err, errlen))) return rc;
    switch (p->head.tag) {
    case WEIR_TPX3_ACQ_START: {
        weir_tpx3_header s;
        if (m->nparts < 2 || m->nparts > 3)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 start message: %zu parts, expected AcquisitionStart, ScanStart "
                        "(and metadata)",
                        m->nparts);
        if ((rc = part_header(m, 1, &s, err, errlen))) return rc;
        if (s.tag != WEIR_TPX3_SCAN_START)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 start message part 1: %s, expected ScanStart",
                        weir_tpx3_tag_name(s.tag));
        size_t ml = m->nparts == 3 ? weir_buf_size(m->parts[2]) : 0;
        if (ml != s.u.scan_start.metadata_length)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 start message: %zu metadata bytes, ScanStart announces %llu", ml,
                        (unsigned long long)s.u.scan_start.metadata_length);
        p->kind = WEIR_TPX3_MSG_START;
        p->acq = p->head.u.acq_start;
        p->scan = s.u.scan_start;
        p->metadata = ml ? weir_buf_data(m->parts[2]) : NULL;
        p->metadata_len = ml;
        return WEIR_OK;
    }
    case WEIR_TPX3_ARRAY_CHUNK: {
        weir_tpx3_header a;
        if (m->nparts != 4)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 image message: %zu parts, expected ArrayChunk, payload, "
                        "AcquisitionStart, range",
                        m->nparts);
        if ((rc = part_header(m, 2, &a, err, errlen))) return rc;
        if (a.tag != WEIR_TPX3_ACQ_START)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 image message part 2: %s, expected AcquisitionStart",
                        weir_tpx3_tag_name(a.tag));
        if (weir_buf_size(m->parts[3]) != WEIR_TPX3_RANGE_SIZE)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 image message part 3: %zu bytes, expected the %d-byte range",
                        weir_buf_size(m->parts[3]), WEIR_TPX3_RANGE_SIZE);
        const uint8_t *r = weir_buf_data(m->parts[3]);
        p->kind = WEIR_TPX3_MSG_IMAGE;
        p->acq = a.u.acq_start;
        p->first_frame = rd_le(r, 8);
        p->row0 = (uint32_t)rd_le(r + 8, 4);
        p->nrows = (uint32_t)rd_le(r + 12, 4);
        const weir_tpx3_array_chunk *c = &p->head.u.chunk;
        if (p->row0 > c->nframes || p->nrows > c->nframes - p->row0 || p->nrows == 0)
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 image message: rows %u..%llu of a chunk of %u frames", p->row0,
                        (unsigned long long)p->row0 + p->nrows, c->nframes);
        if (p->first_frame > (uint64_t)INT64_MAX)
            return fail(err, errlen, WEIR_ERANGE, "TPX3 image message: frame %llu",
                        (unsigned long long)p->first_frame);
        if (payload)
            return weir_tpx3_chunk_view(&p->acq, c, m->parts[1], validate, &p->chunk, err, errlen);
        uint64_t need;
        if ((rc = weir_tpx3_chunk_size(&p->acq, c, 0, &need, err, errlen))) return rc;
        if (need != weir_buf_size(m->parts[1]))
            return fail(err, errlen, WEIR_EFORMAT,
                        "TPX3 image message: payload of %zu bytes, the header describes %llu",
                        weir_buf_size(m->parts[1]), (unsigned long long)need);
        return WEIR_OK;
    }
    case WEIR_TPX3_SCAN_END:
    case WEIR_TPX3_ACQ_END:
        if (m->nparts != 1)
            return fail(err, errlen, WEIR_EFORMAT, "TPX3 end message: %zu parts, expected 1",
                        m->nparts);
        p->kind = WEIR_TPX3_MSG_END;
        return WEIR_OK;
    default:
        return fail(err, errlen, WEIR_EFORMAT,
                    "TPX3 message: starts with %s, expected AcquisitionStart, ArrayChunk, "
                    "ScanEnd or AcquisitionEnd",
                    weir_tpx3_tag_name(p->head.tag));
    }
}

int weir_tpx3_packet_parse(const weir_msg *m, int validate, weir_tpx3_packet *p, char *err,
                           size_t errlen)
{
    if (!p) return WEIR_EINVAL;
    memset(p, 0, sizeof *p);
    if (!m) return WEIR_EINVAL;
    int rc = parse_msg(m, 1, validate, p, err, errlen);
    if (rc) weir_tpx3_packet_clear(p);
    return rc;
}

void weir_tpx3_packet_clear(weir_tpx3_packet *p)
{
    if (!p) return;
    weir_tpx3_chunk_clear(&p->chunk);
    memset(p, 0, sizeof *p);
}

int weir_tpx3_classify(const weir_msg *m, weir_stins_kind *kind, int64_t *frame, char *err,
                       size_t errlen)
{
    weir_tpx3_packet p;
    if (!m || !kind || !frame) return WEIR_EINVAL;
    memset(&p, 0, sizeof p);
    int rc = parse_msg(m, 0, 0, &p, err, errlen);
    if (rc) return rc;
    *kind = p.kind == WEIR_TPX3_MSG_START   ? WEIR_STINS_HEADER
            : p.kind == WEIR_TPX3_MSG_IMAGE ? WEIR_STINS_IMAGE
                                            : WEIR_STINS_SERIES_END;
    *frame = p.kind == WEIR_TPX3_MSG_IMAGE ? (int64_t)p.first_frame : -1;
    return WEIR_OK;
}

int weir_tpx3_msg_frames(const weir_msg *m, uint64_t *first, uint32_t *n)
{
    weir_tpx3_packet p;
    if (!m || !first || !n) return WEIR_EINVAL;
    *first = 0;
    *n = 0;
    memset(&p, 0, sizeof p);
    int rc = parse_msg(m, 0, 0, &p, NULL, 0);
    if (rc) return rc;
    if (p.kind == WEIR_TPX3_MSG_IMAGE) {
        *first = p.first_frame;
        *n = p.nrows;
    }
    return WEIR_OK;
}

/* ----------------------------------------------------------------- framer */

typedef struct {
    weir_msg msg; /* a message, or nothing when rc != 0 */
    int rc;
    int fatal; /* the error that broke the framing */
    char *err;
} qentry;

struct weir_tpx3_framer {
    weir_tpx3_framer_opts opts;
    weir_tpx3_framer_stats st;
    uint64_t offset; /* stream offset of the next byte fed */
    /* the wire message being received */
    uint8_t hdr[WEIR_TPX3_HEADER_SIZE];
    size_t hdr_have;
    weir_tpx3_header cur;
    uint64_t cur_off;
    weir_buf *payload;
    size_t payload_have;
    /* protocol state */
    weir_buf *acq_buf; /* the AcquisitionStart header bytes; NULL outside an acquisition */
    weir_tpx3_acq_start acq;
    weir_buf *scan_buf; /* the ScanStart header bytes within a scan */
    uint32_t scan_seq;
    uint64_t scan_frame;
    int in_scan;
    /* output */
    qentry *q;
    size_t qhead, qlen, qcap;
    int broken;      /* the framing is lost: input is ignored */
    int broken_seen; /* ... and next() has returned that error */
    int broken_rc;
    char broken_err[256];
};

int weir_tpx3_framer_new(const weir_tpx3_framer_opts *opts, weir_tpx3_framer **out)
{
    if (!out) return WEIR_EINVAL;
    *out = calloc(1, sizeof **out);
    if (!*out) return WEIR_ENOMEM;
    if (opts) (*out)->opts = *opts;
    if (!(*out)->opts.frames_per_msg) (*out)->opts.frames_per_msg = 1;
    if (!(*out)->opts.max_payload) (*out)->opts.max_payload = DEFAULT_MAX_PAYLOAD;
    return WEIR_OK;
}

static void q_drop(weir_tpx3_framer *f)
{
    for (size_t i = 0; i < f->qlen; i++) {
        qentry *e = &f->q[(f->qhead + i) % f->qcap];
        weir_msg_clear(&e->msg);
        free(e->err);
    }
    f->qhead = f->qlen = 0;
}

void weir_tpx3_framer_reset(weir_tpx3_framer *f)
{
    if (!f) return;
    q_drop(f);
    weir_buf_unref(f->payload);
    weir_buf_unref(f->acq_buf);
    weir_buf_unref(f->scan_buf);
    f->payload = f->acq_buf = f->scan_buf = NULL;
    f->hdr_have = f->payload_have = 0;
    f->in_scan = 0;
    f->broken = 0;
    f->broken_seen = 0;
    f->broken_rc = 0;
    f->broken_err[0] = 0;
    f->offset = 0;
}

void weir_tpx3_framer_free(weir_tpx3_framer *f)
{
    if (!f) return;
    weir_tpx3_framer_reset(f);
    free(f->q);
    free(f);
}

/* Queues a message (taken over) or, with rc != 0, an error. */
static int q_push(weir_tpx3_framer *f, weir_msg *m, int rc, const char *err)
{
    if (f->qlen == f->qcap) {
        size_t cap = f->qcap ? 2 * f->qcap : 16;
        qentry *nq = malloc(cap * sizeof *nq);
        if (!nq) return WEIR_ENOMEM;
        for (size_t i = 0; i < f->qlen; i++)
            nq[i] = f->q[(f->qhead + i) % f->qcap];
        free(f->q);
        f->q = nq;
        f->qcap = cap;
        f->qhead = 0;
    }
    qentry *e = &f->q[(f->qhead + f->qlen) % f->qcap];
    memset(e, 0, sizeof *e);
    weir_msg_init(&e->msg);
    if (rc) {
        e->rc = rc;
        e->err = strdup(err ? err : "");
        if (!e->err) return WEIR_ENOMEM;
    } else {
        e->msg = *m;
        weir_msg_init(m);
    }
    f->qlen++;
    return WEIR_OK;
}

__attribute__((format(printf, 3, 4))) static int q_error(weir_tpx3_framer *f, int rc,
                                                         const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int prc = q_push(f, NULL, rc, msg);
    return prc ? prc : WEIR_OK;
}

/* The framing is lost: remember the error; later bytes are ignored. */
static void set_broken(weir_tpx3_framer *f, int rc, const char *err)
{
    f->broken = 1;
    f->broken_rc = rc;
    snprintf(f->broken_err, sizeof f->broken_err, "%s", err);
    weir_buf_unref(f->payload);
    f->payload = NULL;
    f->hdr_have = f->payload_have = 0;
}

static int append_ref(weir_msg *m, weir_buf *b)
{
    weir_buf_ref(b);
    int rc = weir_msg_append(m, b);
    if (rc) weir_buf_unref(b);
    return rc;
}

static int emit_start(weir_tpx3_framer *f, weir_buf *scan_hdr, weir_buf *meta)
{
    weir_msg m;
    weir_msg_init(&m);
    int rc = append_ref(&m, f->acq_buf);
    if (!rc) rc = append_ref(&m, scan_hdr);
    if (!rc && meta) rc = append_ref(&m, meta);
    if (!rc) rc = q_push(f, &m, 0, NULL);
    weir_msg_clear(&m);
    return rc;
}

static int emit_single(weir_tpx3_framer *f, weir_buf *hdr)
{
    weir_msg m;
    weir_msg_init(&m);
    int rc = append_ref(&m, hdr);
    if (!rc) rc = q_push(f, &m, 0, NULL);
    weir_msg_clear(&m);
    return rc;
}

static int emit_chunk(weir_tpx3_framer *f, weir_buf *hdr, weir_buf *payload)
{
    char err[256];
    weir_tpx3_chunk c;
    const weir_tpx3_array_chunk *ch = &f->cur.u.chunk;
    int rc = weir_tpx3_chunk_view(&f->acq, ch, payload, 1, &c, err, sizeof err);
    if (rc) {
        f->st.skipped++;
        return q_error(f, rc, "byte %llu: ArrayChunk dropped: %s", (unsigned long long)f->cur_off,
                       err);
    }
    weir_tpx3_chunk_clear(&c);
    uint32_t per = f->opts.frames_per_msg;
    for (uint32_t r = 0; r < ch->nframes && !rc; r += per) {
        uint32_t n = ch->nframes - r < per ? ch->nframes - r : per;
        weir_buf *rb = weir_buf_new(WEIR_TPX3_RANGE_SIZE);
        if (!rb) return WEIR_ENOMEM;
        uint8_t *o = weir_buf_mutable(rb);
        wr_le(o, f->scan_frame + r, 8);
        wr_le(o + 8, r, 4);
        wr_le(o + 12, n, 4);
        weir_msg m;
        weir_msg_init(&m);
        rc = append_ref(&m, hdr);
        if (!rc) rc = append_ref(&m, payload);
        if (!rc) rc = append_ref(&m, f->acq_buf);
        if (!rc)
            rc = weir_msg_append(&m, rb);
        else
            weir_buf_unref(rb);
        if (!rc) rc = q_push(f, &m, 0, NULL);
        weir_msg_clear(&m);
        if (n < per) break; /* also ends the loop before r + per overflows */
    }
    f->scan_frame += ch->nframes;
    f->st.chunks++;
    f->st.frames += ch->nframes;
    return rc;
}

/* A whole wire message is in (f->cur, f->hdr, f->payload): the state machine. */
static int complete(weir_tpx3_framer *f)
{
    unsigned long long at = (unsigned long long)f->cur_off;
    weir_buf *hb = weir_buf_copy(f->hdr, WEIR_TPX3_HEADER_SIZE);
    weir_buf *pl = f->payload;
    int rc = WEIR_OK;
    f->payload = NULL;
    f->hdr_have = f->payload_have = 0;
    f->st.wire_msgs++;
    if (!hb) {
        weir_buf_unref(pl);
        return WEIR_ENOMEM;
    }
    switch (f->cur.tag) {
    case WEIR_TPX3_ACQ_START:
        if (f->in_scan) {
            rc = q_error(f, WEIR_EFORMAT,
                         "byte %llu: AcquisitionStart inside scan %u, which was never ended", at,
                         f->scan_seq);
            f->in_scan = 0;
        }
        weir_buf_unref(f->acq_buf);
        f->acq_buf = weir_buf_ref(hb);
        f->acq = f->cur.u.acq_start;
        break;
    case WEIR_TPX3_SCAN_START:
        if (!f->acq_buf) {
            f->st.skipped++;
            rc = q_error(f, WEIR_EFORMAT,
                         "byte %llu: ScanStart outside an acquisition (expected AcquisitionStart "
                         "first); skipped",
                         at);
            break;
        }
        if (f->in_scan)
            rc = q_error(f, WEIR_EFORMAT,
                         "byte %llu: ScanStart %u inside scan %u, which was never ended", at,
                         f->cur.u.scan_start.sequence, f->scan_seq);
        if (rc) break; /* out of memory; otherwise the new scan replaces the open one */
        f->in_scan = 1;
        f->scan_seq = f->cur.u.scan_start.sequence;
        f->scan_frame = 0;
        f->st.scans++;
        rc = emit_start(f, hb, pl);
        break;
    case WEIR_TPX3_ARRAY_CHUNK:
        if (!f->in_scan) {
            f->st.skipped++;
            rc = q_error(f, WEIR_EFORMAT,
                         "byte %llu: ArrayChunk outside a scan (expected ScanStart first); "
                         "skipped",
                         at);
            break;
        }
        rc = emit_chunk(f, hb, pl);
        break;
    case WEIR_TPX3_SCAN_END:
        if (!f->in_scan) {
            f->st.skipped++;
            rc = q_error(f, WEIR_EFORMAT, "byte %llu: ScanEnd outside a scan; skipped", at);
            break;
        }
        if (f->cur.u.end.sequence != f->scan_seq) f->st.seq_mismatch++;
        f->in_scan = 0;
        rc = emit_single(f, hb);
        break;
    case WEIR_TPX3_ACQ_END:
        if (!f->acq_buf) {
            f->st.skipped++;
            rc = q_error(f, WEIR_EFORMAT,
                         "byte %llu: AcquisitionEnd outside an acquisition; "
                         "skipped",
                         at);
            break;
        }
        if (f->cur.u.end.sequence != f->acq.sequence) f->st.seq_mismatch++;
        if (f->in_scan) { /* the scan was cancelled: its series ends here */
            f->in_scan = 0;
            rc = emit_single(f, hb);
        }
        weir_buf_unref(f->acq_buf);
        f->acq_buf = NULL;
        break;
    }
    weir_buf_unref(hb);
    weir_buf_unref(pl);
    return rc;
}

/* The 32 header bytes are in: decode and size the payload. */
static int header_done(weir_tpx3_framer *f)
{
    char err[200], msg[256];
    unsigned long long at = (unsigned long long)f->cur_off;
    int rc = weir_tpx3_header_decode(f->hdr, WEIR_TPX3_HEADER_SIZE, &f->cur, err, sizeof err);
    uint64_t size = 0;
    if (!rc && f->cur.tag == WEIR_TPX3_ARRAY_CHUNK) {
        if (!f->acq_buf) {
            rc = WEIR_EFORMAT;
            snprintf(err, sizeof err,
                     "ArrayChunk before any AcquisitionStart: its size depends on the "
                     "acquisition's dtypes, so the stream cannot be followed");
        } else {
            rc = weir_tpx3_chunk_size(&f->acq, &f->cur.u.chunk, 0, &size, err, sizeof err);
        }
    } else if (!rc && f->cur.tag == WEIR_TPX3_SCAN_START) {
        size = f->cur.u.scan_start.metadata_length;
    }
    if (!rc && size > f->opts.max_payload) {
        rc = WEIR_ERANGE;
        snprintf(err, sizeof err, "%s announces %llu payload bytes, more than the limit %llu",
                 weir_tpx3_tag_name(f->cur.tag), (unsigned long long)size,
                 (unsigned long long)f->opts.max_payload);
    }
    if (rc) {
        snprintf(msg, sizeof msg, "TPX3 stream byte %llu: %s", at, err);
        set_broken(f, rc, msg);
        int prc = q_push(f, NULL, rc, msg);
        if (!prc) f->q[(f->qhead + f->qlen - 1) % f->qcap].fatal = 1;
        return prc;
    }
    if (size) {
        f->payload = weir_buf_new((size_t)size);
        if (!f->payload) return WEIR_ENOMEM;
    }
    f->hdr_have = WEIR_TPX3_HEADER_SIZE;
    f->payload_have = 0;
    return size ? WEIR_OK : complete(f);
}

int weir_tpx3_framer_feed(weir_tpx3_framer *f, const void *data, size_t len)
{
    if (!f || (!data && len)) return WEIR_EINVAL;
    const uint8_t *p = data;
    f->st.bytes += len;
    while (len && !f->broken) {
        if (f->hdr_have < WEIR_TPX3_HEADER_SIZE) {
            if (!f->hdr_have) f->cur_off = f->offset;
            size_t n = WEIR_TPX3_HEADER_SIZE - f->hdr_have;
            if (n > len) n = len;
            memcpy(f->hdr + f->hdr_have, p, n);
            f->hdr_have += n;
            f->offset += n;
            p += n;
            len -= n;
            if (f->hdr_have == WEIR_TPX3_HEADER_SIZE) {
                f->hdr_have = 0; /* header_done sets it again while a payload follows */
                int rc = header_done(f);
                if (rc) return rc;
            }
            continue;
        }
        size_t need = weir_buf_size(f->payload) - f->payload_have;
        size_t n = need < len ? need : len;
        memcpy(weir_buf_mutable(f->payload) + f->payload_have, p, n);
        f->payload_have += n;
        f->offset += n;
        p += n;
        len -= n;
        if (f->payload_have == weir_buf_size(f->payload)) {
            int rc = complete(f);
            if (rc) return rc;
        }
    }
    return WEIR_OK;
}

size_t weir_tpx3_framer_pending(const weir_tpx3_framer *f)
{
    if (!f) return 0;
    return f->hdr_have < WEIR_TPX3_HEADER_SIZE ? f->hdr_have
                                               : WEIR_TPX3_HEADER_SIZE + f->payload_have;
}

int weir_tpx3_framer_next(weir_tpx3_framer *f, weir_msg *out, char *err, size_t errlen)
{
    if (!f || !out) return WEIR_EINVAL;
    if (f->qlen) {
        qentry e = f->q[f->qhead];
        f->qhead = (f->qhead + 1) % f->qcap;
        f->qlen--;
        if (e.rc) {
            if (e.fatal) f->broken_seen = 1;
            fail(err, errlen, e.rc, "%s", e.err);
            free(e.err);
            return e.rc;
        }
        *out = e.msg;
        return WEIR_OK;
    }
    if (f->broken) return fail(err, errlen, f->broken_rc, "%s", f->broken_err);
    return fail(err, errlen, WEIR_ETRUNCATED,
                "TPX3 stream byte %llu: %zu bytes of the next message so far",
                (unsigned long long)f->offset, weir_tpx3_framer_pending(f));
}

int weir_tpx3_framer_broken(const weir_tpx3_framer *f)
{
    return f ? f->broken_seen : 0;
}

int weir_tpx3_framer_in_scan(const weir_tpx3_framer *f)
{
    return f ? f->in_scan : 0;
}

const weir_tpx3_framer_stats *weir_tpx3_framer_stats_get(const weir_tpx3_framer *f)
{
    return f ? &f->st : NULL;
}

/* ----------------------------------------------------------------- reader */

struct weir_tpx3_reader {
    weir_bufreader b; /* first: see bufreader.h */
    int has_acq;
    weir_tpx3_acq_start acq;
};

void weir_tpx3_item_clear(weir_tpx3_item *it)
{
    if (!it) return;
    weir_buf_unref(it->wire);
    memset(it, 0, sizeof *it);
}

int weir_tpx3_reader_new(weir_buf *buf, const char *name, weir_tpx3_reader **out)
{
    return weir_bufreader_new(sizeof **out, buf, name, (void **)out);
}

int weir_tpx3_reader_open(const char *path, weir_tpx3_reader **out, char *err, size_t errlen)
{
    return weir_bufreader_open(sizeof **out, path, (void **)out, err, errlen);
}

void weir_tpx3_reader_rewind(weir_tpx3_reader *r)
{
    if (!r) return;
    r->b.pos = 0;
    r->b.index = 0;
    r->has_acq = 0;
}

void weir_tpx3_reader_free(weir_tpx3_reader *r)
{
    weir_bufreader_free(r);
}

int weir_tpx3_reader_next(weir_tpx3_reader *r, int validate, weir_tpx3_item *it, int *eof,
                          char *err, size_t errlen)
{
    char e[200];
    if (!r || !it || !eof) return WEIR_EINVAL;
    memset(it, 0, sizeof *it);
    *eof = 0;
    const uint8_t *d = weir_buf_data(r->b.buf);
    size_t size = weir_buf_size(r->b.buf), left = size - r->b.pos;
    if (!left) {
        *eof = 1;
        return WEIR_OK;
    }
    weir_tpx3_header h;
    int rc = weir_tpx3_header_decode(d + r->b.pos, left, &h, e, sizeof e);
    if (rc)
        return fail(err, errlen, rc, "%s: message %llu at byte %zu: %s", r->b.name,
                    (unsigned long long)r->b.index, r->b.pos, e);
    uint64_t pl = 0;
    if (h.tag == WEIR_TPX3_ARRAY_CHUNK) {
        if (!r->has_acq)
            return fail(err, errlen, WEIR_EFORMAT,
                        "%s: byte %zu: ArrayChunk before any AcquisitionStart (its size "
                        "depends on the acquisition's dtypes)",
                        r->b.name, r->b.pos);
        if ((rc = weir_tpx3_chunk_size(&r->acq, &h.u.chunk, r->b.pos, &pl, e, sizeof e)))
            return fail(err, errlen, rc, "%s: %s", r->b.name, e);
    } else if (h.tag == WEIR_TPX3_SCAN_START) {
        pl = h.u.scan_start.metadata_length;
    }
    if (pl > left - WEIR_TPX3_HEADER_SIZE)
        return fail(err, errlen, WEIR_ETRUNCATED,
                    "%s: byte %zu: %s cut short: it needs %llu payload bytes, %zu are left",
                    r->b.name, r->b.pos, weir_tpx3_tag_name(h.tag), (unsigned long long)pl,
                    left - WEIR_TPX3_HEADER_SIZE);
    size_t total = WEIR_TPX3_HEADER_SIZE + (size_t)pl;
    if (h.tag == WEIR_TPX3_ARRAY_CHUNK && validate) {
        weir_buf *pv = weir_buf_view(r->b.buf, r->b.pos + WEIR_TPX3_HEADER_SIZE, (size_t)pl);
        weir_tpx3_chunk c;
        if (!pv) return WEIR_ENOMEM;
        rc = weir_tpx3_chunk_view(&r->acq, &h.u.chunk, pv, 1, &c, e, sizeof e);
        weir_buf_unref(pv);
        if (rc)
            return fail(err, errlen, rc, "%s: ArrayChunk at byte %zu: %s", r->b.name, r->b.pos, e);
        weir_tpx3_chunk_clear(&c);
    }
    it->wire = weir_buf_view(r->b.buf, r->b.pos, total);
    if (!it->wire) return WEIR_ENOMEM;
    it->hdr = h;
    it->offset = r->b.pos;
    it->size = total;
    it->index = r->b.index++;
    if (h.tag == WEIR_TPX3_ACQ_START) {
        r->acq = h.u.acq_start;
        r->has_acq = 1;
    }
    r->b.pos += total;
    return WEIR_OK;
}

/* ----------------------------------------------------------------- writer */

struct weir_tpx3_writer {
    FILE *fp;
    int failed;
};

int weir_tpx3_writer_open(const char *path, weir_tpx3_writer **out, char *err, size_t errlen)
{
    if (!path || !out) return WEIR_EINVAL;
    *out = calloc(1, sizeof **out);
    if (!*out) return WEIR_ENOMEM;
    (*out)->fp = fopen(path, "wb");
    if (!(*out)->fp) {
        free(*out);
        *out = NULL;
        return fail(err, errlen, WEIR_EIO, "%s: cannot create", path);
    }
    return WEIR_OK;
}

int weir_tpx3_writer_write(weir_tpx3_writer *w, const void *data, size_t len)
{
    if (!w || (!data && len)) return WEIR_EINVAL;
    if (len && fwrite(data, 1, len, w->fp) != len) {
        w->failed = 1;
        return WEIR_EIO;
    }
    return WEIR_OK;
}

int weir_tpx3_writer_control(weir_tpx3_writer *w, const weir_tpx3_header *h, const void *metadata,
                             size_t metadata_len)
{
    weir_buf *b;
    if (!w) return WEIR_EINVAL;
    int rc = weir_tpx3_control_encode(h, metadata, metadata_len, &b);
    if (rc) return rc;
    rc = weir_tpx3_writer_write(w, weir_buf_data(b), weir_buf_size(b));
    weir_buf_unref(b);
    return rc;
}

int weir_tpx3_writer_close(weir_tpx3_writer *w)
{
    if (!w) return WEIR_EINVAL;
    int bad = w->failed;
    if (fclose(w->fp) != 0) bad = 1;
    free(w);
    return bad ? WEIR_EIO : WEIR_OK;
}

/* -------------------------------------------------------------- synthetic */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static int bytes_add(bytes *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) return WEIR_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return WEIR_OK;
}

static int bytes_add_buf(bytes *b, weir_buf *x)
{
    int rc = bytes_add(b, weir_buf_data(x), weir_buf_size(x));
    weir_buf_unref(x);
    return rc;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void release_free(void *opaque, void *data, size_t size)
{
    (void)opaque;
    (void)size;
    free(data);
}

int weir_tpx3_synth(const weir_tpx3_synth_opts *o, weir_buf **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!o || !out || !o->frames_per_chunk || !o->sig_h || !o->sig_w) return WEIR_EINVAL;
    size_t npix = (size_t)o->sig_h * o->sig_w;
    uint32_t hits = o->max_hits < npix ? o->max_hits : (uint32_t)npix;
    uint64_t seed = o->seed;
    bytes b = {0};
    weir_buf *x = NULL;
    uint64_t *indptr = malloc(((size_t)o->frames_per_chunk + 1) * sizeof *indptr);
    size_t cap = (size_t)o->frames_per_chunk * hits;
    uint64_t *ind = malloc((cap ? cap : 1) * sizeof *ind);
    uint64_t *val = malloc((cap ? cap : 1) * sizeof *val);
    uint8_t *mark = calloc(npix, 1);
    int rc = WEIR_ENOMEM;
    if (!indptr || !ind || !val || !mark) goto done;
    weir_tpx3_header h;
    int square = (uint64_t)o->nav_h * o->nav_w == o->nframes && o->nframes;
    weir_tpx3_acq_start_init(&h, WEIR_TPX3_FORMAT_CSR, square ? o->nav_h : 1,
                             square ? o->nav_w : (uint16_t)(o->nframes > 65535 ? 0 : o->nframes),
                             o->indptr_dtype, o->sig_h, o->sig_w, o->indices_dtype, 1);
    weir_tpx3_acq_start acq = h.u.acq_start;
    if ((rc = weir_tpx3_control_encode(&h, NULL, 0, &x)) || (rc = bytes_add_buf(&b, x))) goto done;
    weir_tpx3_scan_start_init(&h, 1, 0);
    if ((rc = weir_tpx3_control_encode(&h, NULL, 0, &x)) || (rc = bytes_add_buf(&b, x))) goto done;
    for (uint32_t f0 = 0; f0 < o->nframes; f0 += o->frames_per_chunk) {
        uint32_t n = o->nframes - f0 < o->frames_per_chunk ? o->nframes - f0 : o->frames_per_chunk;
        size_t nnz = 0;
        indptr[0] = 0;
        for (uint32_t r = 0; r < n; r++) {
            uint32_t k = hits ? (uint32_t)(splitmix(&seed) % (hits + 1)) : 0;
            for (uint32_t j = 0; j < k; j++)
                mark[splitmix(&seed) % npix] = 1;
            for (size_t p = 0; p < npix; p++) /* sorted, unique indices */
                if (mark[p]) {
                    mark[p] = 0;
                    ind[nnz] = p;
                    val[nnz++] = 1 + splitmix(&seed) % (o->max_value ? o->max_value : 1);
                }
            indptr[r + 1] = nnz;
        }
        if ((rc = weir_tpx3_chunk_encode(&acq, o->value_dtype, n, indptr, ind, val, o->align, &x,
                                         err, errlen)) ||
            (rc = bytes_add_buf(&b, x)))
            goto done;
    }
    weir_tpx3_end_init(&h, WEIR_TPX3_SCAN_END, 1);
    if ((rc = weir_tpx3_control_encode(&h, NULL, 0, &x)) || (rc = bytes_add_buf(&b, x))) goto done;
    weir_tpx3_end_init(&h, WEIR_TPX3_ACQ_END, 1);
    if ((rc = weir_tpx3_control_encode(&h, NULL, 0, &x)) || (rc = bytes_add_buf(&b, x))) goto done;
    *out = weir_buf_wrap(b.p, b.len, release_free, NULL);
    if (!*out) {
        rc = WEIR_ENOMEM;
        goto done;
    }
    b.p = NULL;
    rc = WEIR_OK;
done:
    free(b.p);
    free(indptr);
    free(ind);
    free(val);
    free(mark);
    return rc;
}
