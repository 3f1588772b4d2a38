/* dectris.c — DECTRIS stream v1 (multipart JSON + binary) and stream v2
 * (CBOR) for EIGER/PILATUS detectors, decode and encode.
 *
 * Both versions parse into one packet: a kind (start / image / end), series
 * and frame numbers, the series geometry from the start message, image
 * channels and auxiliary arrays (weir_dectris_channel: dtype, numpy shape,
 * encoding, the payload as received and, once decoded, a weir_array), plus a
 * JSON view of every scalar field for the accessors. v1 JSON parts are read
 * with cJSON and payloads are zero-copy views of the message frames. v2
 * messages are checked by weir_cbor_guard() and by a nesting-depth walk
 * (libcbor frees items recursively, so a deep input would exhaust the stack)
 * before cbor_load; the decoded item is then owned by one weir_buf, and every
 * byte string is a zero-copy weir_buf holding a reference to it, so arrays
 * outlive the packet safely across threads. Decompression goes through the
 * codecs in bslz4.h (bitshuffle-LZ4 and the HDF5 LZ4 framing) and, for v1's
 * "lz4<" (one raw LZ4 block per frame, as LiberTEM-rs reads it), liblz4.
 * Every declared size is checked against the payload before anything is
 * allocated, and a message's decoded bytes are capped, so a small input
 * cannot ask for gigabytes. The encoders build the same messages from native
 * arrays, for simulators and round-trip tests. */
#include "weir/dectris.h"

#include "core/cbor_guard.h"
#include "weir/bslz4.h"
#include "weir/error.h"

#include <cbor.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <lz4.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest CBOR nesting accepted; DECTRIS messages need 6. */
#define MAX_DEPTH 64
/* More channels than any DECTRIS detector has (2 thresholds + difference). */
#define MAX_CHANNELS 64

static int fail(char *err, size_t errlen, int code, int version, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, int code, int version, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "DECTRIS v%d: ", version);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- JSON helpers -------------------------------------------------------- */

static int json_int(const cJSON *v, int64_t *out)
{
    /* range check first: casting an out-of-range double is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -0x1p63 && v->valuedouble < 0x1p63) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *key, int64_t *out)
{
    return json_int(cJSON_GetObjectItemCaseSensitive(o, key), out);
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *parse_obj(const weir_buf *b)
{
    cJSON *j = cJSON_ParseWithLength((const char *)weir_buf_data(b), weir_buf_size(b));
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

/* Adds item under key, replacing a member of that name; takes item. */
static int attach(cJSON *obj, const char *key, cJSON *item)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    if (src) snprintf(dst, cap, "%s", src);
}

/* ---- MD5 (RFC 1321), for the dimage "hash" ------------------------------- */

static uint32_t rotl32(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}

