/* weir/hooks.h — acquisition hooks as a plug-in (LiberTEM-live's Hooks).
 *
 * `weir run` calls them around every acquisition: on_ready_for_data once the
 * streams are ready (after arming in active mode, before triggering; this
 * is where a scan is started elsewhere), on_determine_nav_shape when the
 * headers are in, to decide the scan shape. A hooks object is found with
 * "hooks": {"plugin": "path.so[:symbol]"} (default symbol
 * "weir_hooks_descriptor"); shell commands ("on_ready_for_data": CMD, ...)
 * are the alternative for people who do not write C. The descriptor is
 * read-only and owned by the shared object; calls come from weir run's main
 * thread (on_ready_for_data) and the source thread (on_determine_nav_shape),
 * never at the same time. */
#ifndef WEIR_HOOKS_H
#define WEIR_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#define WEIR_HOOKS_ABI 1

typedef struct {
    uint32_t abi;         /* WEIR_HOOKS_ABI */
    uint32_t struct_size; /* sizeof(weir_hooks) */
    const char *name;
    /* The streams are ready for acquisition `acquisition` (1, 2, ...).
     * Nonzero ends the run. May be NULL. */
    int (*on_ready_for_data)(int acquisition);
    /* frames: announced by the detector (0: unknown); det/ndet: the
     * detector's own scan shape (ndet 0: none). Write up to 8 entries to
     * shape (-1 allowed, as in nav_shape) and return their number; 0 leaves
     * the decision to weir; negative ends the run. May be NULL. */
    int (*on_determine_nav_shape)(uint64_t frames, const int64_t *det, int ndet, int64_t *shape);
} weir_hooks;

#endif
