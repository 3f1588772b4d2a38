/* test_replay_e2e.c — `weir replay` and `weir inspect` end to end, as a user
 * runs them, checked against values computed independently in this test.
 *
 * - dump_xrd.cbors through the tutorial plug-ins with till_x=3, from_y=7:
 *   every `reduced` row equals the mean of frame[:3, 7:] computed here from
 *   the raw CBOR (walked with libcbor, pixels read as little-endian uint16).
 * - a synthetic bslz4 capture through the frame-sum worker: every `sum` row
 *   equals the sum of the frame regenerated with weir_synth_frame (which
 *   involves neither the codec nor the engine).
 * - two files merged by event number; the leftover events of the longer
 *   file are reported (exit code 3), and replayed with --drain.
 * - parameters from the CBOR parameter-file form; wrong plug-in ABI refused.
 * - inspect: summary text, and --npy export equal to the raw pixels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/npy.h"
#include "weir/synth.h"

#include <cbor.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define run tu_run
#define output tu_output

static void read_h5_f32(const char *path, const char *name, float *out, hsize_t *n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 1);
    H5Sget_simple_extent_dims(sp, n, NULL);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static int64_t read_h5_i64(const char *path, const char *name)
{
    int64_t v = -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    H5Dclose(d);
    H5Fclose(f);
    return v;
}

static void test_tutorial_dump_xrd(void **state)
{
    const char *dir = tu_tmpdir("e2e-xrd");
    tu_write(dir, "params.json",
             "[{\"name\": \"till_x\", \"data\": \"3\"}, {\"name\": \"from_y\", \"data\": \"7\"}]");
    int rc = run(dir, "%s replay -w %s -r %s -f %s -p params.json --nworkers 3", tu_build("weir"),
                 tu_build("examples/roi_mean_worker.so"), tu_build("examples/tutorial_reducer.so"),
                 tu_shared("dranspose/dump_xrd.cbors"));
    char *o = output();
    if (rc != 0) fail_msg("replay failed (%d):\n%s", rc, o);
    free(o);
    double means[11];
    for (int i = 0; i < 11; i++)
        means[i] = NAN;
    assert_int_equal(tu_xrd_roi_means(means, 3, 7), 9);
    char h5[4200];
    snprintf(h5, sizeof h5, "%s/output/xrd_processed.h5", dir);
    float got[16];
    hsize_t n = 0;
    read_h5_f32(h5, "reduced", got, &n);
    assert_int_equal(n, 10); /* rows 0..9: the header has no image; series_end is event 10 */
    assert_true(isnan(got[0]));
    for (int ev = 1; ev <= 9; ev++)
        assert_float_equal(got[ev], (float)means[ev], 1e-6);
    assert_int_equal(read_h5_i64(h5, "till_x"), 3);
    assert_int_equal(read_h5_i64(h5, "from_y"), 7);
}

static void test_defaults_and_cbor_params(void **state)
{
    const char *dir = tu_tmpdir("e2e-cborparams");
    /* CBOR form: [{"name": "till_x", "data": h'35'}] ("5"), from_y default 8 */
    char p[4200];
    snprintf(p, sizeof p, "%s/params.cbor", dir);
    const uint8_t cb[] = {0x81, 0xa2, 0x64, 'n',  'a', 'm', 'e', 0x66, 't',  'i', 'l',
                          'l',  '_',  'x',  0x64, 'd', 'a', 't', 'a',  0x41, '5'};
    FILE *f = fopen(p, "wb");
    fwrite(cb, 1, sizeof cb, f);
    fclose(f);
    int rc = run(dir, "%s replay -w %s -r %s -f %s -p params.cbor --nworkers 1", tu_build("weir"),
                 tu_build("examples/roi_mean_worker.so"), tu_build("examples/tutorial_reducer.so"),
                 tu_shared("dranspose/dump_xrd.cbors"));
    char *o = output();
    if (rc != 0) fail_msg("replay failed (%d):\n%s", rc, o);
    free(o);
    double means[11];
    tu_xrd_roi_means(means, 5, 8);
    char h5[4200];
    snprintf(h5, sizeof h5, "%s/output/xrd_processed.h5", dir);
    float got[16];
    hsize_t n;
    read_h5_f32(h5, "reduced", got, &n);
    for (int ev = 1; ev <= 9; ev++)
        assert_float_equal(got[ev], (float)means[ev], 1e-6);
    assert_int_equal(read_h5_i64(h5, "from_y"), 8);
}