static void md5_block(uint32_t h[4], const uint8_t *blk, const uint32_t k[64])
{
    static const unsigned char sh[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 |
               (uint32_t)blk[4 * i + 2] << 16 | (uint32_t)blk[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        f += a + k[i] + m[g];
        a = d;
        d = c;
        c = b;
        b += rotl32(f, sh[(i / 16) * 4 + i % 4]);
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

void weir_dectris_md5_hex(const void *data, size_t len, char out[33])
{
    /* The constants are floor(|sin(i + 1)| * 2^32) (RFC 1321 §3.4); double
     * precision gives them exactly. */
    uint32_t k[64];
    for (int i = 0; i < 64; i++)
        k[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
    uint32_t h[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    const uint8_t *p = data;
    size_t full = len / 64 * 64;
    for (size_t off = 0; off < full; off += 64)
        md5_block(h, p + off, k);
    uint8_t tail[128] = {0};
    size_t rest = len - full;
    if (rest) memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    size_t tlen = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 8 + i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < tlen; off += 64)
        md5_block(h, tail + off, k);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        uint8_t byte = (uint8_t)(h[i / 4] >> (8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[32] = '\0';
}

/* ---- packets and channels ------------------------------------------------ */

static void channel_clear(weir_dectris_channel *c)
{
    free(c->name);
    weir_buf_unref(c->raw);
    weir_array_release(&c->data);
    memset(c, 0, sizeof *c);
}

void weir_dectris_clear(weir_dectris_packet *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nchannels; i++)
        channel_clear(&p->channels[i]);
    free(p->channels);
    for (size_t i = 0; i < p->naux; i++)
        channel_clear(&p->aux[i]);
    free(p->aux);
    weir_buf_unref(p->appendix);
    cJSON_Delete(p->json_);
    weir_buf_unref(p->cbor_);
    memset(p, 0, sizeof *p);
}

static void packet_init(weir_dectris_packet *p, int version)
{
    memset(p, 0, sizeof *p);
    p->version = version;
    p->series = p->frame = -1;
    p->nimages = p->ntrigger = p->x_pixels = p->y_pixels = p->bit_depth = -1;
}

/* Appends a zeroed channel named name (copied); NULL on OOM or too many. */
static weir_dectris_channel *add_channel(weir_dectris_channel **list, size_t *n, const char *name)
{
    if (*n >= MAX_CHANNELS) return NULL;
    weir_dectris_channel *grown = realloc(*list, (*n + 1) * sizeof **list);
    if (!grown) return NULL;
    *list = grown;
    weir_dectris_channel *c = &grown[*n];
    memset(c, 0, sizeof *c);
    c->declared_size = -1;
    if (!(c->name = strdup(name))) return NULL;
    (*n)++;
    return c;
}

/* Bytes of the decoded channel, or 0 with WEIR_ESHAPE on overflow. */
static int channel_nbytes(const weir_dectris_channel *c, size_t *out)
{
    size_t n = weir_dtype_size(c->dtype.kind);
    if (!n) return WEIR_EDTYPE;
    for (int i = 0; i < c->ndim; i++) {
        if (c->shape[i] && n > SIZE_MAX / c->shape[i]) return WEIR_ESHAPE;
        n *= c->shape[i];
    }
    *out = n;
    return WEIR_OK;
}

/* Decodes (or views) c into out. *budget is what this message may still
 * decode; what is the channel's description for messages. */
static int decode_channel(int version, const weir_dectris_channel *c, weir_array *out,
                          size_t *budget, const char *what, char *err, size_t errlen)
{
    weir_buf *dec = NULL;
    size_t nbytes = 0, rawlen = weir_buf_size(c->raw);
    const uint8_t *raw = weir_buf_data(c->raw);
    int rc = channel_nbytes(c, &nbytes);
    if (rc) {
        rc = fail(err, errlen, rc, version, "%s: shape overflows", what);
        goto done;
    }
    if (nbytes > *budget) {
        rc = fail(err, errlen, WEIR_ERANGE, version,
                  "%s: %zu decoded bytes exceed the limit of %zu for this message", what, nbytes,
                  *budget);
        goto done;
    }
    if (c->encoding == WEIR_DECTRIS_ENC_NONE) {
        if (rawlen != nbytes) {
            rc = fail(err, errlen, WEIR_ESHAPE, version,
                      "%s: shape and dtype %s need %zu bytes, the payload has %zu", what,
                      weir_dtype_name(c->dtype.kind), nbytes, rawlen);
            goto done;
        }
        dec = weir_buf_ref(c->raw);
    } else {
        if (c->declared_size >= 0 && (uint64_t)c->declared_size != rawlen) {
            int shorter = (uint64_t)c->declared_size > rawlen;
            rc = fail(err, errlen, shorter ? WEIR_ETRUNCATED : WEIR_ESHAPE, version,
                      "%s: payload has %zu bytes but \"size\" says %lld%s", what, rawlen,
                      (long long)c->declared_size, shorter ? " (truncated)" : "");
            goto done;
        }
        uint64_t declared = 0;
        uint32_t block;
        int raw_lz4 = c->encoding == WEIR_DECTRIS_ENC_LZ4 && version == 1;
        if (!raw_lz4) {
            rc = c->encoding == WEIR_DECTRIS_ENC_BSLZ4
                     ? weir_bslz4_header(raw, rawlen, &declared, &block)
                     : weir_lz4h5_header(raw, rawlen, &declared, &block);
            if (rc) {
                rc = fail(err, errlen, rc, version,
                          "%s: %zu-byte payload has no valid 12-byte %s header", what, rawlen,
                          c->encoding == WEIR_DECTRIS_ENC_BSLZ4 ? "bslz4" : "lz4");
                goto done;
            }
            if (declared != nbytes) {
                rc = fail(err, errlen, WEIR_ESHAPE, version,
                          "%s: shape and dtype %s need %zu bytes, the compressed header says %llu",
                          what, weir_dtype_name(c->dtype.kind), nbytes,
                          (unsigned long long)declared);
                goto done;
            }
        } else if (nbytes > INT_MAX || rawlen > INT_MAX) {
            rc = fail(err, errlen, WEIR_ERANGE, version, "%s: too large for one LZ4 block", what);
            goto done;
        }
        /* LZ4 expands a byte to at most 255 (a match's length bytes), so a
         * payload that would need more is refused before allocating. */
        if (nbytes / 256 > rawlen + 64) {
            rc = fail(err, errlen, WEIR_ECODEC, version,
                      "%s: a %zu-byte payload cannot expand to the %zu bytes its shape needs", what,
                      rawlen, nbytes);
            goto done;
        }
        if (!(dec = weir_buf_new(nbytes))) {
            rc = WEIR_ENOMEM;
            goto done;
        }
        if (raw_lz4) {
            int got = nbytes ? LZ4_decompress_safe((const char *)raw, (char *)weir_buf_mutable(dec),
                                                   (int)rawlen, (int)nbytes)
                             : 0;
            rc = got == (int)nbytes ? WEIR_OK : WEIR_ECODEC;
        } else if (c->encoding == WEIR_DECTRIS_ENC_BSLZ4) {
            rc = weir_bslz4_decode(raw, rawlen, weir_buf_mutable(dec), nbytes, c->elem_size);
        } else {
            rc = weir_lz4h5_decode(raw, rawlen, weir_buf_mutable(dec), nbytes);
        }
        if (rc) {
            rc = fail(err, errlen, rc, version, "%s: %s data does not decode: %s", what,
                      c->encoding == WEIR_DECTRIS_ENC_BSLZ4 ? "bslz4" : "lz4", weir_strerror(rc));
            goto done;
        }
    }
    rc = weir_array_init(out, c->dtype, c->ndim, c->shape, dec, 0);
    if (rc) {
        rc = fail(err, errlen, rc, version, "%s: array does not fit its buffer", what);
        goto done;
    }
    if (c->fortran) {
        /* column-major (tag 1040): the first index varies fastest */
        ptrdiff_t s = (ptrdiff_t)weir_dtype_size(c->dtype.kind);
        for (int i = 0; i < c->ndim; i++) {
            out->strides[i] = s;
            s *= (ptrdiff_t)c->shape[i];
        }
    }
    *budget -= nbytes;
done:
    weir_buf_unref(dec);
    return rc;
}

const weir_dectris_channel *weir_dectris_channel_find(const weir_dectris_packet *p,
                                                      const char *name)
{
    for (size_t i = 0; p && name && i < p->nchannels; i++)
        if (!strcmp(p->channels[i].name, name)) return &p->channels[i];
    return NULL;
}

int weir_dectris_aux(const weir_dectris_packet *p, const char *name, weir_array *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    const weir_dectris_channel *c = NULL;
    for (size_t i = 0; p && name && i < p->naux && !c; i++)
        if (!strcmp(p->aux[i].name, name)) c = &p->aux[i];
    if (!c) c = weir_dectris_channel_find(p, name);
    if (!c)
        return fail(err, errlen, WEIR_ENOTFOUND, p ? p->version : 0, "no array named \"%s\"",
                    name ? name : "(null)");
    if (c->data.buf) {
        weir_array_copy_view(out, &c->data);
        return WEIR_OK;
    }
    size_t budget = WEIR_DECTRIS_DEFAULT_MAX_BYTES;
    char what[96];
    snprintf(what, sizeof what, "array \"%s\"", c->name);
    return decode_channel(p->version, c, out, &budget, what, err, errlen);
}

int64_t weir_dectris_num_frames(const weir_dectris_packet *p)
{
    if (p->nimages < 0 && p->ntrigger < 0) return -1;
    if (p->version == 2) return p->nimages;
    int64_t ni = p->nimages < 0 ? 1 : p->nimages, nt = p->ntrigger < 0 ? 1 : p->ntrigger;
    if (!strcmp(p->trigger_mode, "exte") || !strcmp(p->trigger_mode, "inte")) return nt;
    if (nt && ni > INT64_MAX / nt) return -1;
    return ni * nt;
}

/* ---- JSON view accessors ------------------------------------------------- */

static const cJSON *lookup(const weir_dectris_packet *p, const char *path)
{
    const cJSON *o = p ? p->json_ : NULL;
    char key[256];
    while (o && path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
        path = dot ? dot + 1 : NULL;
    }
    return o;
}

int weir_dectris_get_f64(const weir_dectris_packet *p, const char *path, double *out)
{
    const cJSON *v = lookup(p, path);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsNumber(v)) return WEIR_EINVAL;
    *out = v->valuedouble;
    return WEIR_OK;
}

int weir_dectris_get_i64(const weir_dectris_packet *p, const char *path, int64_t *out)
{
    const cJSON *v = lookup(p, path);
    if (!v) return WEIR_ENOTFOUND;
    return json_int(v, out) ? WEIR_OK : WEIR_EINVAL;
}

int weir_dectris_get_str(const weir_dectris_packet *p, const char *path, const char **out)
{
    const cJSON *v = lookup(p, path);
    if (!v) return WEIR_ENOTFOUND;
    if (!cJSON_IsString(v)) return WEIR_EINVAL;
    *out = v->valuestring;
    return WEIR_OK;
}

char *weir_dectris_json(const weir_dectris_packet *p)
{
    return p && p->json_ ? cJSON_PrintUnformatted(p->json_) : NULL;
}

/* ---- stream v1 parse ----------------------------------------------------- */

/* Reads a DECTRIS shape [x, y] into numpy order (y, x). */
static int v1_shape(const cJSON *desc, size_t shape[2])
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(desc, "shape");
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 2) return 0;
    for (int i = 0; i < 2; i++) {
        int64_t v;
        if (!json_int(cJSON_GetArrayItem(s, i), &v) || v < 0 || v > (int64_t)1 << 40) return 0;
        shape[1 - i] = (size_t)v;
    }
    return 1;
}

/* Encoding grammar [bs<BITS>][[-]lz4][<|>] (plus "none"). Returns 0 or
 * WEIR_EUNSUPPORTED. */
static int v1_encoding(const char *s, weir_dectris_encoding *enc, size_t *bs_bytes,
                       weir_byteorder *order)
{
    *order = WEIR_LITTLE;
    *bs_bytes = 0;
    if (!strcmp(s, "none")) {
        *enc = WEIR_DECTRIS_ENC_NONE;
        return WEIR_OK;
    }
    int bits = 0, lz4 = 0;
    if (!strncmp(s, "bs", 2)) {
        s += 2;
        while (*s >= '0' && *s <= '9' && bits < 1000)
            bits = bits * 10 + (*s++ - '0');
        if (bits != 8 && bits != 16 && bits != 32 && bits != 64) return WEIR_EUNSUPPORTED;
        if (*s == '-') s++;
        if (strncmp(s, "lz4", 3)) return WEIR_EUNSUPPORTED; /* bitshuffle alone: no codec */
    } else if (*s == '-') {
        return WEIR_EUNSUPPORTED;
    }
    if (!strncmp(s, "lz4", 3)) {
        lz4 = 1;
        s += 3;
    }
    if ((s[0] != '<' && s[0] != '>') || s[1]) return WEIR_EUNSUPPORTED;
    *order = s[0] == '>' ? WEIR_BIG : WEIR_LITTLE;
    *bs_bytes = (size_t)bits / 8;
    *enc = bits ? WEIR_DECTRIS_ENC_BSLZ4 : lz4 ? WEIR_DECTRIS_ENC_LZ4 : WEIR_DECTRIS_ENC_NONE;
    return WEIR_OK;
}

/* Takes the appendix part: kept as received, and under "appendix" in the
 * JSON view when it is JSON. */
static int v1_appendix(weir_dectris_packet *p, weir_buf *part)
{
    p->appendix = weir_buf_ref(part);
    cJSON *a = cJSON_ParseWithLength((const char *)weir_buf_data(part), weir_buf_size(part));
    return a ? attach(p->json_, "appendix", a) : WEIR_OK;
}

static int v1_header(const weir_msg *msg, weir_dectris_packet *p, char *err, size_t errlen)
{
    const char *detail = get_str(p->json_, "header_detail");
    size_t base;
    if (!detail)
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "dheader-1.0 of series %lld has no \"header_detail\" text",
                    (long long)p->series);
    if (!strcmp(detail, "none"))
        base = 1;
    else if (!strcmp(detail, "basic"))
        base = 2;
    else if (!strcmp(detail, "all"))
        base = 8;
    else
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "dheader-1.0: unknown header_detail \"%.20s\" (expected all, basic or none)",
                    detail);
    copy_field(p->header_detail, sizeof p->header_detail, detail);
    if (msg->nparts != base && msg->nparts != base + 1)
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "dheader-1.0 with header_detail \"%s\": expected %zu parts (%zu with an "
                    "appendix), got %zu",
                    detail, base, base + 1, msg->nparts);
    int rc;
    if (base >= 2) {
        cJSON *cfg = parse_obj(msg->parts[1]);
        if (!cfg)
            return fail(err, errlen, WEIR_EJSON, 1,
                        "dheader-1.0: part 1 (detector config, %zu bytes) is not a JSON object",
                        weir_buf_size(msg->parts[1]));
        get_int(cfg, "nimages", &p->nimages);
        get_int(cfg, "ntrigger", &p->ntrigger);
        get_int(cfg, "x_pixels_in_detector", &p->x_pixels);
        get_int(cfg, "y_pixels_in_detector", &p->y_pixels);
        get_int(cfg, "bit_depth_image", &p->bit_depth);
        copy_field(p->trigger_mode, sizeof p->trigger_mode, get_str(cfg, "trigger_mode"));
        if ((rc = attach(p->json_, "config", cfg))) return rc;
    }
    if (base == 8) {
        static const char *const htypes[3] = {"dflatfield-1.0", "dpixelmask-1.0",
                                              "dcountrate_table-1.0"};
        static const char *const names[3] = {"flatfield", "pixel_mask", "countrate_table"};
        for (int i = 0; i < 3; i++) {
            size_t part = 2 + 2 * (size_t)i;
            cJSON *d = parse_obj(msg->parts[part]);
            const char *ht = d ? get_str(d, "htype") : NULL;
            const char *type = d ? get_str(d, "type") : NULL;
            weir_dtype dt;
            size_t shape[2];
            if (!ht || strcmp(ht, htypes[i]) || !type || weir_dtype_parse(type, &dt) ||
                !v1_shape(d, shape)) {
                cJSON_Delete(d);
                return fail(err, errlen, WEIR_EFORMAT, 1,
                            "dheader-1.0: part %zu is not a %s descriptor with \"shape\" [x, y] "
                            "and a numpy \"type\"",
                            part, htypes[i]);
            }
            if ((rc = attach(p->json_, names[i], d))) return rc;
            weir_dectris_channel *c = add_channel(&p->aux, &p->naux, names[i]);
            if (!c) return WEIR_ENOMEM;
            c->encoding = WEIR_DECTRIS_ENC_NONE;
            c->dtype = dt;
            c->elem_size = weir_dtype_size(dt.kind);
            c->ndim = 2;
            c->shape[0] = shape[0];
            c->shape[1] = shape[1];
            c->raw = weir_buf_ref(msg->parts[part + 1]);
        }
    }
    if (msg->nparts == base + 1) return v1_appendix(p, msg->parts[base]);
    return WEIR_OK;
}

