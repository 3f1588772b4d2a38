/* cbors.c — dranspose .cbors captures: reader and writer (include/weir/cbors.h).
 *
 * Reading. The whole file is mapped (or, for gzip, inflated into one heap
 * buffer) and walked item by item. The walker is a tiny tokenizer on top of
 * libcbor's streaming decoder: cbor_stream_decode() decodes exactly one head
 * (plus the payload of a definite string) per call, reports how many bytes it
 * consumed and hands us a pointer into the input for strings. A fixed-depth
 * recursive-descent parser over those tokens checks the dranspose schema
 * (reference/dranspose.md §4) and builds the event; byte strings become
 * weir_buf views into the file buffer, so frames are never copied (only the
 * rare indefinite-length byte strings are gathered into a fresh buffer).
 * Because every token knows its offset, each error names the file, the
 * offset of the offending element and what was expected. An item is parsed
 * completely before it is handed out, so a bad item never yields a partial
 * event and everything before it has been delivered; the reader then stays on
 * the bad item (errors are sticky).
 *
 * Writing. Heads come from libcbor's cbor_encode_* helpers, which emit the
 * shortest form exactly as cbor2 does, so output is byte-identical to
 * dranspose's dumper. Items are streamed to a sink (counter, memory, stdio or
 * gzFile) so large frames go straight from their buffers to the file. */
#include "weir/cbors.h"

#include "weir/error.h"

#include <cbor.h>
#include <zlib.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_SELF_DESCRIBE 55799u
#define TAG_IWM 42877u    /* InternalWorkerMessage */
#define TAG_STREAM 42878u /* StreamData */
#define TAG_DATETIME 0u
#define TAG_EPOCH 1u
#define ERR_LEN 512

struct weir_cbors_reader {
    weir_buf *buf; /* the mapped file or the inflated gzip content */
    const uint8_t *data;
    size_t size;
    size_t pos; /* offset of the next item */
    uint64_t items;
    weir_cbors_kind kind;
    int err_code; /* sticky: non-zero once an item was found bad */
    char *name;
    char err[ERR_LEN];
};

/* ---------------------------------------------------------------------------
 * Tokens: one CBOR head per token, from libcbor's streaming callbacks. */

enum tok_kind {
    TK_UINT,
    TK_NEGINT,
    TK_BSTR,
    TK_TSTR,
    TK_BSTR_INDEF,
    TK_TSTR_INDEF,
    TK_ARRAY,
    TK_ARRAY_INDEF,
    TK_MAP,
    TK_MAP_INDEF,
    TK_TAG,
    TK_FLOAT,
    TK_BOOL,
    TK_NULL,
    TK_UNDEF,
    TK_BREAK
};

struct tok {
    enum tok_kind kind;
    uint64_t u; /* uint value, -1-value for negint, length, tag number */
    double f;
    const uint8_t *ptr; /* definite string payload */
    size_t len;
    size_t off; /* offset of the head in the file */
};

static void tok_set(void *ctx, enum tok_kind k, uint64_t u)
{
    struct tok *t = ctx;
    t->kind = k;
    t->u = u;
}

static void cb_uint8(void *c, uint8_t v)
{
    tok_set(c, TK_UINT, v);
}
static void cb_uint16(void *c, uint16_t v)
{
    tok_set(c, TK_UINT, v);
}
static void cb_uint32(void *c, uint32_t v)
{
    tok_set(c, TK_UINT, v);
}
static void cb_uint64(void *c, uint64_t v)
{
    tok_set(c, TK_UINT, v);
}
static void cb_negint8(void *c, uint8_t v)
{
    tok_set(c, TK_NEGINT, v);
}
static void cb_negint16(void *c, uint16_t v)
{
    tok_set(c, TK_NEGINT, v);
}
static void cb_negint32(void *c, uint32_t v)
{
    tok_set(c, TK_NEGINT, v);
}
static void cb_negint64(void *c, uint64_t v)
{
    tok_set(c, TK_NEGINT, v);
}
static void cb_bstr(void *c, cbor_data p, size_t n)
{
    struct tok *t = c;
    tok_set(c, TK_BSTR, n);
    t->ptr = p;
    t->len = n;
}
static void cb_tstr(void *c, cbor_data p, size_t n)
{
    struct tok *t = c;
    tok_set(c, TK_TSTR, n);
    t->ptr = p;
    t->len = n;
}
static void cb_bstr_indef(void *c)
{
    tok_set(c, TK_BSTR_INDEF, 0);
}
static void cb_tstr_indef(void *c)
{
    tok_set(c, TK_TSTR_INDEF, 0);
}
static void cb_array(void *c, size_t n)
{
    tok_set(c, TK_ARRAY, n);
}
static void cb_array_indef(void *c)
{
    tok_set(c, TK_ARRAY_INDEF, 0);
}
static void cb_map(void *c, size_t n)
{
    tok_set(c, TK_MAP, n);
}
static void cb_map_indef(void *c)
{
    tok_set(c, TK_MAP_INDEF, 0);
}
static void cb_tag(void *c, uint64_t v)
{
    tok_set(c, TK_TAG, v);
}
static void cb_float(void *c, float v)
{
    struct tok *t = c;
    tok_set(c, TK_FLOAT, 0);
    t->f = v;
}
static void cb_double(void *c, double v)
{
    struct tok *t = c;
    tok_set(c, TK_FLOAT, 0);
    t->f = v;
}
static void cb_bool(void *c, bool v)
{
    tok_set(c, TK_BOOL, v);
}
static void cb_null(void *c)
{
    tok_set(c, TK_NULL, 0);
}
static void cb_undef(void *c)
{
    tok_set(c, TK_UNDEF, 0);
}
static void cb_break(void *c)
{
    tok_set(c, TK_BREAK, 0);
}

