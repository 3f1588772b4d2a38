/* test_hooks.c — a hooks plug-in (weir/hooks.h) for the tests:
 * on_ready_for_data creates the file named by $WEIR_TEST_HOOK_FLAG (the
 * test starts the simulator once it exists); on_determine_nav_shape answers
 * (-1, 3), so 9 frames make a 3 x 3 scan. */
#include <weir/hooks.h>

#include <stdio.h>
#include <stdlib.h>

static int ready(int acquisition)
{
    const char *p = getenv("WEIR_TEST_HOOK_FLAG");
    FILE *f = p ? fopen(p, "w") : NULL;
    if (!f) return 1;
    fprintf(f, "%d\n", acquisition);
    return fclose(f) != 0;
}

static int nav(uint64_t frames, const int64_t *det, int ndet, int64_t *shape)
{
    shape[0] = -1;
    shape[1] = 3;
    return 2;
}

const weir_hooks weir_hooks_descriptor = {
    .abi = WEIR_HOOKS_ABI,
    .struct_size = sizeof(weir_hooks),
    .name = "test_hooks",
    .on_ready_for_data = ready,
    .on_determine_nav_shape = nav,
};
