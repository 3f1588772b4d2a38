/* test_navshape.c — scan shape inference, cases worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "weir/error.h"
#include "weir/navshape.h"

#include <string.h>

static void expect(const int64_t *u, int nu, const int64_t *d, int nd, uint64_t frames,
                   const int64_t *want, int nwant)
{
    int64_t out[8];
    int n = 0;
    char err[256] = "";
    int rc = weir_nav_shape_infer(u, nu, d, nd, frames, out, &n, err, sizeof err);
    if (rc) fail_msg("unexpected error: %s", err);
    assert_int_equal(n, nwant);
    assert_memory_equal(out, want, (size_t)nwant * sizeof *out);
}

static void expect_err(const int64_t *u, int nu, const int64_t *d, int nd, uint64_t frames,
                       const char *says)
{
    int64_t out[8];
    int n = 0;
    char err[256] = "";
    assert_int_equal(weir_nav_shape_infer(u, nu, d, nd, frames, out, &n, err, sizeof err),
                     WEIR_EINVAL);
    assert_non_null(strstr(err, says));
}

static void test_explicit(void **state)
{
    expect((int64_t[]){16, 8}, 2, NULL, 0, 128, (int64_t[]){16, 8}, 2);
    expect((int64_t[]){-1, 8}, 2, NULL, 0, 128, (int64_t[]){16, 8}, 2);
    expect((int64_t[]){4, -1, 2}, 3, NULL, 0, 64, (int64_t[]){4, 8, 2}, 3);
    expect((int64_t[]){-1, -1}, 2, NULL, 0, 256, (int64_t[]){16, 16}, 2);
    expect((int64_t[]){3, -1, -1}, 3, NULL, 0, 3 * 49, (int64_t[]){3, 7, 7}, 3);
    /* the user wins over the detector */
    expect((int64_t[]){-1, 4}, 2, (int64_t[]){2, 8}, 2, 16, (int64_t[]){4, 4}, 2);
    expect_err((int64_t[]){-1, -1}, 2, NULL, 0, 200, "not a square");
    expect_err((int64_t[]){-1, 7}, 2, NULL, 0, 100, "do not divide");
    expect_err((int64_t[]){10, 10}, 2, NULL, 0, 99, "holds 100 frames");
    expect_err((int64_t[]){-1, -1, -1}, 3, NULL, 0, 8, "at most two");
    expect_err((int64_t[]){0, 4}, 2, NULL, 0, 8, "entries are > 0");
}

static void test_detector_and_square(void **state)
{
    /* Merlin ScanX x ScanY, DECTRIS ntrigger x nimages */
    expect(NULL, 0, (int64_t[]){32, 12}, 2, 384, (int64_t[]){32, 12}, 2);
    /* the detector's shape does not hold the frames: fall back to a square */
    expect(NULL, 0, (int64_t[]){5, 5}, 2, 36, (int64_t[]){6, 6}, 2);
    expect(NULL, 0, NULL, 0, 1024, (int64_t[]){32, 32}, 2);
    expect(NULL, 0, NULL, 0, 1, (int64_t[]){1, 1}, 2);
    expect_err(NULL, 0, NULL, 0, 1000, "give the shape explicitly");
    expect_err(NULL, 0, (int64_t[]){3, 3}, 2, 10, "holds 9 frames");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explicit),
        cmocka_unit_test(test_detector_and_square),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