/* libcbor's field names are easy to swap (byte_string is the definite one,
 * byte_string_start the indefinite one), hence designated initialisers. */
static const struct cbor_callbacks tok_callbacks = {
    .uint8 = cb_uint8,
    .uint16 = cb_uint16,
    .uint32 = cb_uint32,
    .uint64 = cb_uint64,
    .negint8 = cb_negint8,
    .negint16 = cb_negint16,
    .negint32 = cb_negint32,
    .negint64 = cb_negint64,
    .byte_string = cb_bstr,
    .byte_string_start = cb_bstr_indef,
    .string = cb_tstr,
    .string_start = cb_tstr_indef,
    .array_start = cb_array,
    .indef_array_start = cb_array_indef,
    .map_start = cb_map,
    .indef_map_start = cb_map_indef,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .boolean = cb_bool,
    .null = cb_null,
    .undefined = cb_undef,
    .indef_break = cb_break,
};

static const char *describe(const struct tok *t, char *buf, size_t n)
{
    switch (t->kind) {
    case TK_UINT:
        snprintf(buf, n, "unsigned integer %" PRIu64, t->u);
        break;
    case TK_NEGINT:
        snprintf(buf, n, "negative integer");
        break;
    case TK_BSTR:
        snprintf(buf, n, "byte string");
        break;
    case TK_TSTR:
        snprintf(buf, n, "text string");
        break;
    case TK_BSTR_INDEF:
        snprintf(buf, n, "indefinite-length byte string");
        break;
    case TK_TSTR_INDEF:
        snprintf(buf, n, "indefinite-length text string");
        break;
    case TK_ARRAY:
        snprintf(buf, n, "array of %" PRIu64 " elements", t->u);
        break;
    case TK_ARRAY_INDEF:
        snprintf(buf, n, "indefinite-length array");
        break;
    case TK_MAP:
        snprintf(buf, n, "map of %" PRIu64 " entries", t->u);
        break;
    case TK_MAP_INDEF:
        snprintf(buf, n, "indefinite-length map");
        break;
    case TK_TAG:
        snprintf(buf, n, "tag %" PRIu64, t->u);
        break;
    case TK_FLOAT:
        snprintf(buf, n, "float");
        break;
    case TK_BOOL:
        snprintf(buf, n, "boolean");
        break;
    case TK_NULL:
        snprintf(buf, n, "null");
        break;
    case TK_UNDEF:
        snprintf(buf, n, "undefined");
        break;
    case TK_BREAK:
        snprintf(buf, n, "break (0xff)");
        break;
    }
    return buf;
}

/* ---------------------------------------------------------------------------
 * Errors: every message starts with the reader's name. */

