/* swabian.c — Swabian Instruments Time Tagger 16-byte "Dump" files, decode
 * and encode.
 *
 * No header; each record is {uint8 type, uint8 reserved, uint16
 * missed_events, int32 channel, int64 time in ps}. Unlike ETA, which
 * ignores `type`, only type 0 (TimeTag) becomes an event: Error (1) and
 * MissedEvents (4) records are counted as errors, OverflowBegin (2) and
 * OverflowEnd (3) as overflow records (they mark a span in which the
 * hardware dropped tags; they do not wrap the time), anything else as an
 * error. Channels stay as recorded, falling edges negative (ETA wraps them
 * to 255, 254, … as uint8); a channel outside int16 is an error. */
#include "tags_internal.h"

#include "weir/error.h"

#include <string.h>

static int sw_open(weir_tag_reader *r, char *err, size_t errlen)
{
    r->info.header_bytes = 0;
    r->info.record_bytes = 16;
    r->info.resolution_s = 1e-12;
    r->info.tick = (weir_tag_res){1, 1};
    snprintf(r->format_name, sizeof r->format_name, "Swabian Time Tagger 16-byte dump");
    return 0;
}

static long sw_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->pos.record * 16;
    uint64_t i = r->pos.record;
    size_t n = 0;
    while (i < lim && n < cap) {
        uint8_t type = p[0];
        int32_t ch = (int32_t)tagi_u32(p + 4);
        int64_t t = (int64_t)tagi_u64(p + 8);
        p += 16;
        i++;
        if (type == 0) {
            if (ch < INT16_MIN || ch > INT16_MAX) {
                r->counts.errors++;
                continue;
            }
            out[n++] =
                (weir_tag){.time = t, .micro = -1, .channel = (int16_t)ch, .kind = WEIR_TAG_PHOTON};
            r->counts.photons++;
        } else if (type == 2 || type == 3) {
            r->counts.overflows++;
        } else {
            r->counts.errors++;
        }
    }
    r->pos.record = i;
    return (long)n;
}

static int sw_encode(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b[16] = {0};
        if (ev[i].kind != WEIR_TAG_PHOTON) {
            snprintf(err, errlen, "Swabian encoder: event %zu: only photons (type 0 records)", i);
            return WEIR_EINVAL;
        }
        tagi_put32(b + 4, (uint32_t)(int32_t)ev[i].channel);
        tagi_put64(b + 8, (uint64_t)ev[i].time);
        if (fwrite(b, 1, 16, f) != 16) {
            snprintf(err, errlen, "Swabian encoder: write failed");
            return WEIR_EIO;
        }
    }
    return 0;
}

const weir_tag_fmt weir_tagfmt_swabian = {WEIR_TAGFMT_SWABIAN, "Swabian 16-byte dump", sw_open,
                                          sw_decode, sw_encode};
