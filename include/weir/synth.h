/* weir/synth.h — synthetic STINS captures with a fixed seed.
 *
 * Writes a dranspose ingester dump (weir/cbors.h) of one STINS stream:
 * event 0 the header (filename given), events 1..N images, event N+1
 * series_end — the shape of dump_xrd.cbors, at any size. Pixels are low,
 * Poisson-like counts with a few hot pixels, like a photon-counting detector;
 * the same seed always gives the same bytes. */
#ifndef WEIR_SYNTH_H
#define WEIR_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/stins.h"

typedef struct {
    const char *path;     /* output .cbors (".gz" for gzip) */
    const char *stream;   /* default "xrd" */
    const char *filename; /* header filename; default "output/synthetic.h5" */
    uint64_t frames;      /* number of images */
    size_t height, width;
    weir_dtype_kind dtype; /* default uint16 */
    weir_stins_compression compression;
    uint64_t seed;
    double mean_counts; /* default 2.0 */
} weir_synth_config;

/* Fills one frame's pixels (host order) for frame index i; deterministic. */
void weir_synth_frame(const weir_synth_config *c, uint64_t i, void *pixels);
int weir_synth_write(const weir_synth_config *c, char *err, size_t errlen);

#endif