static int failf(weir_cbors_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(weir_cbors_reader *r, int code, const char *fmt, ...)
{
    int n = snprintf(r->err, sizeof r->err, "%s: ", r->name);
    if (n < 0 || (size_t)n >= sizeof r->err) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static int fail_expected(weir_cbors_reader *r, const struct tok *t, const char *what)
{
    char d[64];
    /* A break is only valid where an indefinite container may end; anywhere
     * else the CBOR itself is malformed, not just the schema. */
    if (t->kind == TK_BREAK)
        return failf(r, WEIR_ECBOR,
                     "offset %zu: malformed CBOR: unexpected break (0xff) where %s was expected",
                     t->off, what);
    return failf(r, WEIR_EFORMAT, "offset %zu: expected %s, found %s", t->off, what,
                 describe(t, d, sizeof d));
}

/* ---------------------------------------------------------------------------
 * The walker: a cursor inside one item. */

struct walk {
    weir_cbors_reader *r;
    size_t pos;
    size_t item; /* offset of the item being parsed, for truncation messages */
};

static int next_tok(struct walk *w, struct tok *t)
{
    weir_cbors_reader *r = w->r;
    memset(t, 0, sizeof *t);
    t->off = w->pos;
    if (w->pos >= r->size)
        return failf(r, WEIR_ETRUNCATED, "truncated item at offset %zu (file ends at %zu)", w->item,
                     r->size);
    struct cbor_decoder_result res =
        cbor_stream_decode(r->data + w->pos, r->size - w->pos, &tok_callbacks, t);
    switch (res.status) {
    case CBOR_DECODER_FINISHED:
        w->pos += res.read;
        return WEIR_OK;
    case CBOR_DECODER_NEDATA:
        return failf(r, WEIR_ETRUNCATED, "truncated item at offset %zu (file ends at %zu)", w->item,
                     r->size);
    default:
        return failf(r, WEIR_ECBOR,
                     "offset %zu: malformed CBOR: invalid or reserved initial byte 0x%02x "
                     "(in the item at offset %zu)",
                     w->pos, r->data[w->pos], w->item);
    }
}

static int peek_tok(struct walk *w, struct tok *t)
{
    size_t save = w->pos;
    int rc = next_tok(w, t);
    w->pos = save;
    return rc;
}

/* An array or map being walked: definite ones count down, indefinite ones end
 * at a break token. */
struct cont {
    int indef;
    uint64_t left;
};

static void cont_init(struct cont *c, const struct tok *t)
{
    c->indef = t->kind == TK_ARRAY_INDEF || t->kind == TK_MAP_INDEF;
    c->left = t->u;
}

static int cont_next(struct walk *w, struct cont *c, int *more)
{
    int rc = WEIR_OK;
    *more = 0;
    if (!c->indef) {
        if (c->left) {
            c->left--;
            *more = 1;
        }
        return WEIR_OK;
    }
    struct tok t;
    if ((rc = peek_tok(w, &t))) return rc;
    if (t.kind == TK_BREAK) return next_tok(w, &t);
    *more = 1;
    return WEIR_OK;
}

/* A break must close an indefinite container that has all its elements. */
static int expect_break(struct walk *w, const char *what)
{
    struct tok t;
    int rc = next_tok(w, &t);
    if (rc) return rc;
    if (t.kind != TK_BREAK) return fail_expected(w->r, &t, what);
    return WEIR_OK;
}

/* Reads a text string (definite, or indefinite made of definite chunks) into
 * a malloc'd C string. NUL bytes are refused: names and typs are C strings. */
static int read_text(struct walk *w, const char *what, char **out)
{
    weir_cbors_reader *r = w->r;
    struct tok t;
    char *s = NULL;
    int rc;
    *out = NULL;
    if ((rc = next_tok(w, &t))) goto done;
    if (t.kind == TK_TSTR) {
        if (memchr(t.ptr, 0, t.len)) {
            rc = failf(r, WEIR_EFORMAT, "offset %zu: %s contains a NUL byte", t.off, what);
            goto done;
        }
        s = malloc(t.len + 1);
        if (!s) {
            rc = WEIR_ENOMEM;
            goto done;
        }
        memcpy(s, t.ptr, t.len);
        s[t.len] = 0;
    } else if (t.kind == TK_TSTR_INDEF) {
        size_t len = 0;
        s = malloc(1);
        if (!s) {
            rc = WEIR_ENOMEM;
            goto done;
        }
        for (;;) {
            struct tok c;
            if ((rc = next_tok(w, &c))) goto done;
            if (c.kind == TK_BREAK) break;
            if (c.kind != TK_TSTR) {
                char d[64];
                rc = failf(r, WEIR_ECBOR,
                           "offset %zu: malformed CBOR: a chunk of an indefinite-length text "
                           "string must be a definite text string, found %s",
                           c.off, describe(&c, d, sizeof d));
                goto done;
            }
            if (memchr(c.ptr, 0, c.len)) {
                rc = failf(r, WEIR_EFORMAT, "offset %zu: %s contains a NUL byte", c.off, what);
                goto done;
            }
            char *g = realloc(s, len + c.len + 1);
            if (!g) {
                rc = WEIR_ENOMEM;
                goto done;
            }
            s = g;
            memcpy(s + len, c.ptr, c.len);
            len += c.len;
        }
        s[len] = 0;
    } else {
        rc = fail_expected(r, &t, what);
        goto done;
    }
    *out = s;
    s = NULL;
done:
    free(s);
    return rc;
}

/* Reads a byte string as a view into the file buffer; an indefinite-length
 * one (never written by cbor2) is gathered into a fresh buffer in two passes:
 * sum the chunk lengths, then copy. */
static int read_bytes(struct walk *w, const char *what, weir_buf **out)
{
    weir_cbors_reader *r = w->r;
    struct tok t;
    int rc;
    *out = NULL;
    if ((rc = next_tok(w, &t))) return rc;
    if (t.kind == TK_BSTR) {
        *out = weir_buf_view(r->buf, (size_t)(t.ptr - r->data), t.len);
        return *out ? WEIR_OK : WEIR_ENOMEM;
    }
    if (t.kind != TK_BSTR_INDEF) return fail_expected(r, &t, what);

    size_t start = w->pos, total = 0;
    for (;;) {
        struct tok c;
        if ((rc = next_tok(w, &c))) return rc;
        if (c.kind == TK_BREAK) break;
        if (c.kind != TK_BSTR) {
            char d[64];
            return failf(r, WEIR_ECBOR,
                         "offset %zu: malformed CBOR: a chunk of an indefinite-length byte string "
                         "must be a definite byte string, found %s",
                         c.off, describe(&c, d, sizeof d));
        }
        total += c.len; /* cannot overflow: every chunk lies inside the file */
    }
    weir_buf *b = weir_buf_new(total);
    if (!b) return WEIR_ENOMEM;
    uint8_t *dst = weir_buf_mutable(b);
    w->pos = start;
    for (;;) {
        struct tok c;
        if ((rc = next_tok(w, &c))) break; /* cannot fail: the first pass succeeded */
        if (c.kind == TK_BREAK) break;
        memcpy(dst, c.ptr, c.len);
        dst += c.len;
    }
    if (rc) {
        weir_buf_unref(b);
        return rc;
    }
    *out = b;
    return WEIR_OK;
}

/* Reads the first token of an item, stepping over any self-describe tags
 * (55799), which cbor2 writes on every dump item and strips on read. */
static int item_head(struct walk *w, struct tok *t)
{
    int rc;
    do {
        if ((rc = next_tok(w, t))) return rc;
    } while (t->kind == TK_TAG && t->u == TAG_SELF_DESCRIBE);
    return WEIR_OK;
}

/* ---------------------------------------------------------------------------
 * created_at */

/* Formats seconds + microseconds since the epoch as cbor2 does
 * (datetime.isoformat() with "Z"); years are kept within 1..9999 like Python. */
static int format_time(int64_t secs, long usec, char *buf, size_t len)
{
    if (secs < -62135596800LL || secs > 253402300799LL) return WEIR_ERANGE;
    time_t tt = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) return WEIR_ERANGE;
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= len) return WEIR_ERANGE;
    int m = usec ? snprintf(buf + n, len - (size_t)n, ".%06ldZ", usec)
                 : snprintf(buf + n, len - (size_t)n, "Z");
    if (m < 0 || (size_t)m >= len - (size_t)n) return WEIR_ERANGE;
    return WEIR_OK;
}