static int v1_image(const weir_msg *msg, int decode, size_t *budget, weir_dectris_packet *p,
                    char *err, size_t errlen)
{
    char what[96];
    if (msg->nparts != 4 && msg->nparts != 5)
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "dimage-1.0: expected 4 parts (dimage, dimage_d, data, dconfig) or 5 "
                    "(+ appendix), got %zu",
                    msg->nparts);
    if (!get_int(p->json_, "frame", &p->frame) || p->frame < 0)
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "dimage-1.0 of series %lld: expected a non-negative integer \"frame\"",
                    (long long)p->series);
    snprintf(what, sizeof what, "image %lld (series %lld)", (long long)p->frame,
             (long long)p->series);
    cJSON *d = parse_obj(msg->parts[1]);
    const char *ht = d ? get_str(d, "htype") : NULL;
    if (!ht || strcmp(ht, "dimage_d-1.0")) {
        cJSON_Delete(d);
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "%s: part 1 is not a JSON object with htype \"dimage_d-1.0\"", what);
    }
    int rc = attach(p->json_, "dimage_d", d);
    if (rc) return rc;
    size_t shape[2];
    if (!v1_shape(d, shape))
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "%s: dimage_d \"shape\" is not [x, y] of two non-negative integers", what);
    const char *type = get_str(d, "type");
    weir_dtype dt;
    if (!type || weir_dtype_parse(type, &dt))
        return fail(err, errlen, WEIR_EDTYPE, 1,
                    "%s: dimage_d \"type\" %s%.20s%s is not a pixel type (expected uint8, "
                    "uint16 or uint32)",
                    what, type ? "\"" : "", type ? type : "(missing)", type ? "\"" : "");
    const char *encs = get_str(d, "encoding");
    weir_dectris_encoding enc;
    size_t bs_bytes;
    weir_byteorder order;
    if (!encs || v1_encoding(encs, &enc, &bs_bytes, &order))
        return fail(err, errlen, WEIR_EUNSUPPORTED, 1,
                    "%s: unknown encoding %s%.20s%s (expected bs8/16/32-lz4<, lz4< or <, with "
                    "> for big-endian)",
                    what, encs ? "\"" : "", encs ? encs : "(missing)", encs ? "\"" : "");
    cJSON *cfg = parse_obj(msg->parts[3]);
    ht = cfg ? get_str(cfg, "htype") : NULL;
    if (!ht || strcmp(ht, "dconfig-1.0")) {
        cJSON_Delete(cfg);
        return fail(err, errlen, WEIR_EFORMAT, 1,
                    "%s: part 3 is not a JSON object with htype \"dconfig-1.0\"", what);
    }
    if ((rc = attach(p->json_, "dconfig", cfg))) return rc;
    weir_dectris_channel *c = add_channel(&p->channels, &p->nchannels, "image");
    if (!c) return WEIR_ENOMEM;
    if (weir_dtype_size(dt.kind) > 1) dt.order = order;
    c->dtype = dt;
    c->encoding = enc;
    c->elem_size = bs_bytes ? bs_bytes : weir_dtype_size(dt.kind);
    c->ndim = 2;
    c->shape[0] = shape[0];
    c->shape[1] = shape[1];
    int64_t size;
    if (get_int(d, "size", &size) && size >= 0) c->declared_size = size;
    c->raw = weir_buf_ref(msg->parts[2]);
    if (msg->nparts == 5 && (rc = v1_appendix(p, msg->parts[4]))) return rc;
    if (decode || enc == WEIR_DECTRIS_ENC_NONE)
        return decode_channel(1, c, &c->data, budget, what, err, errlen);
    return WEIR_OK;
}

int weir_dectris_v1_parse_ex(const weir_msg *msg, int decode, size_t max_bytes,
                             weir_dectris_packet *p, char *err, size_t errlen)
{
    int rc;
    size_t budget = max_bytes ? max_bytes : WEIR_DECTRIS_DEFAULT_MAX_BYTES;
    packet_init(p, 1);
    if (err && errlen) err[0] = '\0';
    if (!msg || msg->nparts < 1) {
        rc = fail(err, errlen, WEIR_EFORMAT, 1, "empty message");
        goto cleanup;
    }
    if (!(p->json_ = parse_obj(msg->parts[0]))) {
        rc = fail(err, errlen, WEIR_EJSON, 1, "part 0 (%zu bytes) is not a JSON object",
                  weir_buf_size(msg->parts[0]));
        goto cleanup;
    }
    const char *ht = get_str(p->json_, "htype");
    if (!ht) {
        rc = fail(err, errlen, WEIR_EFORMAT, 1, "part 0 has no \"htype\" text");
        goto cleanup;
    }
    if (!get_int(p->json_, "series", &p->series)) {
        rc = fail(err, errlen, WEIR_EFORMAT, 1, "%.40s: expected an integer \"series\"", ht);
        goto cleanup;
    }
    if (!strcmp(ht, "dheader-1.0")) {
        p->kind = WEIR_DECTRIS_START;
        rc = v1_header(msg, p, err, errlen);
    } else if (!strcmp(ht, "dimage-1.0")) {
        p->kind = WEIR_DECTRIS_IMAGE;
        rc = v1_image(msg, decode, &budget, p, err, errlen);
    } else if (!strcmp(ht, "dseries_end-1.0")) {
        p->kind = WEIR_DECTRIS_END;
        rc = msg->nparts == 1 ? WEIR_OK
                              : fail(err, errlen, WEIR_EFORMAT, 1,
                                     "dseries_end-1.0: expected 1 part, got %zu", msg->nparts);
    } else {
        rc = fail(err, errlen, WEIR_EFORMAT, 1,
                  "unknown htype \"%.40s\" (expected dheader-1.0, dimage-1.0 or dseries_end-1.0)",
                  ht);
    }
cleanup:
    if (rc) {
        if (rc == WEIR_ENOMEM && err && errlen && !err[0])
            fail(err, errlen, rc, 1, "out of memory");
        weir_dectris_clear(p);
    }
    return rc;
}

int weir_dectris_v1_parse(const weir_msg *msg, int decode, weir_dectris_packet *p, char *err,
                          size_t errlen)
{
    return weir_dectris_v1_parse_ex(msg, decode, 0, p, err, errlen);
}

/* ---- stream v2: CBOR checks ---------------------------------------------- */

/* Nesting-depth walk over the heads (no allocation): a stack of how many
 * items each open container still expects (UINT64_MAX: until a break). */
typedef struct {
    uint64_t left[MAX_DEPTH + 1];
    int depth; /* open containers */
    int bad;
} depth_walk;

static void dw_close_done(depth_walk *w)
{
    while (w->depth > 0 && w->left[w->depth - 1] == 0)
        w->depth--;
}

/* An item head: counts as one item of the enclosing container. */
static void dw_item(depth_walk *w)
{
    if (w->depth > 0 && w->left[w->depth - 1] != UINT64_MAX) w->left[w->depth - 1]--;
}

static void dw_open(depth_walk *w, uint64_t n)
{
    dw_item(w);
    if (n == 0) {
        dw_close_done(w);
        return;
    }
    if (w->depth >= MAX_DEPTH) {
        w->bad = 1;
        return;
    }
    w->left[w->depth++] = n;
}

static void dw_leaf(depth_walk *w)
{
    dw_item(w);
    dw_close_done(w);
}