static void test_bad_param_and_abi(void **state)
{
    const char *dir = tu_tmpdir("e2e-bad");
    tu_write(dir, "params.json", "[{\"name\": \"till_x\", \"data\": \"three\"}]");
    int rc = run(dir, "%s replay -w %s -r %s -f %s -p params.json", tu_build("weir"),
                 tu_build("examples/roi_mean_worker.so"), tu_build("examples/tutorial_reducer.so"),
                 tu_shared("dranspose/dump_xrd.cbors"));
    char *o = output();
    assert_int_equal(rc, 1);
    assert_non_null(strstr(o, "till_x"));
    assert_non_null(strstr(o, "expected int"));
    free(o);
    rc = run(dir, "%s replay -w %s -r %s -f %s", tu_build("weir"),
             tu_build("tests/plugins/bad_abi.so"), tu_build("examples/tutorial_reducer.so"),
             tu_shared("dranspose/dump_xrd.cbors"));
    o = output();
    assert_int_equal(rc, 1);
    assert_non_null(strstr(o, "ABI version 99.0"));
    free(o);
    rc = run(dir, "%s replay -w %s -f %s", tu_build("weir"),
             tu_build("examples/roi_mean_worker.so"), tu_shared("dranspose/dump_xrd.cbors"));
    assert_int_equal(rc, 2);
}

static void synth(const char *path, const char *stream, uint64_t frames,
                  weir_stins_compression comp, uint64_t seed, const char *filename)
{
    weir_synth_config c = {.path = path,
                           .stream = stream,
                           .filename = filename,
                           .frames = frames,
                           .height = 64,
                           .width = 48,
                           .dtype = WEIR_DT_U16,
                           .compression = comp,
                           .seed = seed};
    char err[256];
    if (weir_synth_write(&c, err, sizeof err)) fail_msg("%s", err);
}

static double synth_sum(uint64_t seed, uint64_t frame)
{
    weir_synth_config c = {
        .frames = 1, .height = 64, .width = 48, .dtype = WEIR_DT_U16, .seed = seed};
    uint16_t px[64 * 48];
    weir_synth_frame(&c, frame, px);
    double s = 0;
    for (size_t i = 0; i < 64 * 48; i++)
        s += px[i];
    return s;
}

static void test_bslz4_frame_sum(void **state)
{
    const char *dir = tu_tmpdir("e2e-sum");
    char cap[4200];
    snprintf(cap, sizeof cap, "%s/cap.cbors", dir);
    synth(cap, "det", 25, WEIR_STINS_COMP_BSLZ4, 7, "raw/scan.h5");
    int rc = run(dir, "%s replay -w %s -r %s -f cap.cbors --nworkers 2 --output-dir out",
                 tu_build("weir"), tu_build("examples/frame_sum_worker.so"),
                 tu_build("examples/tutorial_reducer.so"));
    char *o = output();
    if (rc != 0) fail_msg("replay failed (%d):\n%s", rc, o);
    free(o);
    char h5[4200];
    snprintf(h5, sizeof h5, "%s/out/scan_processed.h5", dir);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "sum", H5P_DEFAULT);
    assert_true(d >= 0);
    double sums[32];
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sums) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    for (uint64_t ev = 1; ev <= 25; ev++)
        assert_true(sums[ev] == synth_sum(7, ev - 1));
}

/* Replays files (a shell word list) through the probe plug-ins; fills
 * seen[n] with the number of results for event n and parts[n] with the
 * number of frames the worker saw in it. Returns the exit code. */
static int run_probe(const char *dir, const char *files_and_opts, int seen[16], int parts[16])
{
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/report.txt", dir);
    remove(rp);
    int rc = run(dir, "%s replay -w %s:echo_worker -r %s:slow_reducer -f %s --param report=%s",
                 tu_build("weir"), tu_build("tests/plugins/test_plugins.so"),
                 tu_build("tests/plugins/test_plugins.so"), files_and_opts, rp);
    memset(seen, 0, 16 * sizeof *seen);
    memset(parts, 0, 16 * sizeof *parts);
    FILE *f = fopen(rp, "r");
    if (!f) return rc;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long long n, w, scale, np;
        int rw;
        char hash[32];
        if (sscanf(line, "result %lld %lld %lld %d %31s %lld", &n, &w, &scale, &rw, hash, &np) ==
                6 &&
            n >= 0 && n < 16) {
            seen[n]++;
            parts[n] = (int)np;
        }
    }
    fclose(f);
    return rc;
}