/* created_at: tag 0 + text as written by dranspose; tag 1 + epoch number
 * (converted to the same text form); untagged text is accepted too, as
 * pydantic would parse it. */
static int read_created_at(struct walk *w, char **out)
{
    weir_cbors_reader *r = w->r;
    static const char what[] = "created_at as tag 0 (date/time text) or tag 1 (epoch seconds)";
    struct tok t;
    int rc;
    *out = NULL;
    if ((rc = peek_tok(w, &t))) return rc;
    if (t.kind == TK_TSTR || t.kind == TK_TSTR_INDEF) return read_text(w, "created_at text", out);
    if (t.kind != TK_TAG || (t.u != TAG_DATETIME && t.u != TAG_EPOCH))
        return fail_expected(r, &t, what);
    if ((rc = next_tok(w, &t))) return rc;
    if (t.u == TAG_DATETIME) return read_text(w, "text string after tag 0 (created_at)", out);

    int64_t secs;
    long usec = 0;
    if ((rc = next_tok(w, &t))) return rc;
    if (t.kind == TK_UINT || t.kind == TK_NEGINT) {
        if (t.u > (uint64_t)INT64_MAX) goto range;
        secs = t.kind == TK_UINT ? (int64_t)t.u : -1 - (int64_t)t.u;
    } else if (t.kind == TK_FLOAT) {
        if (!isfinite(t.f) || t.f < -1e12 || t.f > 1e12) goto range;
        double fl = floor(t.f);
        secs = (int64_t)fl;
        usec = lround((t.f - fl) * 1e6);
        if (usec >= 1000000) {
            secs++;
            usec -= 1000000;
        }
    } else {
        return fail_expected(r, &t, "a number of epoch seconds after tag 1 (created_at)");
    }
    char buf[40];
    if (format_time(secs, usec, buf, sizeof buf)) goto range;
    *out = strdup(buf);
    return *out ? WEIR_OK : WEIR_ENOMEM;
range:
    return failf(r, WEIR_EFORMAT, "offset %zu: created_at epoch value is out of range", t.off);
}

/* ---------------------------------------------------------------------------
 * Items */

/* One stream entry of the streams map: name => #6.42878([typ, [*bstr]]). */
static int parse_stream(struct walk *w, weir_event *ev)
{
    weir_cbors_reader *r = w->r;
    char *name = NULL, *typ = NULL;
    char what[160];
    weir_msg msg;
    struct tok t;
    struct cont c;
    int rc, more;
    weir_msg_init(&msg);

    size_t key_off = w->pos;
    if ((rc = read_text(w, "text string (stream name)", &name))) goto done;
    if ((rc = next_tok(w, &t))) goto done;
    if (t.kind != TK_TAG || t.u != TAG_STREAM) {
        snprintf(what, sizeof what, "tag 42878 (StreamData) for stream '%s'", name);
        rc = fail_expected(r, &t, what);
        goto done;
    }
    if ((rc = next_tok(w, &t))) goto done;
    if (!(t.kind == TK_ARRAY && t.u == 2) && t.kind != TK_ARRAY_INDEF) {
        snprintf(what, sizeof what, "array [typ, frames] of 2 elements for stream '%s'", name);
        rc = fail_expected(r, &t, what);
        goto done;
    }
    int indef = t.kind == TK_ARRAY_INDEF;
    snprintf(what, sizeof what, "text string (typ) for stream '%s'", name);
    if ((rc = read_text(w, what, &typ))) goto done;

    if ((rc = next_tok(w, &t))) goto done;
    if (t.kind != TK_ARRAY && t.kind != TK_ARRAY_INDEF) {
        snprintf(what, sizeof what, "array of byte strings (frames) for stream '%s'", name);
        rc = fail_expected(r, &t, what);
        goto done;
    }
    cont_init(&c, &t);
    for (;;) {
        if ((rc = cont_next(w, &c, &more))) goto done;
        if (!more) break;
        weir_buf *b;
        snprintf(what, sizeof what, "byte string (frame %zu of stream '%s')", msg.nparts, name);
        if ((rc = read_bytes(w, what, &b))) goto done;
        if ((rc = weir_msg_append(&msg, b))) goto done;
    }
    if (indef) {
        snprintf(what, sizeof what, "end (break) of [typ, frames] for stream '%s'", name);
        if ((rc = expect_break(w, what))) goto done;
    }
    rc = weir_event_add_stream(ev, name, typ, &msg);
    if (rc == WEIR_EDUPLICATE)
        rc = failf(r, WEIR_EDUPLICATE,
                   "offset %zu: stream '%s' occurs twice in one item (stream names must be unique)",
                   key_off, name);
done:
    weir_msg_clear(&msg);
    free(name);
    free(typ);
    return rc;
}

