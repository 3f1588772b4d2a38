/* qutag.c — qutools quTAG files, decode and encode: binary (FORMAT_BINARY,
 * 40-byte header + 10-byte records), raw (FORMAT_RAW: the same records,
 * no header) and compressed (FORMAT_COMPRESSED, 40-byte header + 5-byte
 * records).
 *
 * A binary/raw record is an int64 time in device units (1 ps on the quTAG)
 * followed by a uint16 channel, packed. The header starts 87 B3 91 FA; of
 * the rest only the file size at offset 4 is understood, so the header
 * words are exposed as tags and otherwise not interpreted. A compressed
 * record is a 40-bit little-endian word: time in bits 0..36, channel in
 * bits 37..39. Its time wraps every 2^37 units (0.137 s at 1 ps); ETA does
 * not unwrap it. Here each time is placed in the 2^37 period that brings it
 * nearest to the previous record's unwrapped time, so both wraps and the
 * small backward steps between channels (quTAG streams are not strictly
 * ordered) come out right as long as successive records are less than
 * 2^36 units apart. The unwrap state lives in weir_tag_pos.aux.
 * Uncertain: the unit of compressed records on quTAG models (the quTAU
 * manual states ~81 ps; 1 ps is assumed, as ETA does) and the meaning of
 * the header words at offsets 8..39. Markers (channels 100–104, 200–203)
 * stay ordinary events on those channel numbers, as ETA has them. */
#include "tags_internal.h"

#include "weir/error.h"

#include <string.h>

#define QT_HDR 40
#define QT_MASK ((1LL << 37) - 1)

static const uint8_t qt_magic[4] = {0x87, 0xB3, 0x91, 0xFA};

static int qt_header(weir_tag_reader *r, char *err, size_t errlen)
{
    if (r->len < QT_HDR) {
        tagi_err(r, r->len, err, errlen, "expected a 40-byte quTAG header, the file has %zu bytes",
                 r->len);
        return WEIR_ETRUNCATED;
    }
    if (memcmp(r->data, qt_magic, 4) != 0) {
        tagi_err(r, 0, err, errlen, "expected the quTAG magic 87 B3 91 FA");
        return WEIR_EFORMAT;
    }
    static const char *names[] = {"FileSize", "Header8", "Header12", "Header16", "Header20"};
    for (int k = 0; k < 5; k++) {
        weir_tag_header_tag *t =
            tagi_add_tag(r, names[k], -1, WEIR_TAGV_INT, NULL, 0, (uint64_t)(4 + 4 * k));
        if (!t) return WEIR_ENOMEM;
        t->i = tagi_u32(r->data + 4 + 4 * k);
    }
    if (!tagi_add_tag(r, "Signature", -1, WEIR_TAGV_BLOB, r->data + 24, 16, 24)) return WEIR_ENOMEM;
    r->info.header_bytes = QT_HDR;
    return 0;
}

static void qt_units(weir_tag_reader *r)
{
    r->info.resolution_s = 1e-12;
    r->info.tick = (weir_tag_res){1, 1};
}

static int qt_open_bin(weir_tag_reader *r, char *err, size_t errlen)
{
    int rc = qt_header(r, err, errlen);
    if (rc) return rc;
    r->info.record_bytes = 10;
    qt_units(r);
    snprintf(r->format_name, sizeof r->format_name, "quTAG binary (10-byte records)");
    return 0;
}

static int qt_open_raw(weir_tag_reader *r, char *err, size_t errlen)
{
    r->info.header_bytes = 0;
    r->info.record_bytes = 10;
    qt_units(r);
    snprintf(r->format_name, sizeof r->format_name, "quTAG raw (10-byte records, no header)");
    return 0;
}

static int qt_open_comp(weir_tag_reader *r, char *err, size_t errlen)
{
    int rc = qt_header(r, err, errlen);
    if (rc) return rc;
    r->info.record_bytes = 5;
    qt_units(r);
    snprintf(r->format_name, sizeof r->format_name,
             "quTAG compressed (5-byte records, 37-bit time unwrapped)");
    return 0;
}

static long qt_decode10(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->info.header_bytes + r->pos.record * 10;
    uint64_t i = r->pos.record;
    size_t n = 0;
    while (i < lim && n < cap) {
        int64_t t = (int64_t)tagi_u64(p);
        uint16_t ch = tagi_u16(p + 8);
        p += 10;
        i++;
        if (ch > INT16_MAX) {
            r->counts.errors++;
            continue;
        }
        out[n++] =
            (weir_tag){.time = t, .micro = -1, .channel = (int16_t)ch, .kind = WEIR_TAG_PHOTON};
        r->counts.photons++;
    }
    r->pos.record = i;
    return (long)n;
}

