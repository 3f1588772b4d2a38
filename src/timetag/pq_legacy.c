/* pq_legacy.c — pre-PTU PicoQuant files: HydraHarp .ht2/.ht3 (format 1.0
 * and 2.0), PicoHarp 300 .pt2/.pt3 (2.0), TimeHarp 200 .t3r (5.0, 6.0) and
 * TimeHarp 200 histogram .thd (6.0, header only).
 *
 * These files are fixed binary C structs, identified by their ASCII Ident
 * ("HydraHarp", "PicoHarp 300", "TimeHarp 200") and FormatVersion; the
 * layouts follow PicoQuant's demo structs as phconvert and libpicoquant
 * transcribe them, and the TimeHarp 6.0 layout was checked against the
 * shared sample files (its header fields land on sensible values and
 * header + 4 × NumberOfRecords equals the file size). Header fields are
 * exposed as header tags. Records reuse the PTU decoders (HydraHarp T2/T3
 * V1 for 1.0 files, V2 for 2.0; PicoHarp T2/T3), except TimeHarp 200's
 * T3R words: TimeTag bits 0..15 (in TTTRGlobclock ns units, wrapping at
 * 65536), Data 16..27 (the TCSPC bin), Route 28..29, Valid 30; an invalid
 * record with Data bit 11 is an overflow, otherwise its low 3 Data bits are
 * markers. Units: HydraHarp T3 sync period = 1/SyncRate, micro = the
 * Resolution field (ps); HydraHarp T2 tick = BaseResolution (ps); PicoHarp
 * T3 sync = 1/InpRate0, micro = Resolution (ns, float); PicoHarp T2 tick =
 * 4 ps; TimeHarp tick = TTTRGlobclock (ns), micro = Resolution (ns, float).
 * The .pt2/.pt3 and TimeHarp 200 paths have no sample with an independent
 * decode here; .thd files have no time tags (0 records). */
#include "tags_internal.h"

#include "weir/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { F_STR, F_I32, F_U64, F_F64, F_F32 } ftype;

static int32_t rd_i32(const weir_tag_reader *r, size_t off)
{
    return (int32_t)tagi_u32(r->data + off);
}

/* adds a header field as a tag; the caller has checked the header size */
static int field(weir_tag_reader *r, const char *name, size_t off, ftype t, size_t n)
{
    const uint8_t *p = r->data + off;
    weir_tag_header_tag *tag;
    switch (t) {
    case F_STR:
        tag = tagi_add_tag(r, name, -1, WEIR_TAGV_STRING, p, strnlen((const char *)p, n), off);
        break;
    case F_I32:
        tag = tagi_add_tag(r, name, -1, WEIR_TAGV_INT, NULL, 0, off);
        if (tag) tag->i = (int32_t)tagi_u32(p);
        break;
    case F_U64:
        tag = tagi_add_tag(r, name, -1, WEIR_TAGV_INT, NULL, 0, off);
        if (tag) tag->i = (int64_t)tagi_u64(p);
        break;
    case F_F64: {
        tag = tagi_add_tag(r, name, -1, WEIR_TAGV_FLOAT, NULL, 0, off);
        uint64_t v = tagi_u64(p);
        if (tag) memcpy(&tag->f, &v, 8);
        break;
    }
    default: {
        tag = tagi_add_tag(r, name, -1, WEIR_TAGV_FLOAT, NULL, 0, off);
        uint32_t v = tagi_u32(p);
        float f;
        memcpy(&f, &v, 4);
        if (tag) tag->f = f;
        break;
    }
    }
    return tag ? 0 : WEIR_ENOMEM;
}

/* the shortest decimal that reads back as the same float32, in seconds
 * (`scale` s per unit), as an exact ps fraction */
static weir_tag_res res_from_f32(float f, double scale, double *seconds)
{
    char buf[48];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    double d = strtod(buf, NULL);
    *seconds = d * scale;
    /* d * 1e-9: shift the decimal exponent rather than multiply */
    char buf2[64];
    if (scale == 1e-9) {
        char *e = strchr(buf, 'e');
        int ex = e ? atoi(e + 1) : 0;
        if (e) *e = 0;
        snprintf(buf2, sizeof buf2, "%se%d", buf, ex - 9);
        return tagi_res_from_seconds(strtod(buf2, NULL));
    }
    return tagi_res_from_seconds(*seconds);
}