static int parse_event(weir_cbors_reader *r, weir_event **out)
{
    struct walk w = {r, r->pos, r->pos};
    weir_event *ev = NULL;
    struct tok t;
    struct cont c;
    int rc, more;
    *out = NULL;

    if ((rc = item_head(&w, &t))) goto fail;
    if (t.kind != TK_TAG || t.u != TAG_IWM) {
        rc = fail_expected(r, &t, "tag 42877 (InternalWorkerMessage)");
        goto fail;
    }
    if ((rc = next_tok(&w, &t))) goto fail;
    if (!(t.kind == TK_ARRAY && (t.u == 2 || t.u == 3)) && t.kind != TK_ARRAY_INDEF) {
        rc = fail_expected(r, &t, "array [event_number, streams, ?created_at] of 2 or 3 elements");
        goto fail;
    }
    int indef = t.kind == TK_ARRAY_INDEF;
    int has_created = t.kind == TK_ARRAY && t.u == 3;

    if ((rc = next_tok(&w, &t))) goto fail;
    if (t.kind != TK_UINT) {
        rc = fail_expected(r, &t, "unsigned integer (event_number)");
        goto fail;
    }
    ev = weir_event_new(t.u);
    if (!ev) {
        rc = WEIR_ENOMEM;
        goto fail;
    }

    if ((rc = next_tok(&w, &t))) goto fail;
    if (t.kind != TK_MAP && t.kind != TK_MAP_INDEF) {
        rc = fail_expected(r, &t, "map (streams)");
        goto fail;
    }
    cont_init(&c, &t);
    for (;;) {
        if ((rc = cont_next(&w, &c, &more))) goto fail;
        if (!more) break;
        if ((rc = parse_stream(&w, ev))) goto fail;
    }

    if (indef) {
        if ((rc = peek_tok(&w, &t))) goto fail;
        has_created = t.kind != TK_BREAK;
    }
    if (has_created && (rc = read_created_at(&w, &ev->created_at))) goto fail;
    if (indef && (rc = expect_break(&w, "end (break) of the item array after at most 3 elements")))
        goto fail;

    r->pos = w.pos;
    *out = ev;
    return WEIR_OK;
fail:
    weir_event_free(ev);
    return rc;
}

