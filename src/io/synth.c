/* synth.c — synthetic STINS captures (weir/synth.h).
 *
 * splitmix64 gives a reproducible stream per (seed, frame); counts come from
 * a cheap Poisson approximation (sum of Bernoulli trials over a 16-entry
 * table) because the point is realistic compressibility for bslz4, not exact
 * statistics. Every 997th pixel is a hot pixel with a large value. */
#include "weir/synth.h"

#include "weir/cbors.h"
#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void weir_synth_frame(const weir_synth_config *c, uint64_t i, void *pixels)
{
    uint64_t s = c->seed * 0x100000001b3ULL + i;
    size_t n = c->height * c->width;
    double mean = c->mean_counts > 0 ? c->mean_counts : 2.0;
    /* probability per trial so that 8 trials average `mean` (capped) */
    uint32_t thresh = (uint32_t)((mean / 8.0 > 0.95 ? 0.95 : mean / 8.0) * 256.0);
    weir_dtype_kind k = c->dtype ? c->dtype : WEIR_DT_U16;
    for (size_t p = 0; p < n; p += 8) {
        uint64_t r = splitmix(&s);
        for (size_t j = 0; j < 8 && p + j < n; j++) {
            uint8_t byte = (uint8_t)(r >> (8 * j));
            /* 8 Bernoulli trials from one random byte, mixed with the index */
            uint64_t v = 0;
            uint64_t rr = splitmix(&s);
            for (int t = 0; t < 8; t++)
                v += ((rr >> (8 * t)) & 0xff) < thresh;
            if ((p + j) % 997 == 0 && (byte & 3) == 0) v = 1000 + byte;
            switch (k) {
            case WEIR_DT_U8:
                ((uint8_t *)pixels)[p + j] = (uint8_t)(v > 255 ? 255 : v);
                break;
            case WEIR_DT_U32:
                ((uint32_t *)pixels)[p + j] = (uint32_t)v;
                break;
            case WEIR_DT_F32:
                ((float *)pixels)[p + j] = (float)v;
                break;
            case WEIR_DT_F64:
                ((double *)pixels)[p + j] = (double)v;
                break;
            default:
                ((uint16_t *)pixels)[p + j] = (uint16_t)v;
                break;
            }
        }
    }
}

int weir_synth_write(const weir_synth_config *c, char *err, size_t errlen)
{
    weir_dtype dt = {c->dtype ? c->dtype : WEIR_DT_U16, WEIR_LITTLE};
    size_t isz = weir_dtype_size(dt.kind);
    if (!isz || !c->height || !c->width || !c->path) {
        snprintf(err, errlen, "synth: need a path, a non-empty shape and a known dtype");
        return WEIR_EINVAL;
    }
    const char *stream = c->stream ? c->stream : "xrd";
    weir_cbors_writer *w = NULL;
    int rc = weir_cbors_writer_open(c->path, 0, &w);
    if (rc) {
        snprintf(err, errlen, "%s: cannot create: %s", c->path, weir_strerror(rc));
        return rc;
    }
    void *px = malloc(c->height * c->width * isz);
    if (!px) {
        weir_cbors_writer_close(w);
        return WEIR_ENOMEM;
    }
    size_t shape[2] = {c->height, c->width};
    for (uint64_t ev = 0; ev <= c->frames + 1 && !rc; ev++) {
        weir_msg m;
        weir_msg_init(&m);
        if (ev == 0) {
            rc = weir_stins_encode_header(&m, 0, c->filename ? c->filename : "output/synthetic.h5",
                                          NULL);
        } else if (ev <= c->frames) {
            weir_synth_frame(c, ev - 1, px);
            rc = weir_stins_encode_image(&m, (int64_t)ev, (int64_t)(ev - 1), dt, 2, shape, px,
                                         c->compression, NULL);
        } else {
            rc = weir_stins_encode_series_end(&m, (int64_t)ev);
        }
        weir_event *e = rc ? NULL : weir_event_new(ev);
        if (!rc && !e) rc = WEIR_ENOMEM;
        if (!rc) rc = weir_event_add_stream(e, stream, "STINS", &m);
        if (!rc) rc = weir_cbors_write_event(w, e, NULL);
        weir_event_free(e);
        weir_msg_clear(&m);
    }
    free(px);
    int crc = weir_cbors_writer_close(w);
    if (!rc) rc = crc;
    if (rc) snprintf(err, errlen, "%s: writing failed: %s", c->path, weir_strerror(rc));
    return rc;
}