static int need(weir_tag_reader *r, size_t n, const char *what, char *err, size_t errlen)
{
    if (r->len >= n) return 0;
    tagi_err(r, r->len, err, errlen, "file ends inside the %s header (%zu bytes expected)", what,
             n);
    return WEIR_ETRUNCATED;
}

static int common_text(weir_tag_reader *r)
{
    int rc = field(r, "Ident", 0, F_STR, 16);
    if (!rc) rc = field(r, "FormatVersion", 16, F_STR, 6);
    return rc;
}

static int open_hydraharp(weir_tag_reader *r, char *err, size_t errlen)
{
    int rc = need(r, 696, "HydraHarp", err, errlen);
    if (rc) return rc;
    const char *ver = (const char *)r->data + 16;
    int v1 = !strncmp(ver, "1.0", 3);
    if (!v1 && strncmp(ver, "2.0", 3) != 0) {
        tagi_err(r, 16, err, errlen, "HydraHarp FormatVersion \"%.6s\": expected 1.0 or 2.0", ver);
        return WEIR_EUNSUPPORTED;
    }
    static const struct {
        const char *n;
        size_t off;
        ftype t;
        size_t len;
    } f[] = {{"CreatorName", 22, F_STR, 18},     {"CreatorVersion", 40, F_STR, 12},
             {"FileTime", 52, F_STR, 18},        {"Comment", 72, F_STR, 256},
             {"NumberOfCurves", 328, F_I32, 0},  {"BitsPerRecord", 332, F_I32, 0},
             {"ActiveCurve", 336, F_I32, 0},     {"MeasurementMode", 340, F_I32, 0},
             {"SubMode", 344, F_I32, 0},         {"Binning", 348, F_I32, 0},
             {"Resolution_ps", 352, F_F64, 0},   {"Offset", 360, F_I32, 0},
             {"Tacq_ms", 364, F_I32, 0},         {"HardwareIdent", 536, F_STR, 16},
             {"HardwarePartNo", 552, F_STR, 8},  {"HardwareSerial", 560, F_I32, 0},
             {"nModulesPresent", 564, F_I32, 0}, {"BaseResolution_ps", 648, F_F64, 0},
             {"InputsEnabled", 656, F_U64, 0},   {"InpChansPresent", 664, F_I32, 0},
             {"RefClockSource", 668, F_I32, 0},  {"ExtDevices", 672, F_I32, 0},
             {"MarkerSettings", 676, F_I32, 0},  {"SyncDivider", 680, F_I32, 0},
             {"SyncCFDLevel", 684, F_I32, 0},    {"SyncCFDZeroCross", 688, F_I32, 0},
             {"SyncOffset", 692, F_I32, 0}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        if ((rc = field(r, f[k].n, f[k].off, f[k].t, f[k].len))) return rc;
    int32_t nin = rd_i32(r, 664);
    if (nin < 0 || nin > 1024) {
        tagi_err(r, 664, err, errlen, "InpChansPresent %d: expected 0..1024", nin);
        return WEIR_EFORMAT;
    }
    size_t tt = 696 + 20 * (size_t)nin;
    if ((rc = need(r, tt + 24, "HydraHarp TTTR", err, errlen))) return rc;
    if ((rc = field(r, "SyncRate", tt, F_I32, 0)) ||
        (rc = field(r, "StopAfter", tt + 4, F_I32, 0)) ||
        (rc = field(r, "StopReason", tt + 8, F_I32, 0)) ||
        (rc = field(r, "ImgHdrSize", tt + 12, F_I32, 0)) ||
        (rc = field(r, "NumberOfRecords", tt + 16, F_U64, 0)))
        return rc;
    int32_t img = rd_i32(r, tt + 12);
    if (img < 0 || img > (1 << 24)) {
        tagi_err(r, tt + 12, err, errlen, "ImgHdrSize %d is not plausible", img);
        return WEIR_EFORMAT;
    }
    r->info.header_bytes = tt + 24 + 4 * (uint64_t)img;
    r->info.record_bytes = 4;
    r->info.nrecords_header = tagi_u64(r->data + tt + 16);
    int32_t mode = rd_i32(r, 340), bits = rd_i32(r, 332);
    if (bits != 32 || (mode != 2 && mode != 3)) {
        tagi_err(r, 332, err, errlen,
                 "BitsPerRecord %d, MeasurementMode %d: expected 32 bits and mode 2 (T2) or 3 (T3)",
                 bits, mode);
        return WEIR_EUNSUPPORTED;
    }
    double res_ps, base_ps;
    uint64_t v = tagi_u64(r->data + 352);
    memcpy(&res_ps, &v, 8);
    v = tagi_u64(r->data + 648);
    memcpy(&base_ps, &v, 8);
    r->st[1] = v1;
    if (mode == 3) {
        int32_t sr = rd_i32(r, tt);
        if (sr <= 0 || !(res_ps > 0)) {
            tagi_err(r, tt, err, errlen, "SyncRate %d / Resolution %g ps: expected positive values",
                     sr, res_ps);
            return WEIR_EFORMAT;
        }
        r->st[0] = L_HHT3;
        r->info.t3 = 1;
        r->info.tick = tagi_res_mul((weir_tag_res){1000000000000LL, 1}, 1, sr);
        r->info.sync_period_s = 1.0 / sr;
        r->info.micro = tagi_res_from_seconds(res_ps * 1e-12);
        r->info.resolution_s = res_ps * 1e-12;
        r->wrap = 1024;
    } else {
        if (!(base_ps > 0)) base_ps = 1;
        r->st[0] = L_HHT2;
        r->info.tick = tagi_res_from_seconds(base_ps * 1e-12);
        r->info.resolution_s = base_ps * 1e-12;
        r->wrap = v1 ? 33552000 : 33554432;
    }
    snprintf(r->format_name, sizeof r->format_name, "PicoQuant HydraHarp %.3s .%s", ver,
             mode == 3 ? "ht3" : "ht2");
    return 0;
}

static int open_picoharp(weir_tag_reader *r, char *err, size_t errlen)
{
    int rc = need(r, 728, "PicoHarp 300", err, errlen);
    if (rc) return rc;
    static const struct {
        const char *n;
        size_t off;
        ftype t;
        size_t len;
    } f[] = {{"CreatorName", 22, F_STR, 18},     {"CreatorVersion", 40, F_STR, 12},
             {"FileTime", 52, F_STR, 18},        {"Comment", 72, F_STR, 256},
             {"NumberOfCurves", 328, F_I32, 0},  {"BitsPerRecord", 332, F_I32, 0},
             {"RoutingChannels", 336, F_I32, 0}, {"NumberOfBoards", 340, F_I32, 0},
             {"MeasurementMode", 348, F_I32, 0}, {"HardwareIdent", 536, F_STR, 16},
             {"SyncDivider", 564, F_I32, 0},     {"Resolution_ns", 584, F_F32, 0},
             {"InpRate0", 704, F_I32, 0},        {"InpRate1", 708, F_I32, 0},
             {"NumberOfRecords", 720, F_I32, 0}, {"ImgHdrSize", 724, F_I32, 0}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        if ((rc = field(r, f[k].n, f[k].off, f[k].t, f[k].len))) return rc;
    int32_t img = rd_i32(r, 724), mode = rd_i32(r, 348), nrec = rd_i32(r, 720);
    if (img < 0 || img > (1 << 24) || (mode != 2 && mode != 3)) {
        tagi_err(r, 724, err, errlen,
                 "ImgHdrSize %d / MeasurementMode %d: expected a T2 or T3 file", img, mode);
        return WEIR_EFORMAT;
    }
    r->info.header_bytes = 728 + 4 * (uint64_t)img;
    r->info.record_bytes = 4;
    r->info.nrecords_header = nrec > 0 ? (uint64_t)nrec : 0;
    if (mode == 3) {
        int32_t sr = rd_i32(r, 704);
        uint32_t fb = tagi_u32(r->data + 584);
        float fres;
        memcpy(&fres, &fb, 4);
        if (sr <= 0 || !(fres > 0)) {
            tagi_err(r, 704, err, errlen,
                     "InpRate0 %d / Resolution %g ns: expected positive values", sr, fres);
            return WEIR_EFORMAT;
        }
        r->st[0] = L_PHT3;
        r->info.t3 = 1;
        r->info.tick = tagi_res_mul((weir_tag_res){1000000000000LL, 1}, 1, sr);
        r->info.sync_period_s = 1.0 / sr;
        r->info.micro = res_from_f32(fres, 1e-9, &r->info.resolution_s);
        r->wrap = 65536;
    } else {
        r->st[0] = L_PHT2;
        r->info.tick = (weir_tag_res){4, 1};
        r->info.resolution_s = 4e-12;
        r->wrap = 210698240;
    }
    snprintf(r->format_name, sizeof r->format_name, "PicoQuant PicoHarp 300 .%s",
             mode == 3 ? "pt3" : "pt2");
    return 0;
}

static int open_timeharp(weir_tag_reader *r, char *err, size_t errlen)
{
    const char *ver = (const char *)r->data + 16;
    int v6 = !strncmp(ver, "6.0", 3);
    if (!v6 && strncmp(ver, "5.0", 3) != 0) {
        tagi_err(r, 16, err, errlen, "TimeHarp 200 version \"%.6s\": expected 5.0 or 6.0", ver);
        return WEIR_EUNSUPPORTED;
    }
    /* 6.0 has CreatorName/CreatorVersion where 5.0 has HardwareVersion,
     * which moves everything after the comment by 24 bytes (d), and a
     * HardwareIdent/HardwareVersion pair before the board fields, another
     * 24 (h) */
    size_t d = v6 ? 24 : 0, h = v6 ? 48 : 0;
    int rc = need(r, 592 + h, "TimeHarp 200", err, errlen);
    if (rc) return rc;
    if (v6) {
        if ((rc = field(r, "CreatorName", 22, F_STR, 18)) ||
            (rc = field(r, "CreatorVersion", 40, F_STR, 12)) ||
            (rc = field(r, "FileTime", 52, F_STR, 18)) ||
            (rc = field(r, "Comment", 72, F_STR, 256)))
            return rc;
    } else {
        if ((rc = field(r, "HardwareVersion", 22, F_STR, 6)) ||
            (rc = field(r, "FileTime", 28, F_STR, 18)) ||
            (rc = field(r, "Comment", 48, F_STR, 256)))
            return rc;
    }
    static const struct {
        const char *n;
        size_t off;
        ftype t;
    } f[] = {{"NumberOfChannels", 304, F_I32},  {"NumberOfCurves", 308, F_I32},
             {"BitsPerChannel", 312, F_I32},    {"RoutingChannels", 316, F_I32},
             {"NumberOfBoards", 320, F_I32},    {"MeasurementMode", 328, F_I32},
             {"RangeNo", 336, F_I32},           {"Offset", 340, F_I32},
             {"AcquisitionTime_ms", 344, F_I32}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        if ((rc = field(r, f[k].n, f[k].off + d, f[k].t, 0))) return rc;
    if ((rc = field(r, "BoardSerial", 516 + h, F_I32, 0)) ||
        (rc = field(r, "Resolution_ns", 536 + h, F_F32, 0)))
        return rc;
    if (v6 && ((rc = field(r, "HardwareIdent", 540, F_STR, 16)) ||
               (rc = field(r, "HardwareVersion", 556, F_STR, 8))))
        return rc;
    int32_t mode = rd_i32(r, 328 + d);
    uint32_t fb = tagi_u32(r->data + 536 + h);
    float fres;
    memcpy(&fres, &fb, 4);
    if (mode != 2) { /* a histogram file (.thd): no time tags */
        r->info.header_bytes = 592 + h;
        r->info.record_bytes = 0;
        if (fres > 0) res_from_f32(fres, 1e-9, &r->info.resolution_s);
        snprintf(r->format_name, sizeof r->format_name,
                 "PicoQuant TimeHarp 200 %.3s histogram (.thd, no time tags)", ver);
        return 0;
    }
    if ((rc = field(r, "TTTRGlobclock_ns", 540 + h, F_I32, 0)) ||
        (rc = field(r, "ExtDevices", 544 + h, F_I32, 0)) ||
        (rc = field(r, "SyncRate", 568 + h, F_I32, 0)) ||
        (rc = field(r, "AverageCFDRate", 572 + h, F_I32, 0)) ||
        (rc = field(r, "StopAfter", 576 + h, F_I32, 0)) ||
        (rc = field(r, "StopReason", 580 + h, F_I32, 0)) ||
        (rc = field(r, "NumberOfRecords", 584 + h, F_I32, 0)) ||
        (rc = field(r, "ImgHdrSize", 588 + h, F_I32, 0)))
        return rc;
    int32_t gclk = rd_i32(r, 540 + h), nrec = rd_i32(r, 584 + h), img = rd_i32(r, 588 + h);
    if (gclk <= 0 || img < 0 || img > (1 << 24) || !(fres > 0)) {
        tagi_err(r, 540 + h, err, errlen,
                 "TTTRGlobclock %d ns, ImgHdrSize %d, Resolution %g ns: expected positive values",
                 gclk, img, fres);
        return WEIR_EFORMAT;
    }
    r->info.header_bytes = 592 + h + 4 * (uint64_t)img;
    r->info.record_bytes = 4;
    r->info.nrecords_header = nrec > 0 ? (uint64_t)nrec : 0;
    r->info.t3 = 1;
    r->info.tick = (weir_tag_res){(int64_t)gclk * 1000, 1};
    r->info.sync_period_s = gclk * 1e-9;
    r->info.micro = res_from_f32(fres, 1e-9, &r->info.resolution_s);
    r->st[0] = L_T3R;
    r->wrap = 65536;
    snprintf(r->format_name, sizeof r->format_name, "PicoQuant TimeHarp 200 %.3s .t3r", ver);
    return 0;
}

static int legacy_open(weir_tag_reader *r, char *err, size_t errlen)
{
    int rc = need(r, 22, "legacy PicoQuant", err, errlen);
    if (rc) return rc;
    if ((rc = common_text(r))) return rc;
    const char *id = (const char *)r->data;
    if (!strncmp(id, "HydraHarp", 9)) return open_hydraharp(r, err, errlen);
    if (!strncmp(id, "PicoHarp 300", 12)) return open_picoharp(r, err, errlen);
    if (!strncmp(id, "TimeHarp 200", 12)) return open_timeharp(r, err, errlen);
    tagi_err(r, 0, err, errlen,
             "Ident \"%.16s\": expected \"HydraHarp\", \"PicoHarp 300\" or \"TimeHarp 200\"", id);
    return WEIR_EFORMAT;
}

static long t3r_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
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
        uint32_t tt = w & 0xFFFFu, data = (w >> 16) & 0xFFFu, route = (w >> 28) & 3u;
        if ((w >> 30) & 1u) {
            out[n++] = (weir_tag){.time = tagi_scale2(tagi_add(base, tt), tick, data, mres),
                                  .micro = (int32_t)data,
                                  .channel = (int16_t)route,
                                  .kind = WEIR_TAG_PHOTON};
            r->counts.photons++;
        } else if (data & 0x800u) {
            base = tagi_add(base, 65536);
            r->counts.overflows++;
            r->counts.overflow_wraps++;
        } else if (data & 7u) {
            out[n++] = (weir_tag){.time = tagi_scale(tagi_add(base, tt), tick),
                                  .micro = -1,
                                  .channel = tagi_marker_channel(data & 7u),
                                  .kind = WEIR_TAG_MARKER,
                                  .bits = (uint8_t)(data & 7u)};
            r->counts.markers++;
        } else {
            r->counts.errors++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    return (long)n;
}

static long legacy_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    if (r->st[0] == L_T3R) return t3r_decode(r, lim, out, cap);
    return tagi_ptu_decode(r, lim, out, cap);
}

const weir_tag_fmt weir_tagfmt_pq_legacy = {WEIR_TAGFMT_PQ_LEGACY, "PicoQuant legacy", legacy_open,
                                            legacy_decode, NULL};