static int parse_raw(weir_cbors_reader *r, weir_msg *m)
{
    struct walk w = {r, r->pos, r->pos};
    struct tok t;
    struct cont c;
    int rc, more;
    char what[96];

    if ((rc = item_head(&w, &t))) goto fail;
    if (t.kind != TK_ARRAY && t.kind != TK_ARRAY_INDEF) {
        rc = fail_expected(r, &t, "array of byte strings (raw capture message)");
        goto fail;
    }
    cont_init(&c, &t);
    for (;;) {
        if ((rc = cont_next(&w, &c, &more))) goto fail;
        if (!more) break;
        weir_buf *b;
        snprintf(what, sizeof what, "byte string (frame %zu of the message)", m->nparts);
        if ((rc = read_bytes(&w, what, &b))) goto fail;
        if ((rc = weir_msg_append(m, b))) goto fail;
    }
    r->pos = w.pos;
    return WEIR_OK;
fail:
    weir_msg_clear(m);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Opening */

static void release_heap(void *opaque, void *data, size_t size)
{
    (void)opaque;
    (void)size;
    free(data);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Inflates a whole gzip (or zlib) stream, including the several members that
 * appending to a .gz file produces; trailing NUL padding is ignored as Python's
 * gzip module does. */
static int inflate_all(weir_cbors_reader *r, const uint8_t *in, size_t n, weir_buf **out)
{
    z_stream zs;
    uint8_t *dst = NULL;
    size_t cap = n < SIZE_MAX / 4 ? n * 4 : n, len = 0, in_off = 0;
    int rc, zrc;
    *out = NULL;
    if (cap < 4096) cap = 4096;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return WEIR_ENOMEM; /* 32: gzip or zlib header */
    dst = malloc(cap);
    if (!dst) {
        rc = WEIR_ENOMEM;
        goto end_inflate;
    }
    for (;;) {
        if (zs.avail_in == 0 && in_off < n) {
            size_t chunk = n - in_off < UINT_MAX ? n - in_off : UINT_MAX;
            zs.next_in = (Bytef *)(uintptr_t)(in + in_off);
            zs.avail_in = (uInt)chunk;
            in_off += chunk;
        }
        if (len == cap) {
            size_t ncap = cap * 2;
            uint8_t *g = ncap > cap ? realloc(dst, ncap) : NULL;
            if (!g) {
                rc = WEIR_ENOMEM;
                goto end_inflate;
            }
            dst = g;
            cap = ncap;
        }
        size_t room = cap - len < UINT_MAX ? cap - len : UINT_MAX;
        zs.next_out = dst + len;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        len += room - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            size_t rest_off = in_off - zs.avail_in;
            if (all_zero(in + rest_off, n - rest_off)) break;
            if (inflateReset(&zs) != Z_OK) {
                rc = WEIR_ENOMEM;
                goto end_inflate;
            }
            continue;
        }
        if (zrc == Z_OK) continue;
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0 && in_off == n) {
            rc = failf(r, WEIR_EZLIB, "gzip stream ends early (%zu compressed bytes)", n);
            goto end_inflate;
        }
        if (zrc == Z_BUF_ERROR) continue;
        if (zrc == Z_MEM_ERROR) {
            rc = WEIR_ENOMEM;
            goto end_inflate;
        }
        rc = failf(r, WEIR_EZLIB, "gzip data corrupt near compressed offset %zu: %s",
                   in_off - zs.avail_in, zs.msg ? zs.msg : "inflate failed");
        goto end_inflate;
    }
    *out = weir_buf_wrap(dst, len, release_heap, NULL);
    if (!*out) {
        rc = WEIR_ENOMEM;
        goto end_inflate;
    }
    dst = NULL;
    rc = WEIR_OK;
end_inflate:
    free(dst);
    inflateEnd(&zs);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Detects the kind from the first item without consuming it. */
static int detect_kind(weir_cbors_reader *r)
{
    if (r->size == 0) {
        r->kind = WEIR_CBORS_UNKNOWN;
        return WEIR_OK;
    }
    struct walk w = {r, 0, 0};
    struct tok t;
    int rc = item_head(&w, &t);
    if (rc) return rc;
    if (t.kind == TK_TAG && t.u == TAG_IWM) {
        r->kind = WEIR_CBORS_DUMP;
    } else if (t.kind == TK_ARRAY || t.kind == TK_ARRAY_INDEF) {
        r->kind = WEIR_CBORS_RAW;
    } else {
        return fail_expected(r, &t,
                             "tag 42877 (a dranspose ingester dump) or an array of byte strings "
                             "(a raw capture)");
    }
    return WEIR_OK;
}

/* Takes over buf (one reference). */
static int open_common(weir_buf *buf, const char *name, int gz, weir_cbors_reader **out, char *err,
                       size_t errlen)
{
    weir_cbors_reader *r = NULL;
    int rc;
    *out = NULL;
    if (err && errlen) err[0] = 0;
    r = calloc(1, sizeof *r);
    if (!r) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    r->name = strdup(name ? name : "(buffer)");
    if (!r->name) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    const uint8_t *d = weir_buf_data(buf);
    size_t n = weir_buf_size(buf);
    /* gzip magic 1f 8b can never start a CBOR item (0x1f is reserved). */
    if (gz || (n >= 2 && d[0] == 0x1f && d[1] == 0x8b)) {
        weir_buf *inflated = NULL;
        if (n && (rc = inflate_all(r, d, n, &inflated))) goto fail;
        if (!inflated && !(inflated = weir_buf_wrap(NULL, 0, NULL, NULL))) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        weir_buf_unref(buf);
        buf = inflated;
    }
    r->buf = buf;
    buf = NULL;
    r->data = weir_buf_data(r->buf);
    r->size = weir_buf_size(r->buf);
    if ((rc = detect_kind(r))) goto fail;
    *out = r;
    return WEIR_OK;
fail:
    if (err && errlen) {
        if (r && r->err[0])
            snprintf(err, errlen, "%s", r->err);
        else
            snprintf(err, errlen, "%s: %s", name ? name : "(buffer)", weir_strerror(rc));
    }
    weir_buf_unref(buf);
    weir_cbors_close(r);
    return rc;
}

int weir_cbors_open(const char *path, weir_cbors_reader **out, char *err, size_t errlen)
{
    weir_buf *buf = NULL;
    if (!out || !path) return WEIR_EINVAL;
    *out = NULL;
    int rc = weir_buf_map_file(path, &buf);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path,
                     rc == WEIR_ENOENT ? "no such file" : strerror(errno));
        return rc;
    }
    return open_common(buf, path, ends_with(path, ".gz"), out, err, errlen);
}

int weir_cbors_open_buf(weir_buf *buf, const char *name, weir_cbors_reader **out, char *err,
                        size_t errlen)
{
    if (!out || !buf) return WEIR_EINVAL;
    return open_common(weir_buf_ref(buf), name, 0, out, err, errlen);
}

