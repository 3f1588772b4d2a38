/* ptu.c — PicoQuant unified TTTR files (.ptu; ETA's .timeres), decode and
 * encode.
 *
 * A PTU file is the magic "PQTTTR\0\0", an 8-byte version and a list of
 * 48-byte tags (32-byte name, int32 index, uint32 type, int64 value); the
 * enhanced types (float arrays, ANSI and wide strings, blobs) carry their
 * value's byte length and are followed by that many bytes. Every tag is
 * kept (wide strings converted to UTF-8) and the header may be any size:
 * unlike ETA there is no 20 KiB buffer, and a float array or blob is
 * skipped by its length, not taken as an absolute offset. Records start
 * after "Header_End" and are 32-bit words in one of four layouts (PicoHarp
 * T2/T3, HydraHarp-style T2/T3, the latter shared by HydraHarp V1/V2,
 * TimeHarp 260 N/P, MultiHarp and PicoHarp 330), following PicoQuant's
 * ptudemo.cc. Resolutions are kept as exact decimal fractions of ps and
 * every event is converted on its own, so nothing drifts over a file. */
#include "tags_internal.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>

#define TY_EMPTY8 0xFFFF0008u
#define TY_BOOL8 0x00000008u
#define TY_INT8 0x10000008u
#define TY_BITSET64 0x11000008u
#define TY_COLOR8 0x12000008u
#define TY_FLOAT8 0x20000008u
#define TY_DATETIME 0x21000008u
#define TY_FLOAT8ARRAY 0x2001FFFFu
#define TY_ANSISTRING 0x4001FFFFu
#define TY_WIDESTRING 0x4002FFFFu
#define TY_BLOB 0xFFFFFFFFu
#define TY_INT8ARRAY 0x1001FFFFu

static const struct {
    uint32_t code;
    const char *name;
    int layout, v1;
} rectypes[] = {
    {0x00010203, "PicoHarp 300 T2", L_PHT2, 0},
    {0x00010303, "PicoHarp 300 T3", L_PHT3, 0},
    {0x00010204, "HydraHarp V1 T2", L_HHT2, 1},
    {0x00010304, "HydraHarp V1 T3", L_HHT3, 1},
    {0x01010204, "HydraHarp V2 T2", L_HHT2, 0},
    {0x01010304, "HydraHarp V2 T3", L_HHT3, 0},
    {0x00010205, "TimeHarp 260N T2", L_HHT2, 0},
    {0x00010305, "TimeHarp 260N T3", L_HHT3, 0},
    {0x00010206, "TimeHarp 260P T2", L_HHT2, 0},
    {0x00010306, "TimeHarp 260P T3", L_HHT3, 0},
    {0x00010207, "MultiHarp/PicoHarp 330 (generic) T2", L_HHT2, 0},
    {0x00010307, "MultiHarp/PicoHarp 330 (generic) T3", L_HHT3, 0},
};

#define PHT2_WRAP 210698240LL
#define PHT3_WRAP 65536LL
#define HHT2_WRAP_V1 33552000LL
#define HHT2_WRAP 33554432LL
#define HHT3_WRAP 1024LL