static long qt_decode5(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + QT_HDR + r->pos.record * 5;
    uint64_t i = r->pos.record;
    int64_t last = r->pos.aux[0]; /* unwrapped time of the previous record */
    int have = r->pos.aux[1] != 0;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint64_t w = (uint64_t)tagi_u32(p) | (uint64_t)p[4] << 32;
        p += 5;
        i++;
        int64_t raw = (int64_t)(w & (uint64_t)QT_MASK);
        int64_t t = raw;
        if (have) {
            t = tagi_add(last & ~QT_MASK, raw);
            if (tagi_add(t, -last) > (1LL << 36)) {
                t = tagi_add(t, -(1LL << 37));
            } else if (tagi_add(last, -t) > (1LL << 36)) {
                t = tagi_add(t, 1LL << 37);
                r->counts.overflow_wraps++;
            }
        }
        last = t;
        have = 1;
        out[n++] = (weir_tag){
            .time = t, .micro = -1, .channel = (int16_t)(w >> 37), .kind = WEIR_TAG_PHOTON};
        r->counts.photons++;
    }
    r->pos.record = i;
    r->pos.aux[0] = last;
    r->pos.aux[1] = have;
    r->pos.tick_base = last & ~QT_MASK;
    return (long)n;
}

static int qt_write_header(FILE *f, uint64_t size)
{
    uint8_t h[QT_HDR] = {0};
    memcpy(h, qt_magic, 4);
    tagi_put32(h + 4, (uint32_t)size);
    tagi_put32(h + 8, 2048);
    tagi_put32(h + 12, 115);
    return fwrite(h, 1, QT_HDR, f) == QT_HDR ? 0 : WEIR_EIO;
}

static int qt_enc10(const weir_tag *ev, size_t n, FILE *f, int header, char *err, size_t errlen)
{
    if (header && qt_write_header(f, QT_HDR + 10 * (uint64_t)n)) goto io;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].channel < 0) {
            snprintf(err, errlen, "quTAG encoder: event %zu: negative channel %d", i,
                     ev[i].channel);
            return WEIR_ERANGE;
        }
        uint8_t b[10];
        tagi_put64(b, (uint64_t)ev[i].time);
        b[8] = (uint8_t)ev[i].channel;
        b[9] = (uint8_t)(ev[i].channel >> 8);
        if (fwrite(b, 1, 10, f) != 10) goto io;
    }
    return 0;
io:
    snprintf(err, errlen, "quTAG encoder: write failed");
    return WEIR_EIO;
}

static int qt_enc_bin(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                      char *err, size_t errlen)
{
    return qt_enc10(ev, n, f, 1, err, errlen);
}

static int qt_enc_raw(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                      char *err, size_t errlen)
{
    return qt_enc10(ev, n, f, 0, err, errlen);
}

static int qt_enc_comp(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                       char *err, size_t errlen)
{
    if (qt_write_header(f, QT_HDR + 5 * (uint64_t)n)) goto io;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        int64_t gap = i ? e->time - ev[i - 1].time : e->time;
        if (e->channel < 0 || e->channel > 7 || e->time < 0 || gap >= (1LL << 36) ||
            gap <= -(1LL << 36)) {
            snprintf(err, errlen,
                     "quTAG compressed encoder: event %zu (channel %d, %lld ps): channels are "
                     "0..7 and successive times must be less than 2^36 ps apart",
                     i, e->channel, (long long)e->time);
            return WEIR_ERANGE;
        }
        uint64_t w = ((uint64_t)e->time & (uint64_t)QT_MASK) | (uint64_t)e->channel << 37;
        uint8_t b[5];
        tagi_put32(b, (uint32_t)w);
        b[4] = (uint8_t)(w >> 32);
        if (fwrite(b, 1, 5, f) != 5) goto io;
    }
    return 0;
io:
    snprintf(err, errlen, "quTAG encoder: write failed");
    return WEIR_EIO;
}

const weir_tag_fmt weir_tagfmt_qutag = {WEIR_TAGFMT_QUTAG, "quTAG binary", qt_open_bin, qt_decode10,
                                        qt_enc_bin};
const weir_tag_fmt weir_tagfmt_qutag_raw = {WEIR_TAGFMT_QUTAG_RAW, "quTAG raw", qt_open_raw,
                                            qt_decode10, qt_enc_raw};
const weir_tag_fmt weir_tagfmt_qutag_comp = {WEIR_TAGFMT_QUTAG_COMPRESSED, "quTAG compressed",
                                             qt_open_comp, qt_decode5, qt_enc_comp};