static void test_merge_and_leftovers(void **state)
{
    const char *dir = tu_tmpdir("e2e-merge");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/a.cbors", dir);
    snprintf(b, sizeof b, "%s/b.cbors", dir);
    synth(a, "short", 5, WEIR_STINS_COMP_NONE, 1, "x/a.h5"); /* events 0..6 */
    synth(b, "long", 8, WEIR_STINS_COMP_NONE, 2, "x/b.h5");  /* events 0..9 */
    int seen[16], parts[16];
    int rc = run_probe(dir, "a.cbors b.cbors", seen, parts);
    char *o = output();
    assert_int_equal(rc, 3);
    assert_non_null(strstr(o, "3 event(s) left"));
    assert_non_null(strstr(o, "numbers 7..9"));
    free(o);
    for (int i = 1; i <= 6; i++)
        assert_int_equal(seen[i], 1);
    for (int i = 7; i <= 9; i++)
        assert_int_equal(seen[i], 0);
    /* merged events carry both streams: images are 2 frames, header and
     * series_end 1 (a: 0 header, 1..5 images, 6 end; b: 0 header, 1..8 images) */
    assert_int_equal(parts[0], 2);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(parts[i], 4);
    assert_int_equal(parts[6], 3);
    rc = run_probe(dir, "a.cbors b.cbors --drain", seen, parts);
    o = output();
    if (rc != 0) fail_msg("drain replay failed (%d):\n%s", rc, o);
    free(o);
    for (int i = 1; i <= 9; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(parts[8], 2); /* only b left */
}

static void test_inspect(void **state)
{
    const char *dir = tu_tmpdir("e2e-inspect");
    int rc = run(dir, "%s inspect %s", tu_build("weir"), tu_shared("dranspose/dump_xrd.cbors"));
    char *o = output();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(o, "events: 11, numbers 0..10"));
    assert_non_null(strstr(o, "9 x image 10x10 uint16 none"));
    assert_non_null(strstr(o, "typ STINS"));
    free(o);
    rc = run(dir, "%s inspect %s --event 1 --stream xrd --npy f.npy", tu_build("weir"),
             tu_shared("dranspose/dump_xrd.cbors"));
    o = output();
    if (rc) fail_msg("%s", o);
    free(o);
    char p[4200], err[256];
    snprintf(p, sizeof p, "%s/f.npy", dir);
    weir_array a;
    assert_int_equal(weir_npy_read(p, &a, err, sizeof err), 0);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 10);
    assert_int_equal(a.dtype.kind, WEIR_DT_U16);
    const double row0[10] = {1, 18, 0, 7, 17, 19, 17, 6, 0, 18}; /* reference §4.3 */
    for (int i = 0; i < 10; i++)
        assert_true(weir_array_get_f64(&a, (size_t)i) == row0[i]);
    weir_array_release(&a);
    /* a compressed synthetic frame is exported decompressed */
    char cap[4200];
    snprintf(cap, sizeof cap, "%s/c.cbors", dir);
    synth(cap, "det", 3, WEIR_STINS_COMP_BSLZ4, 11, "x.h5");
    rc = run(dir, "%s inspect c.cbors --event 3 --npy g.npy", tu_build("weir"));
    o = output();
    if (rc) fail_msg("%s", o);
    free(o);
    snprintf(p, sizeof p, "%s/g.npy", dir);
    assert_int_equal(weir_npy_read(p, &a, err, sizeof err), 0);
    weir_synth_config c = {
        .frames = 3, .height = 64, .width = 48, .dtype = WEIR_DT_U16, .seed = 11};
    uint16_t px[64 * 48];
    weir_synth_frame(&c, 2, px);
    assert_int_equal(weir_array_nbytes(&a), sizeof px);
    assert_memory_equal(a.data, px, sizeof px);
    weir_array_release(&a);
    /* truncated capture: reported with its offset, exit code 3 */
    size_t len;
    uint8_t *buf = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &len);
    snprintf(p, sizeof p, "%s/trunc.cbors", dir);
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, 1000, f);
    fclose(f);
    free(buf);
    rc = run(dir, "%s inspect trunc.cbors", tu_build("weir"));
    o = output();
    assert_int_equal(rc, 3);
    assert_non_null(strstr(o, "MALFORMED"));
    assert_non_null(strstr(o, "offset"));
    free(o);
}

static void test_truncated_replay_keeps_prior_events(void **state)
{
    const char *dir = tu_tmpdir("e2e-trunc");
    size_t len;
    uint8_t *buf = tu_read_file(tu_shared("dranspose/dump_xrd.cbors"), &len);
    char p[4200];
    snprintf(p, sizeof p, "%s/trunc.cbors", dir);
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, 1000, f); /* items 0..2 whole (0..91..426..761), item 3 cut */
    fclose(f);
    free(buf);
    int seen[16], parts[16];
    int rc = run_probe(dir, "trunc.cbors", seen, parts);
    char *o = output();
    assert_int_equal(rc, 3);
    assert_non_null(strstr(o, "trunc.cbors"));
    assert_non_null(strstr(o, "offset 761"));
    free(o);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    assert_int_equal(seen[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tutorial_dump_xrd),
        cmocka_unit_test(test_defaults_and_cbor_params),
        cmocka_unit_test(test_bad_param_and_abi),
        cmocka_unit_test(test_bslz4_frame_sum),
        cmocka_unit_test(test_merge_and_leftovers),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_truncated_replay_keeps_prior_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