void weir_cbors_close(weir_cbors_reader *r)
{
    if (!r) return;
    weir_buf_unref(r->buf);
    free(r->name);
    free(r);
}

weir_cbors_kind weir_cbors_kind_of(const weir_cbors_reader *r)
{
    return r->kind;
}

const char *weir_cbors_name(const weir_cbors_reader *r)
{
    return r->name;
}

uint64_t weir_cbors_offset(const weir_cbors_reader *r)
{
    return r->pos;
}

uint64_t weir_cbors_size(const weir_cbors_reader *r)
{
    return r->size;
}

uint64_t weir_cbors_items(const weir_cbors_reader *r)
{
    return r->items;
}

const char *weir_cbors_error(const weir_cbors_reader *r)
{
    return r->err;
}

int weir_cbors_next_event(weir_cbors_reader *r, weir_event **ev)
{
    if (!r || !ev) return WEIR_EINVAL;
    *ev = NULL;
    if (r->err_code) return r->err_code;
    if (r->kind == WEIR_CBORS_RAW)
        return failf(r, WEIR_EFORMAT,
                     "is a raw capture (untagged arrays of byte strings, one per ZMQ message), "
                     "not an ingester dump: read it with weir_cbors_next_raw");
    if (r->pos >= r->size) return WEIR_OK;
    int rc = parse_event(r, ev);
    if (rc) {
        r->err_code = rc;
        return rc;
    }
    r->items++;
    return WEIR_OK;
}

int weir_cbors_next_raw(weir_cbors_reader *r, weir_msg *m, int *eof)
{
    if (!r || !m || !eof || m->nparts) return WEIR_EINVAL;
    *eof = 0;
    if (r->err_code) return r->err_code;
    if (r->kind == WEIR_CBORS_DUMP)
        return failf(r, WEIR_EFORMAT,
                     "is an ingester dump (tag 42877 items), not a raw capture: read it with "
                     "weir_cbors_next_event");
    if (r->pos >= r->size) {
        *eof = 1;
        return WEIR_OK;
    }
    int rc = parse_raw(r, m);
    if (rc) {
        r->err_code = rc;
        return rc;
    }
    r->items++;
    return WEIR_OK;
}

/* ---------------------------------------------------------------------------
 * Writing */

enum sink_kind { SINK_COUNT, SINK_MEM, SINK_FILE, SINK_GZ };

struct sink {
    enum sink_kind kind;
    size_t len; /* bytes emitted so far */
    size_t cap; /* SINK_MEM */
    uint8_t *mem;
    FILE *f;
    gzFile gz;
};

static int sink_put(struct sink *s, const void *p, size_t n)
{
    switch (s->kind) {
    case SINK_COUNT:
        break;
    case SINK_MEM:
        if (n > s->cap - s->len) return WEIR_EINVAL; /* the count pass disagreed */
        if (n) memcpy(s->mem + s->len, p, n);
        break;
    case SINK_FILE:
        if (n && fwrite(p, 1, n, s->f) != n) return WEIR_EIO;
        break;
    case SINK_GZ: {
        const uint8_t *q = p;
        size_t left = n;
        while (left) {
            unsigned chunk = left < (1u << 30) ? (unsigned)left : (1u << 30);
            if (gzwrite(s->gz, q, chunk) != (int)chunk) return WEIR_EIO;
            q += chunk;
            left -= chunk;
        }
        break;
    }
    }
    s->len += n;
    return WEIR_OK;
}

/* Heads: libcbor picks the shortest encoding, as cbor2 does. 9 bytes is the
 * longest head. */
static int put_enc(struct sink *s, size_t n, const unsigned char *b)
{
    return n ? sink_put(s, b, n) : WEIR_EINVAL;
}

static int put_tag(struct sink *s, uint64_t v)
{
    unsigned char b[9];
    return put_enc(s, cbor_encode_tag(v, b, sizeof b), b);
}

static int put_uint(struct sink *s, uint64_t v)
{
    unsigned char b[9];
    return put_enc(s, cbor_encode_uint(v, b, sizeof b), b);
}

static int put_array(struct sink *s, size_t n)
{
    unsigned char b[9];
    return put_enc(s, cbor_encode_array_start(n, b, sizeof b), b);
}

static int put_map(struct sink *s, size_t n)
{
    unsigned char b[9];
    return put_enc(s, cbor_encode_map_start(n, b, sizeof b), b);
}

static int put_text(struct sink *s, const char *str)
{
    unsigned char b[9];
    size_t n = strlen(str);
    int rc = put_enc(s, cbor_encode_string_start(n, b, sizeof b), b);
    return rc ? rc : sink_put(s, str, n);
}

static int put_bytes(struct sink *s, const weir_buf *buf)
{
    unsigned char b[9];
    size_t n = weir_buf_size(buf);
    int rc = put_enc(s, cbor_encode_bytestring_start(n, b, sizeof b), b);
    return rc ? rc : sink_put(s, weir_buf_data(buf), n);
}

static int emit_frames(struct sink *s, const weir_msg *m)
{
    int rc = put_array(s, m->nparts);
    for (size_t i = 0; !rc && i < m->nparts; i++)
        rc = m->parts[i] ? put_bytes(s, m->parts[i]) : WEIR_EINVAL;
    return rc;
}

