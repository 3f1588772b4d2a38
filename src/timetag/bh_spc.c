/* bh_spc.c — Becker & Hickl SPC FIFO files (SPC-130/134/140/144/150/154/
 * 160/830, 32-bit records), decode and encode.
 *
 * Layout from B&H's SPC_data_file_structure.h (reference/eta.md §3.4). The
 * first word is a header frame: bits 0..23 the macro-time clock in 0.1 ns
 * units, bits 27..30 the routing bits, bit 26 raw, bit 25 markers. Each
 * record: MT bits 0..11, ROUT 12..15, ADC 16..27, MARK 28, GAP 29, MTOV 30,
 * INVALID 31. INVALID+MTOV without MARK is a multiple-overflow record whose
 * bits 0..27 count the 4096-tick wraps (ETA counts it as one); MTOV on any
 * other record adds one wrap before it — valid photons with MTOV are kept
 * (ETA drops them); INVALID+MARK is a marker (ROUT = marker bits); other
 * INVALID records are counted as errors. The ADC counts backwards (reversed
 * start-stop), so micro = 4095 − ADC. The macro unit is the header clock ×
 * 0.1 ns exactly (ETA takes the clock as ps, 100× off). The micro-time unit
 * is not in the .spc: when a file is opened by path, the .set beside it
 * gives SP_TAC_R / SP_TAC_G / 4096 (the 12-bit ADC field); without it the
 * micro unit is 0 and event times are macro times (micro still reported).
 * GAP (FIFO overflow before this photon) is not an error: photons are
 * kept, as B&H's own software does. */
#include "tags_internal.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>

#define BH_WRAP 4096LL

static int set_value(const char *set, size_t n, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 3 < n; i++) {
        if (set[i] == '[' && !memcmp(set + i + 1, key, kl) && set[i + 1 + kl] == ',') {
            const char *v = memchr(set + i + 2 + kl, ',', n - (i + 2 + kl));
            if (!v) return -1;
            v++;
            size_t k = 0;
            while ((size_t)(v - set) < n && *v != ']' && k + 1 < outlen)
                out[k++] = *v++;
            out[k] = 0;
            return 0;
        }
    }
    return -1;
}

/* the micro-time unit from the .set beside an opened .spc */
static void read_set(weir_tag_reader *r)
{
    if (r->fd < 0) return;
    size_t pl = strlen(r->path);
    char *sp = malloc(pl + 5);
    if (!sp) return;
    memcpy(sp, r->path, pl + 1);
    char *dot = strrchr(sp, '.');
    char *slash = strrchr(sp, '/');
    if (!dot || (slash && dot < slash)) dot = sp + pl;
    strcpy(dot, ".set");
    FILE *f = fopen(sp, "rb");
    if (!f && dot[1]) {
        strcpy(dot, ".SET");
        f = fopen(sp, "rb");
    }
    free(sp);
    if (!f) return;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20), f) : 0;
    fclose(f);
    if (!buf) return;
    char tacr[64], tacg[64], adc[64];
    if (!set_value(buf, n, "SP_TAC_R", tacr, sizeof tacr) &&
        !set_value(buf, n, "SP_TAC_G", tacg, sizeof tacg)) {
        double range = strtod(tacr, NULL);
        long gain = strtol(tacg, NULL, 10);
        weir_tag_header_tag *t = tagi_add_tag(r, "SP_TAC_R", -1, WEIR_TAGV_FLOAT, NULL, 0, 0);
        if (t) t->f = range;
        t = tagi_add_tag(r, "SP_TAC_G", -1, WEIR_TAGV_INT, NULL, 0, 0);
        if (t) t->i = gain;
        if (!set_value(buf, n, "SP_ADC_RE", adc, sizeof adc)) {
            t = tagi_add_tag(r, "SP_ADC_RE", -1, WEIR_TAGV_INT, NULL, 0, 0);
            if (t) t->i = strtol(adc, NULL, 10);
        }
        if (range > 0 && gain > 0) {
            r->info.micro = tagi_res_mul(tagi_res_from_seconds(range), 1, gain * 4096);
            r->info.resolution_s = range / (double)gain / 4096.0;
        }
    }
    free(buf);
}

static int bh_open(weir_tag_reader *r, char *err, size_t errlen)
{
    if (r->len < 4) {
        tagi_err(r, 0, err, errlen,
                 "expected a 4-byte B&H SPC header frame, the file has %zu bytes", r->len);
        return WEIR_ETRUNCATED;
    }
    uint32_t h = tagi_u32(r->data);
    uint32_t clock = h & 0xFFFFFFu;
    if (!clock) {
        tagi_err(r, 0, err, errlen,
                 "B&H SPC header frame 0x%08X: expected a non-zero macro-time clock (bits 0..23, "
                 "0.1 ns units)",
                 h);
        return WEIR_EFORMAT;
    }
    static const struct {
        const char *n;
        int sh, bits;
    } f[] = {{"MacroClock_0.1ns", 0, 24},
             {"HasMarkers", 25, 1},
             {"RawData", 26, 1},
             {"RoutingBits", 27, 4},
             {"HeaderInvalidBit", 31, 1}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        weir_tag_header_tag *t = tagi_add_tag(r, f[k].n, -1, WEIR_TAGV_INT, NULL, 0, 0);
        if (!t) return WEIR_ENOMEM;
        t->i = (h >> f[k].sh) & ((1u << f[k].bits) - 1);
    }
    r->info.header_bytes = 4;
    r->info.record_bytes = 4;
    r->info.t3 = 1;
    r->info.tick = (weir_tag_res){(int64_t)clock * 100, 1};
    r->info.sync_period_s = clock * 1e-10;
    r->info.micro = (weir_tag_res){0, 1};
    read_set(r);
    snprintf(r->format_name, sizeof r->format_name, "Becker & Hickl SPC FIFO 32-bit");
    return 0;
}

