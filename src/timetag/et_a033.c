/* et_a033.c — Eventech ET A033 event timer files, decode and encode.
 *
 * UNCERTAIN: no public specification of this format was found. Everything
 * here follows what ETA's reader does (reference/eta.md §3.5), which is
 * the only known description: no header; 8-byte records {int32 d0, int32
 * d1}; a record with d1 > 0 is an event on input A (channel 0) when d0 < 0,
 * at 327,680,000·(−d0) + d1 ps, and otherwise on input B (channel 1), at
 * 327,680,000·d0 + d1 ps; records with d1 ≤ 0 are not events (counted here
 * as errors). Not known: whether 327.68 µs (2^15 × 10 ns) is really the
 * coarse-counter period, whether d1 is in ps on every model, whether d0 = 0
 * on input A can occur (it cannot be told from input B), how counter
 * roll-over or markers are encoded, and whether files carry a header. */
#include "tags_internal.h"

#include "weir/error.h"

#define ET_COARSE_PS 327680000LL

static int et_open(weir_tag_reader *r, char *err, size_t errlen)
{
    r->info.header_bytes = 0;
    r->info.record_bytes = 8;
    r->info.resolution_s = 1e-12;
    r->info.tick = (weir_tag_res){1, 1};
    snprintf(r->format_name, sizeof r->format_name, "Eventech ET A033 (layout as ETA reads it)");
    return 0;
}

static long et_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap)
{
    const uint8_t *p = r->data + r->pos.record * 8;
    uint64_t i = r->pos.record;
    size_t n = 0;
    while (i < lim && n < cap) {
        int32_t d0 = (int32_t)tagi_u32(p), d1 = (int32_t)tagi_u32(p + 4);
        p += 8;
        i++;
        if (d1 <= 0) {
            r->counts.errors++;
            continue;
        }
        int a = d0 < 0;
        int64_t coarse = a ? -(int64_t)d0 : (int64_t)d0;
        out[n++] = (weir_tag){.time = ET_COARSE_PS * coarse + d1,
                              .micro = -1,
                              .channel = (int16_t)(a ? 0 : 1),
                              .kind = WEIR_TAG_PHOTON};
        r->counts.photons++;
    }
    r->pos.record = i;
    return (long)n;
}

static int et_encode(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        int64_t c = e->time / ET_COARSE_PS, fine = e->time % ET_COARSE_PS;
        if (e->time < 0 || e->kind != WEIR_TAG_PHOTON || (e->channel != 0 && e->channel != 1) ||
            c > INT32_MAX || (e->channel == 0 && c == 0)) {
            snprintf(err, errlen,
                     "ET A033 encoder: event %zu (channel %d, %lld ps) cannot be written: "
                     "channel 0 needs a time >= 327680000 ps, channel 1 any time >= 0",
                     i, e->channel, (long long)e->time);
            return WEIR_ERANGE;
        }
        if (fine == 0) { /* d1 must be > 0: borrow one coarse period */
            if (c == (e->channel == 0 ? 1 : 0)) {
                snprintf(err, errlen,
                         "ET A033 encoder: event %zu at %lld ps has no representation (d1 would "
                         "be 0)",
                         i, (long long)e->time);
                return WEIR_ERANGE;
            }
            c--;
            fine = ET_COARSE_PS;
        }
        uint8_t b[8];
        tagi_put32(b, (uint32_t)(int32_t)(e->channel == 0 ? -c : c));
        tagi_put32(b + 4, (uint32_t)fine);
        if (fwrite(b, 1, 8, f) != 8) {
            snprintf(err, errlen, "ET A033 encoder: write failed");
            return WEIR_EIO;
        }
    }
    return 0;
}

const weir_tag_fmt weir_tagfmt_et_a033 = {WEIR_TAGFMT_ET_A033, "Eventech ET A033", et_open,
                                          et_decode, et_encode};