static void dw_u8(void *c, uint8_t v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_u16(void *c, uint16_t v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_u32(void *c, uint32_t v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_u64(void *c, uint64_t v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_str(void *c, cbor_data d, size_t n)
{
    (void)d;
    (void)n;
    dw_leaf(c);
}
static void dw_simple(void *c)
{
    dw_leaf(c);
}
static void dw_f4(void *c, float v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_f8(void *c, double v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_bool(void *c, bool v)
{
    (void)v;
    dw_leaf(c);
}
static void dw_indef(void *c)
{
    dw_open(c, UINT64_MAX);
}
static void dw_array(void *c, size_t n)
{
    dw_open(c, n);
}
static void dw_map(void *c, size_t n)
{
    dw_open(c, (uint64_t)n * 2); /* n <= remaining / 2 after the guard */
}
static void dw_tag(void *c, uint64_t v)
{
    (void)v;
    dw_open(c, 1);
}
static void dw_break(void *c)
{
    depth_walk *w = c;
    if (w->depth > 0 && w->left[w->depth - 1] == UINT64_MAX) {
        w->depth--;
        dw_close_done(w);
    } else {
        w->bad = 1;
    }
}

static int check_depth(const uint8_t *data, size_t len, size_t *bad_off)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = cb.negint8 = dw_u8;
    cb.uint16 = cb.negint16 = dw_u16;
    cb.uint32 = cb.negint32 = dw_u32;
    cb.uint64 = cb.negint64 = dw_u64;
    cb.byte_string = cb.string = dw_str;
    cb.byte_string_start = cb.string_start = cb.indef_array_start = cb.indef_map_start = dw_indef;
    cb.array_start = dw_array;
    cb.map_start = dw_map;
    cb.tag = dw_tag;
    cb.float2 = cb.float4 = dw_f4;
    cb.float8 = dw_f8;
    cb.undefined = cb.null = dw_simple;
    cb.boolean = dw_bool;
    cb.indef_break = dw_break;
    depth_walk *w = calloc(1, sizeof *w);
    if (!w) return WEIR_ENOMEM;
    int rc = WEIR_OK;
    size_t off = 0;
    while (off < len) {
        struct cbor_decoder_result r = cbor_stream_decode(data + off, len - off, &cb, w);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || w->bad) {
            rc = r.status == CBOR_DECODER_NEDATA ? WEIR_ETRUNCATED : WEIR_ECBOR;
            break;
        }
        off += r.read;
    }
    *bad_off = off;
    free(w);
    return rc;
}

/* ---- stream v2: reading items -------------------------------------------- */

static const cbor_item_t *map_get(const cbor_item_t *map, const char *key)
{
    if (!map || !cbor_isa_map(map)) return NULL;
    size_t n = cbor_map_size(map), kl = strlen(key);
    struct cbor_pair *pairs = cbor_map_handle(map);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key;
        if (cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == kl &&
            (!kl || !memcmp(cbor_string_handle(k), key, kl)))
            return pairs[i].value;
    }
    return NULL;
}

/* Borrowed content of a tag (libcbor's accessor adds a reference; the tag
 * keeps its own, so dropping ours leaves the item alive). */
static const cbor_item_t *tag_content(const cbor_item_t *tag)
{
    cbor_item_t *c = cbor_tag_item(tag);
    const cbor_item_t *borrowed = c;
    if (c) cbor_decref(&c);
    return borrowed;
}

static int item_u64(const cbor_item_t *it, uint64_t *out)
{
    if (!it || !cbor_isa_uint(it)) return 0;
    *out = cbor_get_int(it);
    return 1;
}

/* Text item as a new NUL-terminated string (definite or chunked). */
static char *item_text(const cbor_item_t *s)
{
    if (!s || !cbor_isa_string(s)) return NULL;
    if (cbor_string_is_definite(s)) /* an empty string may have no storage at all */
        return cbor_string_length(s)
                   ? strndup((const char *)cbor_string_handle(s), cbor_string_length(s))
                   : strdup("");
    size_t n = 0, nch = cbor_string_chunk_count(s);
    cbor_item_t **ch = cbor_string_chunks_handle(s);
    for (size_t i = 0; i < nch; i++)
        n += cbor_string_length(ch[i]);
    char *out = malloc(n + 1), *w = out;
    if (!out) return NULL;
    for (size_t i = 0; i < nch; i++) {
        size_t k = cbor_string_length(ch[i]);
        if (k) memcpy(w, cbor_string_handle(ch[i]), k);
        w += k;
    }
    *w = '\0';
    return out;
}

static size_t bytes_len(const cbor_item_t *bs)
{
    if (cbor_bytestring_is_definite(bs)) return cbor_bytestring_length(bs);
    size_t n = 0, nch = cbor_bytestring_chunk_count(bs);
    cbor_item_t **ch = cbor_bytestring_chunks_handle(bs);
    for (size_t i = 0; i < nch; i++)
        n += cbor_bytestring_length(ch[i]);
    return n;
}

static void unref_holder(void *opaque, void *data, size_t size)
{
    (void)data;
    (void)size;
    weir_buf_unref(opaque);
}

static void release_root(void *opaque, void *data, size_t size)
{
    (void)data;
    (void)size;
    cbor_item_t *root = opaque;
    cbor_decref(&root);
}

/* A byte string as a weir_buf: a zero-copy view that keeps the decoded
 * CBOR (holder) alive, or, for chunked strings, the chunks joined. */
static weir_buf *bytes_buf(const cbor_item_t *bs, weir_buf *holder)
{
    if (cbor_bytestring_is_definite(bs)) {
        weir_buf *b = weir_buf_wrap((void *)cbor_bytestring_handle(bs), cbor_bytestring_length(bs),
                                    unref_holder, weir_buf_ref(holder));
        if (!b) weir_buf_unref(holder);
        return b;
    }
    size_t nch = cbor_bytestring_chunk_count(bs), off = 0;
    cbor_item_t **ch = cbor_bytestring_chunks_handle(bs);
    weir_buf *b = weir_buf_new(bytes_len(bs));
    for (size_t i = 0; b && i < nch; i++) {
        size_t k = cbor_bytestring_length(ch[i]);
        if (k) memcpy(weir_buf_mutable(b) + off, cbor_bytestring_handle(ch[i]), k);
        off += k;
    }
    return b;
}

/* RFC 8746 typed-array tag 0b010_f_s_e_ll to a dtype (float16/128 and the
 * reserved tag 76 have none). */
static int typed_dtype(uint64_t tag, weir_dtype *dt)
{
    if (tag < 64 || tag > 87) return 0;
    unsigned t = (unsigned)(tag - 64), f = t >> 4 & 1, s = t >> 3 & 1, le = t >> 2 & 1, ll = t & 3;
    static const weir_dtype_kind ints[2][4] = {{WEIR_DT_U8, WEIR_DT_U16, WEIR_DT_U32, WEIR_DT_U64},
                                               {WEIR_DT_I8, WEIR_DT_I16, WEIR_DT_I32, WEIR_DT_I64}};
    dt->order = le || ll == 0 ? WEIR_LITTLE : WEIR_BIG;
    if (f) {
        if (ll != 1 && ll != 2) return 0;
        dt->kind = ll == 1 ? WEIR_DT_F32 : WEIR_DT_F64;
    } else {
        if (ll == 0 && s && le) return 0; /* 76 is reserved */
        dt->kind = ints[s][ll];           /* 68 is uint8 "clamped": same bytes */
    }
    return 1;
}

static uint64_t dtype_tag(weir_dtype dt)
{
    unsigned ll, f = 0, s = 0;
    switch (dt.kind) {
    case WEIR_DT_U8:
        return 64;
    case WEIR_DT_I8:
        return 72;
    case WEIR_DT_U16:
        ll = 1;
        break;
    case WEIR_DT_U32:
        ll = 2;
        break;
    case WEIR_DT_U64:
        ll = 3;
        break;
    case WEIR_DT_I16:
        ll = 1, s = 1;
        break;
    case WEIR_DT_I32:
        ll = 2, s = 1;
        break;
    case WEIR_DT_I64:
        ll = 3, s = 1;
        break;
    case WEIR_DT_F32:
        ll = 1, f = 1;
        break;
    case WEIR_DT_F64:
        ll = 2, f = 1;
        break;
    default:
        return 0;
    }
    return 64u + (f << 4) + (s << 3) + ((dt.order == WEIR_LITTLE ? 1u : 0u) << 2) + ll;
}

/* The JSON view of a CBOR item: byte strings and arrays are summarised
 * (see dectris.h). NULL on OOM; depth is bounded by check_depth(). */
static cJSON *to_json(const cbor_item_t *it)
{
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        return cJSON_CreateNumber((double)cbor_get_int(it));
    case CBOR_TYPE_NEGINT:
        return cJSON_CreateNumber(-1.0 - (double)cbor_get_int(it));
    case CBOR_TYPE_BYTESTRING: {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddNumberToObject(o, "bytes", (double)bytes_len(it))) {
            cJSON_Delete(o);
            o = NULL;
        }
        return o;
    }
    case CBOR_TYPE_STRING: {
        char *s = item_text(it);
        cJSON *o = s ? cJSON_CreateString(s) : NULL;
        free(s);
        return o;
    }
    case CBOR_TYPE_ARRAY: {
        cJSON *a = cJSON_CreateArray();
        cbor_item_t **h = cbor_array_handle(it);
        for (size_t i = 0; a && i < cbor_array_size(it); i++) {
            cJSON *v = to_json(h[i]);
            if (!v || !cJSON_AddItemToArray(a, v)) {
                cJSON_Delete(v);
                cJSON_Delete(a);
                a = NULL;
            }
        }
        return a;
    }
    case CBOR_TYPE_MAP: {
        cJSON *o = cJSON_CreateObject();
        struct cbor_pair *h = cbor_map_handle(it);
        for (size_t i = 0; o && i < cbor_map_size(it); i++) {
            char num[32], *key = NULL;
            if (cbor_isa_string(h[i].key))
                key = item_text(h[i].key);
            else if (cbor_isa_uint(h[i].key) || cbor_isa_negint(h[i].key))
                snprintf(num, sizeof num, "%s%llu", cbor_isa_negint(h[i].key) ? "-1-" : "",
                         (unsigned long long)cbor_get_int(h[i].key));
            else
                continue; /* keys of other types have no JSON form */
            cJSON *v = to_json(h[i].value);
            if (!v || !cJSON_AddItemToObject(o, key ? key : num, v)) {
                cJSON_Delete(v);
                cJSON_Delete(o);
                o = NULL;
            }
            free(key);
        }
        return o;
    }
    case CBOR_TYPE_TAG: {
        uint64_t tag = cbor_tag_value(it);
        const cbor_item_t *c = tag_content(it);
        weir_dtype dt;
        if ((tag == 40 || tag == 1040) && cbor_isa_array(c) && cbor_array_size(c) == 2) {
            cbor_item_t **h = cbor_array_handle(c);
            cJSON *o = to_json(h[1]);
            if (o && !cJSON_IsObject(o)) {
                cJSON_Delete(o);
                o = cJSON_CreateObject();
            }
            cJSON *dims = o ? to_json(h[0]) : NULL;
            if (!dims || !cJSON_AddItemToObject(o, "shape", dims) ||
                (tag == 1040 && !cJSON_AddStringToObject(o, "order", "F"))) {
                if (!o || !cJSON_GetObjectItemCaseSensitive(o, "shape")) cJSON_Delete(dims);
                cJSON_Delete(o);
                return NULL;
            }
            return o;
        }
        if (typed_dtype(tag, &dt)) {
            cJSON *o = to_json(c);
            if (o && !cJSON_IsObject(o)) {
                cJSON_Delete(o);
                o = cJSON_CreateObject();
            }
            if (o && !cJSON_AddStringToObject(o, "dtype", weir_dtype_name(dt.kind))) {
                cJSON_Delete(o);
                o = NULL;
            }
            return o;
        }
        if (tag == 56500 && cbor_isa_array(c) && cbor_array_size(c) == 3) {
            cbor_item_t **h = cbor_array_handle(c);
            char *alg = item_text(h[0]);
            cJSON *o = cJSON_CreateObject();
            int ok = o && cJSON_AddStringToObject(o, "compression", alg ? alg : "?") &&
                     cJSON_AddNumberToObject(
                         o, "bytes", cbor_isa_bytestring(h[2]) ? (double)bytes_len(h[2]) : 0.0);
            free(alg);
            if (!ok) {
                cJSON_Delete(o);
                o = NULL;
            }
            return o;
        }
        return to_json(c); /* tag 0 date texts, 55799, ...: their content */
    }
    case CBOR_TYPE_FLOAT_CTRL:
        if (!cbor_float_ctrl_is_ctrl(it)) return cJSON_CreateNumber(cbor_float_get_float(it));
        switch (cbor_ctrl_value(it)) {
        case CBOR_CTRL_TRUE:
            return cJSON_CreateTrue();
        case CBOR_CTRL_FALSE:
            return cJSON_CreateFalse();
        default:
            return cJSON_CreateNull();
        }
    }
    return cJSON_CreateNull();
}

/* Reads a MultiDimArray (tag 40 / 1040 [dims, typed array]) or a bare typed
 * array into c, whose payload becomes a view of the CBOR. */
static int v2_array(const cbor_item_t *it, weir_dectris_channel *c, weir_buf *holder,
                    const char *what, char *err, size_t errlen)
{
    const cbor_item_t *typed = it;
    int bare = 1;
    if (cbor_isa_tag(it) && (cbor_tag_value(it) == 40 || cbor_tag_value(it) == 1040)) {
        const cbor_item_t *a = tag_content(it);
        if (!cbor_isa_array(a) || cbor_array_size(a) != 2)
            return fail(err, errlen, WEIR_EFORMAT, 2, "%s: tag %llu must hold [dims, typed array]",
                        what, (unsigned long long)cbor_tag_value(it));
        const cbor_item_t *dims = cbor_array_handle(a)[0];
        size_t nd = cbor_isa_array(dims) ? cbor_array_size(dims) : 0;
        if (nd < 1 || nd > WEIR_MAX_DIMS)
            return fail(err, errlen, WEIR_EFORMAT, 2,
                        "%s: dims must be a list of 1 to %d unsigned integers", what,
                        WEIR_MAX_DIMS);
        for (size_t i = 0; i < nd; i++) {
            uint64_t d;
            if (!item_u64(cbor_array_handle(dims)[i], &d) || d > (uint64_t)1 << 40)
                return fail(err, errlen, WEIR_EFORMAT, 2,
                            "%s: dims[%zu] is not an unsigned integer below 2^40", what, i);
            c->shape[i] = (size_t)d;
        }
        c->ndim = (int)nd;
        c->fortran = cbor_tag_value(it) == 1040;
        typed = cbor_array_handle(a)[1];
        bare = 0;
    }
    if (!cbor_isa_tag(typed) || !typed_dtype(cbor_tag_value(typed), &c->dtype))
        return fail(err, errlen, cbor_isa_tag(typed) ? WEIR_EDTYPE : WEIR_EFORMAT, 2,
                    "%s: expected an RFC 8746 typed array (tags 64-86 but float16/128)%s", what,
                    cbor_isa_tag(typed) ? ", got an unsupported tag" : "");
    c->elem_size = weir_dtype_size(c->dtype.kind);
    const cbor_item_t *payload = tag_content(typed);
    if (cbor_isa_tag(payload) && cbor_tag_value(payload) == 56500) {
        const cbor_item_t *a = tag_content(payload);
        cbor_item_t **h = cbor_isa_array(a) ? cbor_array_handle(a) : NULL;
        uint64_t mod;
        if (!h || cbor_array_size(a) != 3 || !cbor_isa_string(h[0]) || !item_u64(h[1], &mod) ||
            !cbor_isa_bytestring(h[2]))
            return fail(err, errlen, WEIR_EFORMAT, 2,
                        "%s: tag 56500 must hold [algorithm, modifier, byte string]", what);
        char *alg = item_text(h[0]);
        if (!alg) return WEIR_ENOMEM;
        int rc = WEIR_OK;
        if (!strcmp(alg, "bslz4") && (mod == 1 || mod == 2 || mod == 4 || mod == 8)) {
            c->encoding = WEIR_DECTRIS_ENC_BSLZ4;
            c->elem_size = (size_t)mod;
        } else if (!strcmp(alg, "lz4")) {
            c->encoding = WEIR_DECTRIS_ENC_LZ4;
        } else {
            rc = fail(err, errlen, WEIR_EUNSUPPORTED, 2,
                      "%s: compression \"%.20s\" with modifier %llu is not supported (expected "
                      "bslz4 with 1, 2, 4 or 8, or lz4)",
                      what, alg, (unsigned long long)mod);
        }
        free(alg);
        if (rc) return rc;
        payload = h[2];
    } else if (!cbor_isa_bytestring(payload)) {
        return fail(err, errlen, WEIR_EFORMAT, 2,
                    "%s: a typed array must hold a byte string or tag 56500", what);
    }
    if (!(c->raw = bytes_buf(payload, holder))) return WEIR_ENOMEM;
    if (bare) {
        /* a bare typed array is 1-D: its length is in the (decoded) bytes */
        uint64_t nbytes = weir_buf_size(c->raw);
        uint32_t block;
        if (c->encoding != WEIR_DECTRIS_ENC_NONE &&
            (c->encoding == WEIR_DECTRIS_ENC_BSLZ4
                 ? weir_bslz4_header(weir_buf_data(c->raw), weir_buf_size(c->raw), &nbytes, &block)
                 : weir_lz4h5_header(weir_buf_data(c->raw), weir_buf_size(c->raw), &nbytes,
                                     &block)))
            return fail(err, errlen, WEIR_ECODEC, 2, "%s: compressed payload has no header", what);
        if (nbytes % weir_dtype_size(c->dtype.kind) || nbytes > SIZE_MAX)
            return fail(err, errlen, WEIR_ESHAPE, 2,
                        "%s: %llu bytes are not a whole number of %s elements", what,
                        (unsigned long long)nbytes, weir_dtype_name(c->dtype.kind));
        c->ndim = 1;
        c->shape[0] = (size_t)(nbytes / weir_dtype_size(c->dtype.kind));
    }
    size_t nb;
    if (channel_nbytes(c, &nb))
        return fail(err, errlen, WEIR_ESHAPE, 2, "%s: shape overflows", what);
    return WEIR_OK;
}

/* Auxiliary arrays of a start message: the maps pixel_mask and flatfield
 * (channel -> array) and the countrate table. */
static int v2_start_aux(const cbor_item_t *m, weir_dectris_packet *p, char *err, size_t errlen)
{
    static const char *const maps[2] = {"pixel_mask", "flatfield"};
    for (int k = 0; k < 2; k++) {
        const cbor_item_t *mp = map_get(m, maps[k]);
        if (!mp) continue;
        if (!cbor_isa_map(mp))
            return fail(err, errlen, WEIR_EFORMAT, 2, "start: \"%s\" is not a map", maps[k]);
        struct cbor_pair *h = cbor_map_handle(mp);
        for (size_t i = 0; i < cbor_map_size(mp); i++) {
            char *ch = item_text(h[i].key), name[160];
            if (!ch)
                return fail(err, errlen, WEIR_EFORMAT, 2,
                            "start: \"%s\" has a key that is not text", maps[k]);
            snprintf(name, sizeof name, "%s/%.100s", maps[k], ch);
            free(ch);
            weir_dectris_channel *c = add_channel(&p->aux, &p->naux, name);
            if (!c) return WEIR_ENOMEM;
            int rc = v2_array(h[i].value, c, p->cbor_, name, err, errlen);
            if (rc) return rc;
        }
    }
    const cbor_item_t *t = map_get(m, "countrate_correction_lookup_table");
    if (t && cbor_isa_tag(t)) {
        weir_dectris_channel *c =
            add_channel(&p->aux, &p->naux, "countrate_correction_lookup_table");
        if (!c) return WEIR_ENOMEM;
        return v2_array(t, c, p->cbor_, c->name, err, errlen);
    }
    return WEIR_OK;
}

static int v2_image(const cbor_item_t *m, int decode, size_t *budget, weir_dectris_packet *p,
                    char *err, size_t errlen)
{
    uint64_t id;
    if (!item_u64(map_get(m, "image_id"), &id) || id > INT64_MAX)
        return fail(err, errlen, WEIR_EFORMAT, 2,
                    "image of series %lld: expected an unsigned integer \"image_id\"",
                    (long long)p->series);
    p->frame = (int64_t)id;
    const cbor_item_t *data = map_get(m, "data");
    if (!data || !cbor_isa_map(data))
        return fail(err, errlen, WEIR_EFORMAT, 2,
                    "image %lld: expected \"data\", a map of channel name to array",
                    (long long)p->frame);
    struct cbor_pair *h = cbor_map_handle(data);
    for (size_t i = 0; i < cbor_map_size(data); i++) {
        char *name = item_text(h[i].key), what[160];
        if (!name)
            return fail(err, errlen, WEIR_EFORMAT, 2, "image %lld: a channel name is not text",
                        (long long)p->frame);
        snprintf(what, sizeof what, "image %lld (series %lld), channel %.60s", (long long)p->frame,
                 (long long)p->series, name);
        if (weir_dectris_channel_find(p, name)) {
            free(name);
            return fail(err, errlen, WEIR_EDUPLICATE, 2, "%s: channel appears twice", what);
        }
        weir_dectris_channel *c = add_channel(&p->channels, &p->nchannels, name);
        free(name);
        if (!c)
            return p->nchannels >= MAX_CHANNELS
                       ? fail(err, errlen, WEIR_ERANGE, 2, "image %lld: more than %d channels",
                              (long long)p->frame, MAX_CHANNELS)
                       : WEIR_ENOMEM;
        int rc = v2_array(h[i].value, c, p->cbor_, what, err, errlen);
        /* uncompressed channels are views: free, so given even without decode */
        if (!rc && (decode || c->encoding == WEIR_DECTRIS_ENC_NONE))
            rc = decode_channel(2, c, &c->data, budget, what, err, errlen);
        if (rc) return rc;
    }
    return WEIR_OK;
}

int weir_dectris_v2_parse_ex(const uint8_t *cbor, size_t len, int decode, size_t max_bytes,
                             weir_dectris_packet *p, char *err, size_t errlen)
{
    int rc;
    size_t budget = max_bytes ? max_bytes : WEIR_DECTRIS_DEFAULT_MAX_BYTES, bad = 0;
    uint64_t u;
    packet_init(p, 2);
    if (err && errlen) err[0] = '\0';
    if (!cbor || !len) {
        rc = fail(err, errlen, WEIR_ETRUNCATED, 2, "empty message");
        goto cleanup;
    }
    if ((rc = weir_cbor_guard(cbor, len, &bad))) {
        rc = fail(err, errlen, rc, 2, "%s at byte %zu of %zu",
                  rc == WEIR_ETRUNCATED ? "CBOR ends in the middle of an item"
                                        : "malformed CBOR (or a container longer than the input)",
                  bad, len);
        goto cleanup;
    }
    if ((rc = check_depth(cbor, len, &bad))) {
        rc = fail(err, errlen, rc, 2, "%s at byte %zu of %zu",
                  rc == WEIR_ETRUNCATED ? "CBOR ends in the middle of an item"
                                        : "CBOR nested deeper than 64 levels or malformed",
                  bad, len);
        goto cleanup;
    }
    struct cbor_load_result res;
    cbor_item_t *root = cbor_load(cbor, len, &res);
    if (!root) {
        rc = res.error.code == CBOR_ERR_NOTENOUGHDATA ? WEIR_ETRUNCATED
             : res.error.code == CBOR_ERR_MEMERROR    ? WEIR_ENOMEM
                                                      : WEIR_ECBOR;
        rc = rc == WEIR_ETRUNCATED
                 ? fail(err, errlen, rc, 2, "CBOR ends in the middle of an item (%zu bytes)", len)
                 : fail(err, errlen, rc, 2, "CBOR does not load (libcbor error %d at byte %zu)",
                        (int)res.error.code, res.error.position);
        goto cleanup;
    }
    if (!(p->cbor_ = weir_buf_wrap(NULL, 0, release_root, root))) {
        cbor_decref(&root);
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if (res.read != len) {
        rc = fail(err, errlen, WEIR_ECBOR, 2, "%zu bytes after the message's CBOR item",
                  len - res.read);
        goto cleanup;
    }
    const cbor_item_t *m = root;
    while (cbor_isa_tag(m) && cbor_tag_value(m) == 55799)
        m = tag_content(m);
    if (!cbor_isa_map(m)) {
        rc = fail(err, errlen, WEIR_EFORMAT, 2, "message is not a CBOR map (major type %d%s)",
                  (int)cbor_typeof(m), cbor_isa_tag(m) ? ", an unexpected tag" : "");
        goto cleanup;
    }
    if (!(p->json_ = to_json(m))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    const char *type = get_str(p->json_, "type");
    if (!type) {
        rc = fail(err, errlen, WEIR_EFORMAT, 2,
                  "map has no \"type\" text (expected start, image or end)");
        goto cleanup;
    }
    if (item_u64(map_get(m, "series_id"), &u) && u <= INT64_MAX) p->series = (int64_t)u;
    if (!strcmp(type, "start")) {
        p->kind = WEIR_DECTRIS_START;
        get_int(p->json_, "number_of_images", &p->nimages);
        get_int(p->json_, "ntrigger", &p->ntrigger);
        get_int(p->json_, "image_size_x", &p->x_pixels);
        get_int(p->json_, "image_size_y", &p->y_pixels);
        if (!get_int(p->json_, "bit_depth_image", &p->bit_depth)) {
            weir_dtype dt;
            const char *s = get_str(p->json_, "image_dtype");
            if (s && !weir_dtype_parse(s, &dt))
                p->bit_depth = 8 * (int64_t)weir_dtype_size(dt.kind);
        }
        copy_field(p->trigger_mode, sizeof p->trigger_mode, get_str(p->json_, "trigger_mode"));
        rc = v2_start_aux(m, p, err, errlen);
    } else if (!strcmp(type, "image")) {
        p->kind = WEIR_DECTRIS_IMAGE;
        rc = v2_image(m, decode, &budget, p, err, errlen);
    } else if (!strcmp(type, "end")) {
        p->kind = WEIR_DECTRIS_END;
        rc = WEIR_OK;
    } else {
        rc = fail(err, errlen, WEIR_EFORMAT, 2,
                  "unknown message type \"%.40s\" (expected start, image or end)", type);
    }
cleanup:
    if (rc) {
        if (rc == WEIR_ENOMEM && err && errlen && !err[0])
            fail(err, errlen, rc, 2, "out of memory");
        weir_dectris_clear(p);
    }
    return rc;
}

int weir_dectris_v2_parse(const uint8_t *cbor, size_t len, int decode, weir_dectris_packet *p,
                          char *err, size_t errlen)
{
    return weir_dectris_v2_parse_ex(cbor, len, decode, 0, p, err, errlen);
}

/* ---- encoders: shared ---------------------------------------------------- */

static void release_free(void *opaque, void *data, size_t size)
{
    (void)opaque;
    (void)size;
    free(data);
}

/* The array's bytes in C order (its own byte order) as a buffer: a view
 * when it already is contiguous, else a packed copy. */
static weir_buf *packed(const weir_array *a)
{
    size_t n = weir_array_nbytes(a);
    if (a->buf && weir_array_is_contiguous(a))
        return weir_buf_view(a->buf, (size_t)(a->data - weir_buf_data(a->buf)), n);
    weir_buf *b = weir_buf_new(n);
    if (b && n) weir_array_pack(a, weir_buf_mutable(b));
    return b;
}

/* Compresses in as the version's encoding says; *out is a new reference. */
static int compress(int version, weir_dectris_encoding enc, weir_buf *in, size_t elem,
                    weir_buf **out)
{
    const uint8_t *src = weir_buf_data(in);
    size_t n = weir_buf_size(in), cap, len = 0;
    int rc;
    *out = NULL;
    if (enc == WEIR_DECTRIS_ENC_NONE) {
        *out = weir_buf_ref(in);
        return WEIR_OK;
    }
    if (enc == WEIR_DECTRIS_ENC_BSLZ4)
        cap = weir_bslz4_bound(n, elem, 0);
    else if (version == 2)
        cap = weir_lz4h5_bound(n, 0);
    else if (n <= LZ4_MAX_INPUT_SIZE)
        cap = (size_t)LZ4_compressBound((int)n);
    else
        return WEIR_ERANGE;
    weir_buf *b = weir_buf_new(cap);
    if (!b) return WEIR_ENOMEM;
    if (enc == WEIR_DECTRIS_ENC_BSLZ4) {
        rc = weir_bslz4_encode(src, n, elem, 0, weir_buf_mutable(b), cap, &len);
    } else if (version == 2) {
        rc = weir_lz4h5_encode(src, n, 0, weir_buf_mutable(b), cap, &len);
    } else {
        int got =
            LZ4_compress_default((const char *)src, (char *)weir_buf_mutable(b), (int)n, (int)cap);
        rc = got > 0 ? WEIR_OK : WEIR_ECODEC;
        len = got > 0 ? (size_t)got : 0;
    }
    if (!rc && !(*out = weir_buf_view(b, 0, len))) rc = WEIR_ENOMEM;
    weir_buf_unref(b);
    return rc;
}

/* ---- stream v1 encoders -------------------------------------------------- */

/* Prints j (taken) as a new part of out. */
static int append_json(weir_msg *out, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return WEIR_ENOMEM;
    weir_buf *b = weir_buf_wrap(s, strlen(s), release_free, NULL);
    if (!b) {
        free(s);
        return WEIR_ENOMEM;
    }
    return weir_msg_append(out, b);
}

static cJSON *shape_xy(size_t x, size_t y)
{
    cJSON *a = cJSON_CreateArray();
    if (a && (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)x)) ||
              !cJSON_AddItemToArray(a, cJSON_CreateNumber((double)y)))) {
        cJSON_Delete(a);
        a = NULL;
    }
    return a;
}

