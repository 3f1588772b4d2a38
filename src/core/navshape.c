/* navshape.c — scan shape inference (weir/navshape.h). Pure arithmetic: the
 * product of the result must equal the frame count, and every failure says
 * which numbers did not fit. */
#include "weir/navshape.h"

#include "weir/error.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

/* exact integer square root, or -1 */
static int64_t isqrt_exact(uint64_t n)
{
    uint64_t r = (uint64_t)sqrtl((long double)n);
    while (r * r > n)
        r--;
    while ((r + 1) * (r + 1) <= n)
        r++;
    return r * r == n ? (int64_t)r : -1;
}

static int product(const int64_t *s, int n, uint64_t *out)
{
    uint64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (s[i] <= 0 || p > UINT64_MAX / (uint64_t)s[i]) return 0;
        p *= (uint64_t)s[i];
    }
    *out = p;
    return 1;
}

int weir_nav_shape_infer(const int64_t *user, int nuser, const int64_t *det, int ndet,
                         uint64_t frames, int64_t *out, int *nout, char *err, size_t errlen)
{
    if (!frames || nuser > 8 || ndet > 8) {
        snprintf(err, errlen, "nav shape: need a frame count > 0 and at most 8 dimensions");
        return WEIR_EINVAL;
    }
    if (user && nuser > 0) {
        int holes = 0, at[2] = {-1, -1};
        uint64_t known = 1;
        for (int i = 0; i < nuser; i++) {
            out[i] = user[i];
            if (user[i] == -1) {
                if (holes == 2) {
                    snprintf(err, errlen, "nav shape: at most two -1 entries");
                    return WEIR_EINVAL;
                }
                at[holes++] = i;
            } else if (user[i] <= 0) {
                snprintf(err, errlen, "nav shape: entry %d is %" PRId64 "; entries are > 0 or -1",
                         i, user[i]);
                return WEIR_EINVAL;
            } else {
                known *= (uint64_t)user[i];
            }
        }
        *nout = nuser;
        if (holes == 0 && known != frames) {
            snprintf(err, errlen,
                     "nav shape: the given shape holds %" PRIu64 " frames, the "
                     "acquisition has %" PRIu64,
                     known, frames);
            return WEIR_EINVAL;
        }
        if (frames % known) {
            snprintf(err, errlen,
                     "nav shape: %" PRIu64 " frames do not divide by the given entries (%" PRIu64
                     ")",
                     frames, known);
            return WEIR_EINVAL;
        }
        uint64_t rest = frames / known;
        if (holes == 1) out[at[0]] = (int64_t)rest;
        if (holes == 2) {
            int64_t r = isqrt_exact(rest);
            if (r < 0) {
                snprintf(err, errlen,
                         "nav shape: two -1 entries ask for a square, but %" PRIu64
                         " frames left is not a square number",
                         rest);
                return WEIR_EINVAL;
            }
            out[at[0]] = out[at[1]] = r;
        }
        return WEIR_OK;
    }
    uint64_t p;
    if (det && ndet > 0 && product(det, ndet, &p) && p == frames) {
        for (int i = 0; i < ndet; i++)
            out[i] = det[i];
        *nout = ndet;
        return WEIR_OK;
    }
    int64_t r = isqrt_exact(frames);
    if (r > 0) {
        out[0] = out[1] = r;
        *nout = 2;
        return WEIR_OK;
    }
    if (det && ndet > 0 && product(det, ndet, &p))
        snprintf(err, errlen,
                 "nav shape: the detector's scan shape holds %" PRIu64 " frames, the acquisition "
                 "has %" PRIu64 ", which is not a square either: give the shape explicitly",
                 p, frames);
    else
        snprintf(err, errlen,
                 "nav shape: %" PRIu64 " frames is not a square number and the detector gave no "
                 "scan shape: give the shape explicitly (e.g. [-1, %" PRIu64 "])",
                 frames, frames);
    return WEIR_EINVAL;
}