static long bh_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + 4 + r->pos.record * 4;
    uint64_t i = r->pos.record;
    int64_t base = r->pos.tick_base;
    const weir_tag_res tick = r->info.tick, mres = r->info.micro;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint32_t w = tagi_u32(p);
        p += 4;
        i++;
        int inv = w >> 31, mtov = (w >> 30) & 1, mark = (w >> 28) & 1;
        if (inv && mtov && !mark) {
            int64_t c = w & 0x0FFFFFFFu;
            base = tagi_add(base, c * BH_WRAP);
            r->counts.overflows++;
            r->counts.overflow_wraps += (uint64_t)c;
            continue;
        }
        if (mtov) {
            base = tagi_add(base, BH_WRAP);
            r->counts.overflow_wraps++;
        }
        uint32_t mt = w & 0xFFFu, rout = (w >> 12) & 0xFu, adc = (w >> 16) & 0xFFFu;
        if (inv && mark) {
            if (!rout) {
                r->counts.errors++;
                continue;
            }
            out[n++] = (weir_tag){.time = tagi_scale(tagi_add(base, mt), tick),
                                  .micro = -1,
                                  .channel = tagi_marker_channel(rout),
                                  .kind = WEIR_TAG_MARKER,
                                  .bits = (uint8_t)rout};
            r->counts.markers++;
        } else if (inv) {
            r->counts.errors++;
        } else {
            int32_t micro = 4095 - (int32_t)adc;
            out[n++] = (weir_tag){.time = tagi_scale2(tagi_add(base, mt), tick, micro, mres),
                                  .micro = micro,
                                  .channel = (int16_t)rout,
                                  .kind = WEIR_TAG_PHOTON};
            r->counts.photons++;
        }
    }
    r->pos.record = i;
    r->pos.tick_base = base;
    return (long)n;
}

static int bh_encode(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                     char *err, size_t errlen)
{
    double res = o->resolution_s > 0 ? o->resolution_s : 9.5e-9;
    int64_t clock = (int64_t)(res / 1e-10 + 0.5);
    if (clock <= 0 || clock > 0xFFFFFF) {
        snprintf(err, errlen, "B&H encoder: macro clock %g s is not 1..0xFFFFFF × 0.1 ns", res);
        return WEIR_ERANGE;
    }
    weir_tag_res tick = {clock * 100, 1};
    uint8_t b[4];
    tagi_put32(b, 0x80000000u | 1u << 25 | (uint32_t)clock);
    if (fwrite(b, 1, 4, f) != 4) goto io;
    int64_t base = 0;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        int64_t t = tagi_unscale(e->time, tick);
        int marker = e->kind == WEIR_TAG_MARKER;
        if (t < base || (marker ? (e->bits & 15) == 0
                                : (e->channel < 0 || e->channel > 15 || e->micro < 0 ||
                                   e->micro > 4095 || e->kind != WEIR_TAG_PHOTON))) {
            snprintf(err, errlen,
                     "B&H encoder: event %zu (kind %u, channel %d, micro %d, %lld ps) cannot be "
                     "written (unsorted, or out of range)",
                     i, e->kind, e->channel, e->micro, (long long)e->time);
            return WEIR_ERANGE;
        }
        uint32_t flags = 0;
        int64_t c = (t - base) / BH_WRAP;
        if (c == 1) {
            flags |= 1u << 30; /* MTOV on the record itself */
            base = tagi_add(base, BH_WRAP);
        } else if (c > 1) {
            while (c > 0) {
                int64_t k = c > 0x0FFFFFFF ? 0x0FFFFFFF : c;
                tagi_put32(b, 0xC0000000u | (uint32_t)k);
                if (fwrite(b, 1, 4, f) != 4) goto io;
                base = tagi_add(base, k * BH_WRAP);
                c -= k;
            }
        }
        uint32_t mt = (uint32_t)(t - base);
        uint32_t w = marker ? (0x90000000u | (uint32_t)(e->bits & 15) << 12)
                            : ((uint32_t)(4095 - e->micro) << 16 | (uint32_t)e->channel << 12);
        tagi_put32(b, w | flags | mt);
        if (fwrite(b, 1, 4, f) != 4) goto io;
    }
    return 0;
io:
    snprintf(err, errlen, "B&H encoder: write failed");
    return WEIR_EIO;
}

const weir_tag_fmt weir_tagfmt_bh_spc = {WEIR_TAGFMT_BH_SPC, "Becker & Hickl SPC FIFO", bh_open,
                                         bh_decode, bh_encode};