/* One "all" descriptor + blob of n elements of the 4-byte little-endian
 * value v. */
static int append_blob(weir_msg *out, const char *htype, const char *type, size_t x, size_t y,
                       uint32_t v)
{
    cJSON *j = cJSON_CreateObject(), *sh = shape_xy(x, y);
    int ok = j && sh && cJSON_AddStringToObject(j, "htype", htype);
    if (ok && cJSON_AddItemToObject(j, "shape", sh))
        sh = NULL;
    else
        ok = 0;
    ok = ok && cJSON_AddStringToObject(j, "type", type);
    cJSON_Delete(sh);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = append_json(out, j);
    if (rc) return rc;
    if (x && y > SIZE_MAX / 4 / x) return WEIR_ERANGE;
    weir_buf *b = weir_buf_new(x * y * 4);
    if (!b) return WEIR_ENOMEM;
    uint8_t *w = weir_buf_mutable(b);
    for (size_t i = 0; i < x * y; i++)
        for (int k = 0; k < 4; k++)
            w[4 * i + (size_t)k] = (uint8_t)(v >> (8 * k));
    return weir_msg_append(out, b);
}

int weir_dectris_v1_encode_header(weir_msg *out, const weir_dectris_series *s)
{
    if (!out || !s) return WEIR_EINVAL;
    const char *detail = s->header_detail ? s->header_detail : "basic";
    if (strcmp(detail, "all") && strcmp(detail, "basic") && strcmp(detail, "none"))
        return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject();
    int ok = j && cJSON_AddStringToObject(j, "header_detail", detail) &&
             cJSON_AddStringToObject(j, "htype", "dheader-1.0") &&
             cJSON_AddNumberToObject(j, "series", (double)s->series);
    if (!ok) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    int rc = append_json(out, j);
    if (rc) return rc;
    if (strcmp(detail, "none")) {
        cJSON *c = cJSON_CreateObject(), *x = NULL;
        ok = c && cJSON_AddNumberToObject(c, "bit_depth_image", s->bit_depth) &&
             cJSON_AddNumberToObject(c, "nimages", (double)s->nimages) &&
             cJSON_AddNumberToObject(c, "ntrigger", (double)s->ntrigger) &&
             cJSON_AddStringToObject(c, "trigger_mode",
                                     s->trigger_mode ? s->trigger_mode : "ints") &&
             cJSON_AddNumberToObject(c, "x_pixels_in_detector", (double)s->x_pixels) &&
             cJSON_AddNumberToObject(c, "y_pixels_in_detector", (double)s->y_pixels);
        if (!ok) {
            cJSON_Delete(c);
            return WEIR_ENOMEM;
        }
        if (s->extra_json) {
            x = cJSON_Parse(s->extra_json);
            if (!cJSON_IsObject(x)) {
                cJSON_Delete(x);
                cJSON_Delete(c);
                return WEIR_EJSON;
            }
            for (cJSON *it = x->child, *next; it; it = next) {
                next = it->next;
                cJSON_DetachItemViaPointer(x, it);
                cJSON_DeleteItemFromObjectCaseSensitive(c, it->string);
                cJSON_AddItemToObject(c, it->string, it);
            }
            cJSON_Delete(x);
        }
        if ((rc = append_json(out, c))) return rc;
    }
    if (!strcmp(detail, "all")) {
        if ((rc = append_blob(out, "dflatfield-1.0", "float32", s->x_pixels, s->y_pixels,
                              0x3f800000u)) || /* 1.0f */
            (rc = append_blob(out, "dpixelmask-1.0", "uint32", s->x_pixels, s->y_pixels, 0)) ||
            (rc = append_blob(out, "dcountrate_table-1.0", "float32", 2, 1001, 0)))
            return rc;
    }
    if (s->appendix) {
        weir_buf *b = weir_buf_copy(s->appendix, strlen(s->appendix));
        if ((rc = weir_msg_append(out, b))) return b ? rc : WEIR_ENOMEM;
    }
    return WEIR_OK;
}

