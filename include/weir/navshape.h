/* weir/navshape.h — the scan (navigation) shape of an acquisition, inferred
 * as LiberTEM-live does.
 *
 * In order: an explicit shape from the user, in which up to two entries may
 * be -1 (one -1 is solved from the frame count; two -1 ask for a square);
 * else the detector's own scan shape (Merlin ScanX/ScanY, DECTRIS
 * ntrigger x nimages); else a square when the frame count is one; else an
 * error saying what is missing. */
#ifndef WEIR_NAVSHAPE_H
#define WEIR_NAVSHAPE_H

#include <stddef.h>
#include <stdint.h>

/* user: the explicit shape (nuser entries, may contain -1), or NULL/0.
 * detector: the detector's scan shape (ndet entries, all > 0), or NULL/0.
 * frames: frames in the acquisition (> 0).
 * Writes the shape (at most 8 dims) to out / *nout. Returns 0 or WEIR_EINVAL
 * with a message in err. */
int weir_nav_shape_infer(const int64_t *user, int nuser, const int64_t *detector, int ndet,
                         uint64_t frames, int64_t *out, int *nout, char *err, size_t errlen);

#endif