/* UTF-16LE (up to the first NUL) to UTF-8; returns malloc'd string */
static char *utf16_to_utf8(const uint8_t *p, size_t nbytes, size_t *outlen)
{
    size_t nu = nbytes / 2;
    char *s = malloc(nu * 3 + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < nu; i++) {
        uint32_t c = tagi_u16(p + 2 * i);
        if (!c) break;
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < nu) {
            uint32_t c2 = tagi_u16(p + 2 * i + 2);
            if (c2 >= 0xDC00 && c2 < 0xE000) {
                c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
                i++;
            } else {
                c = 0xFFFD;
            }
        } else if (c >= 0xD800 && c < 0xE000) {
            c = 0xFFFD;
        }
        if (c < 0x80) {
            s[o++] = (char)c;
        } else if (c < 0x800) {
            s[o++] = (char)(0xC0 | c >> 6);
            s[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            s[o++] = (char)(0xE0 | c >> 12);
            s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            s[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            /* 4 bytes: uses two of the 3 per unit reserved for the pair */
            s[o++] = (char)(0xF0 | c >> 18);
            s[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            s[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    s[o] = 0;
    *outlen = o;
    return s;
}

static double as_double(int64_t v)
{
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static int ptu_open(weir_tag_reader *r, char *err, size_t errlen)
{
    const uint8_t *d = r->data;
    size_t len = r->len;
    if (len < 16 || memcmp(d, "PQTTTR", 6) != 0) {
        int trunc = len >= 6 && !memcmp(d, "PQTTTR", 6);
        char magic[9] = {0};
        for (size_t k = 0; k < 8 && k < len; k++)
            magic[k] = (d[k] >= 0x20 && d[k] < 0x7F) ? (char)d[k] : '.';
        if (trunc)
            tagi_err(r, len, err, errlen,
                     "file ends inside the PTU magic and version (16 bytes expected)");
        else if (len >= 2 && !memcmp(d, "PQ", 2))
            tagi_err(r, 0, err, errlen,
                     "a PicoQuant unified file but not TTTR (magic \"%s\"): only PTU time tags "
                     "are read",
                     magic);
        else
            tagi_err(r, 0, err, errlen, "expected the PTU magic \"PQTTTR\" (found \"%s\")", magic);
        return trunc ? WEIR_ETRUNCATED : WEIR_EFORMAT;
    }
    char ver[9];
    memcpy(ver, d + 8, 8);
    ver[8] = 0;
    tagi_add_tag(r, "Version", -1, WEIR_TAGV_STRING, ver, strlen(ver), 8);
    uint64_t off = 16;
    int ended = 0;
    while (!ended) {
        if (len - off < 48) {
            tagi_err(r, off, err, errlen,
                     "header ends before \"Header_End\": expected a 48-byte tag, %llu bytes left",
                     (unsigned long long)(len - off));
            return WEIR_ETRUNCATED;
        }
        char name[33];
        memcpy(name, d + off, 32);
        name[32] = 0;
        int32_t idx = (int32_t)tagi_u32(d + off + 32);
        uint32_t typ = tagi_u32(d + off + 36);
        int64_t val = (int64_t)tagi_u64(d + off + 40);
        uint64_t toff = off;
        off += 48;
        weir_tag_header_tag *t = NULL;
        switch (typ) {
        case TY_EMPTY8:
            t = tagi_add_tag(r, name, idx, WEIR_TAGV_EMPTY, NULL, 0, toff);
            if (!strcmp(name, "Header_End")) ended = 1;
            break;
        case TY_BOOL8:
        case TY_INT8:
        case TY_BITSET64:
        case TY_COLOR8:
            t = tagi_add_tag(r, name, idx,
                             typ == TY_BOOL8      ? WEIR_TAGV_BOOL
                             : typ == TY_INT8     ? WEIR_TAGV_INT
                             : typ == TY_BITSET64 ? WEIR_TAGV_BITSET
                                                  : WEIR_TAGV_COLOR,
                             NULL, 0, toff);
            if (t) t->i = typ == TY_BOOL8 ? (val != 0) : val;
            break;
        case TY_FLOAT8:
        case TY_DATETIME:
            t = tagi_add_tag(r, name, idx, typ == TY_FLOAT8 ? WEIR_TAGV_FLOAT : WEIR_TAGV_DATETIME,
                             NULL, 0, toff);
            if (t) t->f = as_double(val);
            break;
        case TY_FLOAT8ARRAY:
        case TY_ANSISTRING:
        case TY_WIDESTRING:
        case TY_BLOB:
        case TY_INT8ARRAY: {
            if (val < 0 || (uint64_t)val > len - off) {
                tagi_err(r, toff, err, errlen,
                         "tag \"%s\" declares %lld payload bytes but %llu are left in the file",
                         name, (long long)val, (unsigned long long)(len - off));
                return WEIR_ETRUNCATED;
            }
            const uint8_t *pl = d + off;
            size_t n = (size_t)val;
            if (typ == TY_ANSISTRING) {
                size_t sl = strnlen((const char *)pl, n);
                t = tagi_add_tag(r, name, idx, WEIR_TAGV_STRING, pl, sl, toff);
            } else if (typ == TY_WIDESTRING) {
                size_t sl = 0;
                char *s = utf16_to_utf8(pl, n, &sl);
                if (!s) return WEIR_ENOMEM;
                t = tagi_add_tag(r, name, idx, WEIR_TAGV_STRING, s, sl, toff);
                free(s);
            } else {
                t = tagi_add_tag(r, name, idx,
                                 typ == TY_FLOAT8ARRAY ? WEIR_TAGV_FLOAT_ARRAY : WEIR_TAGV_BLOB, pl,
                                 n, toff);
            }
            off += n;
            break;
        }
        default:
            tagi_err(r, toff + 36, err, errlen,
                     "tag \"%s\" has unknown type 0x%08X: expected one of the PTU tag types", name,
                     typ);
            return WEIR_EFORMAT;
        }
        if (!t) return WEIR_ENOMEM;
    }
    r->info.header_bytes = off;
    r->info.record_bytes = 4;

    const weir_tag_header_tag *rt = tagi_find(r, "TTResultFormat_TTTRRecType");
    const weir_tag_header_tag *gr = tagi_find(r, "MeasDesc_GlobalResolution");
    if (!rt || rt->type != WEIR_TAGV_INT) {
        tagi_err(r, off, err, errlen, "header has no TTResultFormat_TTTRRecType (Int8) tag");
        return WEIR_EFORMAT;
    }
    if (!gr || gr->type != WEIR_TAGV_FLOAT || !(gr->f > 0)) {
        tagi_err(r, gr ? gr->offset : off, err, errlen,
                 "header has no positive MeasDesc_GlobalResolution (Float8) tag");
        return WEIR_EFORMAT;
    }
    size_t k;
    for (k = 0; k < sizeof rectypes / sizeof rectypes[0]; k++)
        if (rectypes[k].code == (uint32_t)rt->i) break;
    if (k == sizeof rectypes / sizeof rectypes[0]) {
        tagi_err(r, rt->offset, err, errlen,
                 "record type 0x%08llX is not a known PicoHarp/HydraHarp/TimeHarp 260/"
                 "MultiHarp T2 or T3 type",
                 (unsigned long long)rt->i);
        return WEIR_EUNSUPPORTED;
    }
    const weir_tag_header_tag *bpr = tagi_find(r, "TTResultFormat_BitsPerRecord");
    if (bpr && bpr->type == WEIR_TAGV_INT && bpr->i != 32) {
        tagi_err(r, bpr->offset, err, errlen, "expected 32 bits per record, the header says %lld",
                 (long long)bpr->i);
        return WEIR_EUNSUPPORTED;
    }
    r->rectype = rectypes[k].code;
    r->st[0] = rectypes[k].layout;
    r->st[1] = rectypes[k].v1;
    snprintf(r->format_name, sizeof r->format_name, "PicoQuant PTU %s", rectypes[k].name);
    weir_tag_info *in = &r->info;
    in->t3 = rectypes[k].layout == L_PHT3 || rectypes[k].layout == L_HHT3;
    in->tick = tagi_res_from_seconds(gr->f);
    if (in->t3) {
        const weir_tag_header_tag *res = tagi_find(r, "MeasDesc_Resolution");
        if (!res || res->type != WEIR_TAGV_FLOAT || !(res->f > 0)) {
            tagi_err(r, res ? res->offset : off, err, errlen,
                     "T3 header has no positive MeasDesc_Resolution (Float8) tag");
            return WEIR_EFORMAT;
        }
        in->resolution_s = res->f;
        in->sync_period_s = gr->f;
        in->micro = tagi_res_from_seconds(res->f);
    } else {
        in->resolution_s = gr->f;
    }
    const weir_tag_header_tag *nr = tagi_find(r, "TTResult_NumberOfRecords");
    if (nr && nr->type == WEIR_TAGV_INT && nr->i > 0) in->nrecords_header = (uint64_t)nr->i;
    switch (rectypes[k].layout) {
    case L_PHT2:
        r->wrap = PHT2_WRAP;
        break;
    case L_PHT3:
        r->wrap = PHT3_WRAP;
        break;
    case L_HHT2:
        r->wrap = rectypes[k].v1 ? HHT2_WRAP_V1 : HHT2_WRAP;
        break;
    default:
        r->wrap = HHT3_WRAP;
        break;
    }
    return 0;
}

#define EV(t, m, c, k, b)                                                                          \
    ((weir_tag){.time = (t), .micro = (m), .channel = (c), .kind = (k), .bits = (b)})

static long dec_hht2(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->info.header_bytes + r->pos.record * 4;
    uint64_t i = r->pos.record;
    int64_t base = r->pos.tick_base;
    const weir_tag_res tick = r->info.tick;
    const int v1 = (int)r->st[1];
    uint64_t nph = 0, nsy = 0, nmk = 0, nov = 0, nwr = 0, ner = 0;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint32_t w = tagi_u32(p);
        p += 4;
        i++;
        uint32_t tt = w & 0x1FFFFFFu;
        unsigned ch = (w >> 25) & 63u;
        if (!(w >> 31)) {
            out[n++] =
                EV(tagi_scale(tagi_add(base, tt), tick), -1, (int16_t)(ch + 1), WEIR_TAG_PHOTON, 0);
            nph++;
        } else if (ch == 63) {
            int64_t c = v1 ? 1 : (tt ? tt : 1);
            base = tagi_add(base, c * (v1 ? HHT2_WRAP_V1 : HHT2_WRAP));
            nov++;
            nwr += (uint64_t)c;
        } else if (ch == 0) {
            out[n++] = EV(tagi_scale(tagi_add(base, tt), tick), -1, 0, WEIR_TAG_SYNC, 0);
            nsy++;
        } else if (ch <= 15) {
            out[n++] = EV(tagi_scale(tagi_add(base, tt), tick), -1, tagi_marker_channel(ch),
                          WEIR_TAG_MARKER, (uint8_t)ch);
            nmk++;
        } else {
            ner++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    r->counts.photons += nph, r->counts.syncs += nsy, r->counts.markers += nmk;
    r->counts.overflows += nov, r->counts.overflow_wraps += nwr, r->counts.errors += ner;
    return (long)n;
}

int tagi_hht2_get(const weir_tag_reader *r, tagi_hht2_view *v)
{
    if (r->fmt != &weir_tagfmt_ptu && r->fmt != &weir_tagfmt_pq_legacy) return 0;
    if (r->st[0] != L_HHT2 || r->info.tick.den != 1 || r->info.record_bytes != 4) return 0;
    v->first = r->pos.record;
    v->lim = r->end < r->info.nrecords ? r->end : r->info.nrecords;
    if (v->lim < v->first) v->lim = v->first;
    v->rec = r->data + r->info.header_bytes + r->pos.record * 4;
    v->tick_base = r->pos.tick_base;
    v->tick_ps = r->info.tick.num;
    v->v1 = (int)r->st[1];
    v->wrap = v->v1 ? HHT2_WRAP_V1 : HHT2_WRAP;
    return 1;
}

void tagi_hht2_commit(weir_tag_reader *r, uint64_t record, int64_t tick_base,
                      const weir_tag_counts *add)
{
    r->pos.record = record;
    r->pos.tick_base = tick_base;
    r->counts.photons += add->photons, r->counts.syncs += add->syncs;
    r->counts.markers += add->markers, r->counts.overflows += add->overflows;
    r->counts.overflow_wraps += add->overflow_wraps, r->counts.errors += add->errors;
}

static long dec_hht3(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->info.header_bytes + r->pos.record * 4;
    uint64_t i = r->pos.record;
    int64_t base = r->pos.tick_base;
    const weir_tag_res tick = r->info.tick, mres = r->info.micro;
    const int v1 = (int)r->st[1];
    uint64_t nph = 0, nmk = 0, nov = 0, nwr = 0, ner = 0;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint32_t w = tagi_u32(p);
        p += 4;
        i++;
        uint32_t nsync = w & 0x3FFu, dtime = (w >> 10) & 0x7FFFu;
        unsigned ch = (w >> 25) & 63u;
        if (!(w >> 31)) {
            out[n++] = EV(tagi_scale2(tagi_add(base, nsync), tick, dtime, mres), (int32_t)dtime,
                          (int16_t)ch, WEIR_TAG_PHOTON, 0);
            nph++;
        } else if (ch == 63) {
            int64_t c = (v1 || !nsync) ? 1 : nsync;
            base = tagi_add(base, c * HHT3_WRAP);
            nov++;
            nwr += (uint64_t)c;
        } else if (ch >= 1 && ch <= 15) {
            out[n++] = EV(tagi_scale(tagi_add(base, nsync), tick), -1, tagi_marker_channel(ch),
                          WEIR_TAG_MARKER, (uint8_t)ch);
            nmk++;
        } else {
            ner++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    r->counts.photons += nph, r->counts.markers += nmk;
    r->counts.overflows += nov, r->counts.overflow_wraps += nwr, r->counts.errors += ner;
    return (long)n;
}

static long dec_pht2(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->info.header_bytes + r->pos.record * 4;
    uint64_t i = r->pos.record;
    int64_t base = r->pos.tick_base;
    const weir_tag_res tick = r->info.tick;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint32_t w = tagi_u32(p);
        p += 4;
        i++;
        unsigned ch = w >> 28;
        uint32_t tt = w & 0x0FFFFFFFu;
        if (ch == 15) {
            unsigned m = tt & 0xF;
            if (!m) {
                base = tagi_add(base, PHT2_WRAP);
                r->counts.overflows++;
                r->counts.overflow_wraps++;
            } else {
                /* the low 4 bits hold the marker bits, not time */
                out[n++] = EV(tagi_scale(tagi_add(base, tt & ~0xFu), tick), -1,
                              tagi_marker_channel(m), WEIR_TAG_MARKER, (uint8_t)m);
                r->counts.markers++;
            }
        } else if (ch <= 4) {
            out[n++] = EV(tagi_scale(tagi_add(base, tt), tick), -1, (int16_t)ch,
                          ch ? WEIR_TAG_PHOTON : WEIR_TAG_SYNC, 0);
            if (ch)
                r->counts.photons++;
            else
                r->counts.syncs++;
        } else {
            r->counts.errors++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    return (long)n;
}

static long dec_pht3(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->info.header_bytes + r->pos.record * 4;
    uint64_t i = r->pos.record;
    int64_t base = r->pos.tick_base;
    const weir_tag_res tick = r->info.tick, mres = r->info.micro;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint32_t w = tagi_u32(p);
        p += 4;
        i++;
        unsigned ch = w >> 28;
        uint32_t dtime = (w >> 16) & 0xFFFu, nsync = w & 0xFFFFu;
        if (ch == 15) {
            if (!dtime) {
                base = tagi_add(base, PHT3_WRAP);
                r->counts.overflows++;
                r->counts.overflow_wraps++;
            } else {
                unsigned m = dtime & 0xF;
                out[n++] = EV(tagi_scale(tagi_add(base, nsync), tick), -1, tagi_marker_channel(m),
                              WEIR_TAG_MARKER, (uint8_t)m);
                r->counts.markers++;
            }
        } else if (ch >= 1 && ch <= 4) {
            out[n++] = EV(tagi_scale2(tagi_add(base, nsync), tick, dtime, mres), (int32_t)dtime,
                          (int16_t)ch, WEIR_TAG_PHOTON, 0);
            r->counts.photons++;
        } else {
            r->counts.errors++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    return (long)n;
}

long tagi_ptu_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    switch (r->st[0]) {
    case L_PHT2:
        return dec_pht2(r, lim, out, cap);
    case L_PHT3:
        return dec_pht3(r, lim, out, cap);
    case L_HHT2:
        return dec_hht2(r, lim, out, cap);
    default:
        return dec_hht3(r, lim, out, cap);
    }
}

/* ---- encoding ---- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} growbuf;

static int gb_put(growbuf *g, const void *p, size_t n)
{
    if (g->n + n > g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 4096;
        while (nc < g->n + n)
            nc *= 2;
        uint8_t *b = realloc(g->b, nc);
        if (!b) return WEIR_ENOMEM;
        g->b = b;
        g->cap = nc;
    }
    memcpy(g->b + g->n, p, n);
    g->n += n;
    return 0;
}

static int gb_rec(growbuf *g, uint32_t w)
{
    uint8_t b[4];
    tagi_put32(b, w);
    return gb_put(g, b, 4);
}

static int put_tag(growbuf *g, const char *name, int32_t idx, uint32_t typ, int64_t val,
                   const void *payload, size_t plen)
{
    uint8_t h[48] = {0};
    strncpy((char *)h, name, 32);
    tagi_put32(h + 32, (uint32_t)idx);
    tagi_put32(h + 36, typ);
    size_t padded = (plen + 7) / 8 * 8;
    tagi_put64(h + 40, payload ? (uint64_t)padded : (uint64_t)val);
    int rc = gb_put(g, h, 48);
    if (rc || !payload) return rc;
    rc = gb_put(g, payload, plen);
    static const uint8_t zeros[8] = {0};
    if (!rc && padded > plen) rc = gb_put(g, zeros, padded - plen);
    return rc;
}

static int64_t dbits(double d)
{
    int64_t v;
    memcpy(&v, &d, sizeof v);
    return v;
}

/* Appends the overflow records needed so that `t - *base` fits the field. */
static int ptu_overflows(growbuf *g, int layout, int v1, int64_t t, int64_t *base, uint64_t *nrec)
{
    int64_t wrap = layout == L_PHT2   ? PHT2_WRAP
                   : layout == L_PHT3 ? PHT3_WRAP
                   : layout == L_HHT2 ? (v1 ? HHT2_WRAP_V1 : HHT2_WRAP)
                                      : HHT3_WRAP;
    while (t - *base >= wrap) {
        int64_t c = (t - *base) / wrap;
        uint32_t w;
        if (layout == L_PHT2) {
            c = 1, w = 0xF0000000u;
        } else if (layout == L_PHT3) {
            c = 1, w = 0xF0000000u;
        } else if (v1) {
            c = 1, w = 0xFE000000u;
        } else if (layout == L_HHT2) {
            if (c > 0x1FFFFFF) c = 0x1FFFFFF;
            w = 0xFE000000u | (uint32_t)c;
        } else {
            if (c > 0x3FF) c = 0x3FF;
            w = 0xFE000000u | (uint32_t)c;
        }
        int rc = gb_rec(g, w);
        if (rc) return rc;
        (*nrec)++;
        *base += c * wrap;
    }
    return 0;
}

static int ptu_encode(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                      char *err, size_t errlen)
{
    uint32_t code = o->variant ? o->variant : 0x01010204u;
    size_t k;
    for (k = 0; k < sizeof rectypes / sizeof rectypes[0]; k++)
        if (rectypes[k].code == code) break;
    if (k == sizeof rectypes / sizeof rectypes[0]) {
        snprintf(err, errlen, "PTU encoder: unknown record type 0x%08X", code);
        return WEIR_EINVAL;
    }
    int layout = rectypes[k].layout, v1 = rectypes[k].v1;
    int t3 = layout == L_PHT3 || layout == L_HHT3;
    double res_s =
        o->resolution_s > 0 ? o->resolution_s : (t3 ? (layout == L_PHT3 ? 4e-12 : 16e-12) : 1e-12);
    double sync_s = o->sync_period_s > 0 ? o->sync_period_s : 12.5e-9;
    weir_tag_res tick = tagi_res_from_seconds(t3 ? sync_s : res_s);
    weir_tag_res mres = tagi_res_from_seconds(res_s);
    growbuf rec = {0}, hdr = {0};
    int rc = 0;
    uint64_t nrec = 0;
    int64_t base = 0;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        int64_t t;
        int marker = e->kind == WEIR_TAG_MARKER;
        if (t3 && !marker) {
            if (e->micro < 0 || e->micro > (layout == L_PHT3 ? 0xFFF : 0x7FFF)) {
                snprintf(err, errlen, "PTU encoder: event %zu: micro-time %d does not fit", i,
                         e->micro);
                rc = WEIR_ERANGE;
                goto out;
            }
            t = tagi_unscale(e->time - tagi_scale(e->micro, mres), tick);
        } else {
            t = tagi_unscale(e->time, tick);
        }
        if (t < base) {
            snprintf(err, errlen,
                     "PTU encoder: event %zu at %lld ps comes before an earlier overflow base "
                     "(events must be sorted)",
                     i, (long long)e->time);
            rc = WEIR_EINVAL;
            goto out;
        }
        rc = ptu_overflows(&rec, layout, v1, t, &base, &nrec);
        if (rc) goto out;
        uint32_t d = (uint32_t)(t - base), w = 0;
        int bad = 0;
        switch (layout) {
        case L_HHT2:
            if (marker)
                w = 0x80000000u | (uint32_t)(e->bits & 15) << 25 | d, bad = !(e->bits & 15);
            else if (e->kind == WEIR_TAG_SYNC)
                w = 0x80000000u | d;
            else
                w = (uint32_t)(e->channel - 1) << 25 | d, bad = e->channel < 1 || e->channel > 64;
            break;
        case L_HHT3:
            if (marker)
                w = 0x80000000u | (uint32_t)(e->bits & 15) << 25 | d, bad = !(e->bits & 15);
            else
                w = (uint32_t)e->channel << 25 | (uint32_t)e->micro << 10 | d,
                bad = e->channel < 0 || e->channel > 63 || e->kind != WEIR_TAG_PHOTON;
            break;
        case L_PHT2:
            if (marker)
                w = 0xF0000000u | (d & ~0xFu) | (e->bits & 15), bad = !(e->bits & 15);
            else
                w = (uint32_t)e->channel << 28 | d, bad = e->channel < 0 || e->channel > 4;
            break;
        default:
            if (marker)
                w = 0xF0000000u | (uint32_t)(e->bits & 15) << 16 | d, bad = !(e->bits & 15);
            else
                w = (uint32_t)e->channel << 28 | (uint32_t)e->micro << 16 | d,
                bad = e->channel < 1 || e->channel > 4;
            break;
        }
        if (bad) {
            snprintf(err, errlen,
                     "PTU encoder: event %zu (kind %u, channel %d, bits %u) cannot be written as "
                     "%s",
                     i, e->kind, e->channel, e->bits, rectypes[k].name);
            rc = WEIR_ERANGE;
            goto out;
        }
        rc = gb_rec(&rec, w);
        if (rc) goto out;
        nrec++;
    }
    /* the header: every tag type appears once so readers get exercised */
    if ((rc = gb_put(&hdr,
                     "PQTTTR\0\0"
                     "1.0.00\0\0",
                     16)))
        goto out;
    static const char guid[] = "{00000000-0000-0000-0000-0000000000AA}";
    static const uint8_t wide[] = {'w', 0, 'e', 0, 'i', 0, 'r', 0, 0xB5, 0x03, 0, 0}; /* "weirε" */
    double farr[3] = {1.5, -2.25, 1e-12};
    uint8_t farrb[24];
    for (int j = 0; j < 3; j++)
        tagi_put64(farrb + 8 * j, (uint64_t)dbits(farr[j]));
    static const uint8_t blob[5] = {1, 2, 3, 4, 5};
    if ((rc = put_tag(&hdr, "File_GUID", -1, TY_ANSISTRING, 0, guid, sizeof guid))) goto out;
    if ((rc = put_tag(&hdr, "File_CreatingTime", -1, TY_DATETIME, dbits(45000.5), NULL, 0)))
        goto out;
    if ((rc = put_tag(&hdr, "File_Comment", -1, TY_WIDESTRING, 0, wide, sizeof wide))) goto out;
    if ((rc = put_tag(&hdr, "CreatorSW_Name", -1, TY_ANSISTRING, 0, "weir", 5))) goto out;
    if ((rc = put_tag(&hdr, "Fast_Load_End", -1, TY_EMPTY8, 0, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "Weir_FloatArray", -1, TY_FLOAT8ARRAY, 0, farrb, sizeof farrb)))
        goto out;
    if ((rc = put_tag(&hdr, "Weir_Blob", -1, TY_BLOB, 0, blob, sizeof blob))) goto out;
    if ((rc = put_tag(&hdr, "HWMarkers_Enabled", 0, TY_BOOL8, -1, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "TTResult_MDescWarningFlags", -1, TY_BITSET64, 5, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "Weir_Color", -1, TY_COLOR8, 0xFF8000, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "Measurement_Mode", -1, TY_INT8, t3 ? 3 : 2, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "MeasDesc_Resolution", -1, TY_FLOAT8, dbits(res_s), NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "MeasDesc_GlobalResolution", -1, TY_FLOAT8, dbits(t3 ? sync_s : res_s),
                      NULL, 0)))
        goto out;
    if (t3 && (rc = put_tag(&hdr, "TTResult_SyncRate", -1, TY_INT8, (int64_t)(1.0 / sync_s + 0.5),
                            NULL, 0)))
        goto out;
    if ((rc = put_tag(&hdr, "TTResult_NumberOfRecords", -1, TY_INT8, (int64_t)nrec, NULL, 0)))
        goto out;
    if ((rc = put_tag(&hdr, "TTResultFormat_TTTRRecType", -1, TY_INT8, code, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "TTResultFormat_BitsPerRecord", -1, TY_INT8, 32, NULL, 0))) goto out;
    if ((rc = put_tag(&hdr, "Header_End", -1, TY_EMPTY8, 0, NULL, 0))) goto out;
    if (fwrite(hdr.b, 1, hdr.n, f) != hdr.n || (rec.n && fwrite(rec.b, 1, rec.n, f) != rec.n)) {
        snprintf(err, errlen, "PTU encoder: write failed");
        rc = WEIR_EIO;
    }
out:
    free(rec.b);
    free(hdr.b);
    return rc;
}

const weir_tag_fmt weir_tagfmt_ptu = {WEIR_TAGFMT_PTU, "PicoQuant PTU", ptu_open, tagi_ptu_decode,
                                      ptu_encode};