int weir_dectris_v1_encode_image(weir_msg *out, int64_t series, int64_t frame,
                                 const weir_array *img, weir_dectris_encoding enc,
                                 const weir_dectris_times *times, const char *appendix)
{
    static const weir_dectris_times zero = {0, 0, 0, 0};
    weir_buf *px = NULL, *payload = NULL;
    cJSON *j = NULL, *d = NULL, *c = NULL, *sh = NULL;
    int rc;
    if (!out || !img || img->ndim != 2 ||
        (img->dtype.kind != WEIR_DT_U8 && img->dtype.kind != WEIR_DT_U16 &&
         img->dtype.kind != WEIR_DT_U32) ||
        enc > WEIR_DECTRIS_ENC_LZ4)
        return WEIR_EINVAL;
    if (!times) times = &zero;
    size_t isz = weir_dtype_size(img->dtype.kind);
    if (!(px = packed(img))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if ((rc = compress(1, enc, px, isz, &payload))) goto cleanup;
    char hash[33], encoding[16];
    weir_dectris_md5_hex(weir_buf_data(payload), weir_buf_size(payload), hash);
    char order = isz > 1 && img->dtype.order == WEIR_BIG ? '>' : '<';
    if (enc == WEIR_DECTRIS_ENC_BSLZ4)
        snprintf(encoding, sizeof encoding, "bs%zu-lz4%c", isz * 8, order);
    else if (enc == WEIR_DECTRIS_ENC_LZ4)
        snprintf(encoding, sizeof encoding, "lz4%c", order);
    else
        snprintf(encoding, sizeof encoding, "%c", order);
    j = cJSON_CreateObject();
    d = cJSON_CreateObject();
    c = cJSON_CreateObject();
    sh = shape_xy(img->shape[1], img->shape[0]);
    int ok = j && d && c && sh && cJSON_AddNumberToObject(j, "frame", (double)frame) &&
             cJSON_AddStringToObject(j, "hash", hash) &&
             cJSON_AddStringToObject(j, "htype", "dimage-1.0") &&
             cJSON_AddNumberToObject(j, "series", (double)series) &&
             cJSON_AddStringToObject(d, "encoding", encoding) &&
             cJSON_AddStringToObject(d, "htype", "dimage_d-1.0");
    if (ok && cJSON_AddItemToObject(d, "shape", sh))
        sh = NULL;
    else
        ok = 0;
    ok = ok && cJSON_AddNumberToObject(d, "size", (double)weir_buf_size(payload)) &&
         cJSON_AddStringToObject(d, "type", weir_dtype_name(img->dtype.kind)) &&
         cJSON_AddStringToObject(c, "htype", "dconfig-1.0") &&
         cJSON_AddNumberToObject(c, "real_time", (double)times->real) &&
         cJSON_AddNumberToObject(c, "start_time", (double)times->start) &&
         cJSON_AddNumberToObject(c, "stop_time", (double)times->stop);
    if (!ok) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    rc = append_json(out, j);
    j = NULL;
    if (rc) goto cleanup;
    rc = append_json(out, d);
    d = NULL;
    if (rc) goto cleanup;
    rc = weir_msg_append(out, payload);
    payload = NULL;
    if (rc) goto cleanup;
    rc = append_json(out, c);
    c = NULL;
    if (rc) goto cleanup;
    if (appendix) {
        weir_buf *b = weir_buf_copy(appendix, strlen(appendix));
        rc = b ? weir_msg_append(out, b) : WEIR_ENOMEM;
    }
cleanup:
    cJSON_Delete(j);
    cJSON_Delete(d);
    cJSON_Delete(c);
    cJSON_Delete(sh);
    weir_buf_unref(payload);
    weir_buf_unref(px);
    return rc;
}

int weir_dectris_v1_encode_end(weir_msg *out, int64_t series)
{
    if (!out) return WEIR_EINVAL;
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "htype", "dseries_end-1.0") ||
        !cJSON_AddNumberToObject(j, "series", (double)series)) {
        cJSON_Delete(j);
        return WEIR_ENOMEM;
    }
    return append_json(out, j);
}

