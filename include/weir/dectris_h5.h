/* weir/dectris_h5.h — reading a DECTRIS NeXus master file (EIGER, ARINA)
 * and its data files, frame by frame, for the simulator and for replays.
 *
 * The master holds the detector configuration (nimages, ntrigger, pixel
 * counts, bit depth, trigger mode) and links /entry/data/data_NNNNNN to the
 * data files. Frames are read as raw chunks (H5Dread_chunk) and decoded
 * with weir's own bitshuffle-LZ4 / LZ4 code, so no HDF5 filter plug-in is
 * needed. A weir_dectris_h5 is not thread-safe. */
#ifndef WEIR_DECTRIS_H5_H
#define WEIR_DECTRIS_H5_H

#include <stddef.h>
#include <stdint.h>

#include "weir/array.h"
#include "weir/dectris.h"

typedef struct weir_dectris_h5 weir_dectris_h5;

/* Opens the master file and every data file it links. Errors name the file,
 * the object and what was expected. */
int weir_dectris_h5_open(const char *master, weir_dectris_h5 **out, char *err, size_t errlen);
/* The configuration as a series description for the stream encoders
 * (series id 1; strings borrowed from the reader). */
const weir_dectris_series *weir_dectris_h5_series(const weir_dectris_h5 *h);
/* Frames in all data files together. */
uint64_t weir_dectris_h5_frames(const weir_dectris_h5 *h);
/* Frame i (0-based over all data files), decoded into a new (y, x) array of
 * the file's unsigned dtype (release with weir_array_release). */
int weir_dectris_h5_read(weir_dectris_h5 *h, uint64_t i, weir_array *out, char *err, size_t errlen);
void weir_dectris_h5_close(weir_dectris_h5 *h);

#endif