static int emit_event(struct sink *s, const weir_event *ev, const char *created_at)
{
    int rc;
    if ((rc = put_tag(s, TAG_SELF_DESCRIBE))) return rc;
    if ((rc = put_tag(s, TAG_IWM))) return rc;
    if ((rc = put_array(s, created_at ? 3 : 2))) return rc;
    if ((rc = put_uint(s, ev->number))) return rc;
    if ((rc = put_map(s, ev->nstreams))) return rc;
    for (size_t i = 0; i < ev->nstreams; i++) {
        const weir_stream_packet *p = &ev->streams[i];
        if (!p->name || !p->typ) return WEIR_EINVAL;
        if ((rc = put_text(s, p->name))) return rc;
        if ((rc = put_tag(s, TAG_STREAM))) return rc;
        if ((rc = put_array(s, 2))) return rc;
        if ((rc = put_text(s, p->typ))) return rc;
        if ((rc = emit_frames(s, &p->msg))) return rc;
    }
    if (created_at) {
        if ((rc = put_tag(s, TAG_DATETIME))) return rc;
        if ((rc = put_text(s, created_at))) return rc;
    }
    return WEIR_OK;
}

/* Raw capture items are untagged, as the capture scripts wrote them. */
static int emit_raw(struct sink *s, const weir_msg *m)
{
    return emit_frames(s, m);
}

struct weir_cbors_writer {
    FILE *f;
    gzFile gz;
};

int weir_cbors_writer_open(const char *path, int append, weir_cbors_writer **out)
{
    weir_cbors_writer *w = NULL;
    int rc;
    if (!path || !out) return WEIR_EINVAL;
    *out = NULL;
    w = calloc(1, sizeof *w);
    if (!w) return WEIR_ENOMEM;
    errno = 0;
    if (ends_with(path, ".gz"))
        w->gz = gzopen(path, append ? "ab" : "wb");
    else
        w->f = fopen(path, append ? "ab" : "wb");
    if (!w->gz && !w->f) {
        rc = errno == ENOENT ? WEIR_ENOENT : errno == ENOMEM ? WEIR_ENOMEM : WEIR_EIO;
        goto fail;
    }
    *out = w;
    return WEIR_OK;
fail:
    free(w);
    return rc;
}

static void writer_sink(weir_cbors_writer *w, struct sink *s)
{
    memset(s, 0, sizeof *s);
    s->kind = w->gz ? SINK_GZ : SINK_FILE;
    s->f = w->f;
    s->gz = w->gz;
}

int weir_cbors_write_event(weir_cbors_writer *w, const weir_event *ev, const char *created_at)
{
    struct sink s;
    if (!w || !ev) return WEIR_EINVAL;
    writer_sink(w, &s);
    return emit_event(&s, ev, created_at);
}

int weir_cbors_write_raw(weir_cbors_writer *w, const weir_msg *m)
{
    struct sink s;
    if (!w || !m) return WEIR_EINVAL;
    writer_sink(w, &s);
    return emit_raw(&s, m);
}

int weir_cbors_writer_close(weir_cbors_writer *w)
{
    int rc = WEIR_OK;
    if (!w) return WEIR_OK;
    if (w->gz && gzclose(w->gz) != Z_OK) rc = WEIR_EIO;
    if (w->f && fclose(w->f) != 0) rc = WEIR_EIO;
    free(w);
    return rc;
}

/* Two passes over the same emitter: count, then fill an exact allocation. */
static int encode_mem(const weir_event *ev, const char *created_at, const weir_msg *m,
                      uint8_t **out, size_t *len)
{
    struct sink s;
    int rc;
    if (!out || !len) return WEIR_EINVAL;
    *out = NULL;
    *len = 0;
    memset(&s, 0, sizeof s);
    s.kind = SINK_COUNT;
    if ((rc = ev ? emit_event(&s, ev, created_at) : emit_raw(&s, m))) return rc;
    size_t n = s.len;
    memset(&s, 0, sizeof s);
    s.kind = SINK_MEM;
    s.cap = n;
    s.mem = malloc(n ? n : 1);
    if (!s.mem) return WEIR_ENOMEM;
    if ((rc = ev ? emit_event(&s, ev, created_at) : emit_raw(&s, m))) goto fail;
    *out = s.mem;
    *len = s.len;
    return WEIR_OK;
fail:
    free(s.mem);
    return rc;
}

int weir_cbors_encode_event(const weir_event *ev, const char *created_at, uint8_t **out,
                            size_t *len)
{
    if (!ev) return WEIR_EINVAL;
    return encode_mem(ev, created_at, NULL, out, len);
}

int weir_cbors_encode_raw(const weir_msg *m, uint8_t **out, size_t *len)
{
    if (!m) return WEIR_EINVAL;
    return encode_mem(NULL, NULL, m, out, len);
}

const char *weir_cbors_now(char *buf, size_t len)
{
    struct timespec ts;
    if (!buf || len < 32) return NULL;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return NULL;
    if (format_time((int64_t)ts.tv_sec, ts.tv_nsec / 1000, buf, len)) return NULL;
    return buf;
}