/* ---- stream v2 encoders -------------------------------------------------- */

/* Unsigned integer of the smallest width (RFC 8949 preferred serialisation,
 * which is what DECTRIS and cbor2 write). */
static cbor_item_t *cb_uint(uint64_t u)
{
    if (u <= UINT8_MAX) return cbor_build_uint8((uint8_t)u);
    if (u <= UINT16_MAX) return cbor_build_uint16((uint16_t)u);
    if (u <= UINT32_MAX) return cbor_build_uint32((uint32_t)u);
    return cbor_build_uint64(u);
}

/* libcbor containers take their own reference: these helpers drop the
 * caller's, so every built item ends up owned by exactly its parent. */
static int cb_put(cbor_item_t *map, const char *key, cbor_item_t *val)
{
    cbor_item_t *k = cbor_build_string(key);
    int ok = k && val && cbor_map_add(map, (struct cbor_pair){.key = k, .value = val});
    if (k) cbor_decref(&k);
    if (val) cbor_decref(&val);
    return ok ? WEIR_OK : WEIR_ENOMEM;
}

static int cb_push(cbor_item_t *arr, cbor_item_t *v)
{
    int ok = v && cbor_array_push(arr, v);
    if (v) cbor_decref(&v);
    return ok ? WEIR_OK : WEIR_ENOMEM;
}

static cbor_item_t *cb_tag(uint64_t tag, cbor_item_t *content)
{
    cbor_item_t *t = content ? cbor_new_tag(tag) : NULL;
    if (t) cbor_tag_set_item(t, content);
    if (content) cbor_decref(&content);
    return t;
}

static cbor_item_t *cb_rational(uint64_t num, uint64_t den)
{
    cbor_item_t *a = cbor_new_definite_array(2);
    if (a && (cb_push(a, cb_uint(num)) || cb_push(a, cb_uint(den)))) cbor_decref(&a);
    return a;
}

/* Tags root 55799 (self-described CBOR, as DECTRIS sends), serialises it and
 * appends it as one frame; takes root. */
static int append_cbor(weir_msg *out, cbor_item_t *root)
{
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    cbor_item_t *tagged = cb_tag(55799, root);
    if (tagged) n = cbor_serialize_alloc(tagged, &buf, &cap);
    if (tagged) cbor_decref(&tagged);
    if (!n) {
        free(buf);
        return WEIR_ENOMEM;
    }
    weir_buf *b = weir_buf_wrap(buf, n, release_free, NULL);
    if (!b) {
        free(buf);
        return WEIR_ENOMEM;
    }
    return weir_msg_append(out, b);
}

static int put_series(cbor_item_t *m, const char *type, int64_t series, const char *uid)
{
    int rc = cb_put(m, "type", cbor_build_string(type));
    if (!rc) rc = cb_put(m, "series_id", cb_uint(series < 0 ? 0 : (uint64_t)series));
    if (!rc) rc = cb_put(m, "series_unique_id", cbor_build_string(uid ? uid : ""));
    return rc;
}

int weir_dectris_v2_encode_start(weir_msg *out, const weir_dectris_series *s)
{
    if (!out || !s || (s->bit_depth != 8 && s->bit_depth != 16 && s->bit_depth != 32))
        return WEIR_EINVAL;
    static const char *const default_channels[1] = {"threshold_1"};
    const char *const *names = s->nchannels ? s->channels : default_channels;
    size_t nch = s->nchannels ? s->nchannels : 1;
    if (!names) return WEIR_EINVAL;
    cbor_item_t *m = cbor_new_definite_map(s->trigger_mode ? 9 : 8);
    cbor_item_t *ch = cbor_new_definite_array(nch);
    int rc = m && ch ? WEIR_OK : WEIR_ENOMEM;
    for (size_t i = 0; !rc && i < nch; i++)
        rc = names[i] ? cb_push(ch, cbor_build_string(names[i])) : WEIR_EINVAL;
    if (!rc) rc = put_series(m, "start", s->series, s->series_unique_id);
    if (!rc) {
        rc = cb_put(m, "channels", ch);
        ch = NULL;
    }
    const char *dtype = s->bit_depth == 8 ? "uint8" : s->bit_depth == 16 ? "uint16" : "uint32";
    if (!rc) rc = cb_put(m, "image_dtype", cbor_build_string(dtype));
    if (!rc) rc = cb_put(m, "image_size_x", cb_uint(s->x_pixels));
    if (!rc) rc = cb_put(m, "image_size_y", cb_uint(s->y_pixels));
    if (!rc) rc = cb_put(m, "number_of_images", cb_uint(s->nimages < 0 ? 0 : (uint64_t)s->nimages));
    if (!rc && s->trigger_mode) rc = cb_put(m, "trigger_mode", cbor_build_string(s->trigger_mode));
    if (ch) cbor_decref(&ch);
    if (rc) {
        if (m) cbor_decref(&m);
        return rc;
    }
    return append_cbor(out, m);
}

/* tag 40 [[dims], typed array] of one channel, compressed as asked. */
static int v2_channel(const weir_array *a, weir_dectris_encoding enc, cbor_item_t **out)
{
    cbor_item_t *dims = NULL, *bytes = NULL, *inner = NULL, *md = NULL;
    weir_buf *px = NULL, *payload = NULL;
    uint64_t tag = dtype_tag(a->dtype);
    int rc;
    *out = NULL;
    if (!tag || a->ndim < 1 || a->ndim > WEIR_MAX_DIMS || enc > WEIR_DECTRIS_ENC_LZ4)
        return WEIR_EINVAL;
    size_t isz = weir_dtype_size(a->dtype.kind);
    if (!(px = packed(a))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if ((rc = compress(2, enc, px, isz, &payload))) goto cleanup;
    if (!(dims = cbor_new_definite_array((size_t)a->ndim))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    for (int i = 0; i < a->ndim; i++)
        if ((rc = cb_push(dims, cb_uint(a->shape[i])))) goto cleanup;
    bytes = cbor_build_bytestring(weir_buf_data(payload), weir_buf_size(payload));
    if (!bytes) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if (enc != WEIR_DECTRIS_ENC_NONE) {
        cbor_item_t *arr = cbor_new_definite_array(3);
        rc = arr ? WEIR_OK : WEIR_ENOMEM;
        if (!rc)
            rc = cb_push(arr, cbor_build_string(enc == WEIR_DECTRIS_ENC_BSLZ4 ? "bslz4" : "lz4"));
        if (!rc) rc = cb_push(arr, cb_uint(enc == WEIR_DECTRIS_ENC_BSLZ4 ? isz : 0));
        if (!rc) {
            rc = cb_push(arr, bytes);
            bytes = NULL;
        }
        if (rc) {
            if (arr) cbor_decref(&arr);
            goto cleanup;
        }
        bytes = cb_tag(56500, arr);
    }
    inner = cb_tag(tag, bytes);
    bytes = NULL;
    md = cbor_new_definite_array(2);
    if (!inner || !md) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    rc = cb_push(md, dims);
    dims = NULL;
    if (!rc) rc = cb_push(md, inner);
    inner = NULL;
    if (rc) goto cleanup;
    *out = cb_tag(40, md);
    md = NULL;
    rc = *out ? WEIR_OK : WEIR_ENOMEM;
cleanup:
    if (dims) cbor_decref(&dims);
    if (bytes) cbor_decref(&bytes);
    if (inner) cbor_decref(&inner);
    if (md) cbor_decref(&md);
    weir_buf_unref(payload);
    weir_buf_unref(px);
    return rc;
}

int weir_dectris_v2_encode_image(weir_msg *out, int64_t series, const char *series_unique_id,
                                 int64_t image_id, size_t nchannels, const char *const *names,
                                 const weir_array *imgs, weir_dectris_encoding enc,
                                 const weir_dectris_times *times)
{
    static const weir_dectris_times zero = {0, 0, 0, 0};
    if (!out || !nchannels || !names || !imgs || image_id < 0) return WEIR_EINVAL;
    if (!times) times = &zero;
    uint64_t base = times->time_base ? times->time_base : 50000000u;
    cbor_item_t *m = cbor_new_definite_map(8), *data = cbor_new_definite_map(nchannels);
    int rc = m && data ? WEIR_OK : WEIR_ENOMEM;
    for (size_t i = 0; !rc && i < nchannels; i++) {
        cbor_item_t *ch = NULL;
        rc = names[i] ? v2_channel(&imgs[i], enc, &ch) : WEIR_EINVAL;
        if (!rc) rc = cb_put(data, names[i], ch);
    }
    if (!rc) rc = put_series(m, "image", series, series_unique_id);
    if (!rc) rc = cb_put(m, "image_id", cb_uint((uint64_t)image_id));
    if (!rc) rc = cb_put(m, "start_time", cb_rational(times->start, base));
    if (!rc) rc = cb_put(m, "stop_time", cb_rational(times->stop, base));
    if (!rc) rc = cb_put(m, "real_time", cb_rational(times->real, base));
    if (!rc) {
        rc = cb_put(m, "data", data);
        data = NULL;
    }
    if (data) cbor_decref(&data);
    if (rc) {
        if (m) cbor_decref(&m);
        return rc;
    }
    return append_cbor(out, m);
}

int weir_dectris_v2_encode_end(weir_msg *out, int64_t series, const char *series_unique_id)
{
    if (!out) return WEIR_EINVAL;
    cbor_item_t *m = cbor_new_definite_map(3);
    int rc = m ? put_series(m, "end", series, series_unique_id) : WEIR_ENOMEM;
    if (rc) {
        if (m) cbor_decref(&m);
        return rc;
    }
    return append_cbor(out, m);
}
