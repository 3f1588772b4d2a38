/* test_live.c — `weir run` on live STINS over ZeroMQ, fed by an independent
 * sender written in Python with Debian's python3-zmq
 * (tests/tools/stins_sender.py), threaded and on MPI ranks.
 *
 * The sender's pixel (i, j) of frame f is (7i + 3j + 5f) mod 23; the test
 * computes the expected ROI means from that formula and compares them with
 * the `reduced` dataset the tutorial reducer wrote. The message the sender
 * puts before the series start must be discarded and counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/cbors.h"
#include "weir/synth.h"
#include "weir/merlin.h"
#include "weir/tpx3.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRAMES 40
#define H 16
#define W 12

static double expected_mean(int f, int till_x, int from_y)
{
    double s = 0;
    int n = 0;
    for (int i = 0; i < till_x && i < H; i++)
        for (int j = from_y; j < W; j++, n++)
            s += (7 * i + 3 * j + 5 * f) % 23;
    return s / n;
}

static void write_config(const char *dir, int port)
{
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"det\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": true}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s\", \"nworkers\": 2, \"output_dir\": \"out\",\n"
             " \"parameters\": {\"till_x\": \"5\", \"from_y\": \"4\"}}\n",
             port, tu_build("examples/roi_mean_worker.so"),
             tu_build("examples/tutorial_reducer.so"));
    tu_write(dir, "cfg.json", cfg);
}

static void check_output(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/out/scan_processed.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("no output %s", p);
    hid_t d = H5Dopen2(f, "reduced", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    assert_int_equal(n, FRAMES + 1); /* header event 0, images 1..FRAMES */
    double v[FRAMES + 1];
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    assert_true(isnan(v[0]));
    for (int ev = 1; ev <= FRAMES; ev++)
        assert_float_equal(v[ev], expected_mean(ev - 1, 5, 4), 1e-5);
}

static void test_python_sender_threaded(void **state)
{
    const char *dir = tu_tmpdir("live-thr");
    int port = tu_free_port();
    write_config(dir, port);
    int rc =
        tu_run(dir,
               "(timeout 60 %s run cfg.json & pid=$!; timeout 60 /usr/bin/python3 %s/tests/tools/"
               "stins_sender.py tcp://127.0.0.1:%d %d %d %d; wait $pid)",
               tu_build("weir"), WEIR_SOURCE_DIR, port, FRAMES, H, W);
    char *o = tu_output();
    if (rc != 0) fail_msg("weir run exited %d:\n%s", rc, o);
    assert_non_null(strstr(o, "1 discarded before a header"));
    assert_non_null(strstr(o, "0 malformed"));
    free(o);
    check_output(dir);
}

static void test_python_sender_mpi(void **state)
{
    const char *dir = tu_tmpdir("live-mpi");
    int port = tu_free_port();
    write_config(dir, port);
    int rc = tu_run(dir,
                    "(env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 timeout 60 mpirun "
                    "--oversubscribe %s -n 4 %s run cfg.json & pid=$!; timeout 60 /usr/bin/python3 "
                    "%s/tests/tools/stins_sender.py tcp://127.0.0.1:%d %d %d %d; wait $pid)",
                    getuid() == 0 ? "--allow-run-as-root" : "", tu_build("weir"), WEIR_SOURCE_DIR,
                    port, FRAMES, H, W);
    char *o = tu_output();
    if (rc != 0) fail_msg("mpirun weir run exited %d:\n%s", rc, o);
    free(o);
    check_output(dir);
}

/* weir sim with a fault on data message 3 (frame 3) into weir run; returns
 * the output and fills rows[] with the `reduced` values (NAN = no row). */
static int fault_run(const char *name, const char *fault, char **out, double *rows, int *nrows)
{
    const char *dir = tu_tmpdir(name);
    int port = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"det\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": true}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s\", \"reorder_ms\": 300,\n"
             " \"output_dir\": \"out\", \"parameters\": {\"till_x\": \"64\", \"from_y\": \"0\"}}\n",
             port, tu_build("examples/roi_mean_worker.so"),
             tu_build("examples/tutorial_reducer.so"));
    tu_write(dir, "cfg.json", cfg);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim stins --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 12 --shape 32x16 --seed 9 --fault %s; "
                    "wait $pid)",
                    tu_build("weir"), tu_build("weir"), port, fault);
    *out = tu_output();
    char p[4200];
    snprintf(p, sizeof p, "%s/out/scan_processed.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    *nrows = 0;
    if (f >= 0) {
        hid_t d = H5Dopen2(f, "reduced", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hsize_t n = 0;
        H5Sget_simple_extent_dims(sp, &n, NULL);
        assert_true(n <= 16);
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
        *nrows = (int)n;
        H5Sclose(sp);
        H5Dclose(d);
        H5Fclose(f);
    }
    return rc;
}

/* The whole-frame mean of synthetic frame i (64 rows asked, 32 exist). */
static double synth_mean(uint64_t i)
{
    weir_synth_config c = {
        .frames = 12, .height = 32, .width = 16, .dtype = WEIR_DT_U16, .seed = 9};
    uint16_t px[32 * 16];
    weir_synth_frame(&c, i, px);
    double s = 0;
    for (int k = 0; k < 32 * 16; k++)
        s += px[k];
    return s / (32 * 16);
}

/* cfg.json for one stream into the frame-sum worker and the sum reducer
 * (which writes "event total" lines to dir/sums.txt); extra: more members. */
static void sum_config(const char *dir, const char *protocol, int port, int bind, const char *extra)
{
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"s\", \"protocol\": \"%s\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": %s}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s:sum_reducer\"%s%s,\n"
             " \"parameters\": {\"report\": \"%s/sums.txt\", \"repeat\": \"%s\"}}\n",
             protocol, port, bind ? "true" : "false", tu_build("examples/frame_sum_worker.so"),
             tu_build("tests/plugins/test_plugins.so"), *extra ? ", " : "", extra, dir,
             strstr(extra, "\"rcvhwm\"") ? "40" : "1");
    tu_write(dir, "cfg.json", cfg);
}

/* dir/sums.txt into sums[event] (NAN where absent); returns the count. */
static int read_sums(const char *dir, double *sums, int max)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/sums.txt", dir);
    FILE *f = fopen(p, "r");
    if (!f) fail_msg("no %s", p);
    for (int i = 0; i < max; i++)
        sums[i] = NAN;
    int ev, n = 0;
    double v;
    while (fscanf(f, "%d %lf", &ev, &v) == 2) {
        assert_true(ev >= 0 && ev < max);
        sums[ev] = v;
        n++;
    }
    fclose(f);
    return n;
}

/* The sum of synthetic uint16 frame i (independent of codecs and engine). */
static double frame_total(size_t h, size_t w, uint64_t seed, uint64_t i)
{
    weir_synth_config c = {
        .frames = i + 1, .height = h, .width = w, .dtype = WEIR_DT_U16, .seed = seed};
    uint16_t *px = malloc(h * w * 2);
    assert_non_null(px);
    weir_synth_frame(&c, i, px);
    double s = 0;
    for (size_t k = 0; k < h * w; k++)
        s += px[k];
    free(px);
    return s;
}

static void test_sim_disconnect(void **state)
{
    /* the sender goes away mid-scan: the frames before are processed; weir
     * waits (a slow detector looks the same) until stopped, then reports the
     * series as cut short (exit code 3) */
    const char *dir = tu_tmpdir("fault-disconnect");
    int port = tu_free_port();
    sum_config(dir, "stins", port, 1, "");
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim stins --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 12 --shape 16x16 --fault disconnect:5; "
                    /* the pause lets the sent bytes reach weir's socket; a stop
                     * still processes what has arrived */
                    "sleep 1; kill -TERM $pid; wait $pid)",
                    tu_build("weir"), tu_build("weir"), port);
    char *o = tu_output();
    if (rc != 3) fail_msg("exit %d, expected 3:\n%s", rc, o);
    assert_non_null(strstr(o, "stopped before their end"));
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 5); /* data messages 0..4 were sent */
    for (int ev = 1; ev <= 5; ev++)
        assert_true(sums[ev] == frame_total(16, 16, 1, (uint64_t)ev - 1));
}

/* --continuous: scan after scan, finish() after each, until stopped. */
static void test_continuous(void **state)
{
    const char *dir = tu_tmpdir("continuous");
    int port = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"det\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"bind\": true}],\n"
             " \"worker\": \"%s:echo_worker\", \"reducer\": \"%s:slow_reducer\",\n"
             " \"parameters\": {\"report\": \"%s/r.txt\"}}\n",
             port, tu_build("tests/plugins/test_plugins.so"),
             tu_build("tests/plugins/test_plugins.so"), dir);
    tu_write(dir, "cfg.json", cfg);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json --continuous & pid=$!; timeout 60 %s sim stins "
                    "--endpoint tcp://127.0.0.1:%d --synthetic 6 --shape 8x8 --loop 3; "
                    /* the pause lets the sent bytes arrive; a stop processes them */
                    "sleep 1; kill -TERM $pid; wait $pid)",
                    tu_build("weir"), tu_build("weir"), port);
    char *o = tu_output();
    if (rc) fail_msg("exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "acquisition 3:"));
    free(o);
    char p[4200], line[256];
    snprintf(p, sizeof p, "%s/r.txt", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int finishes = 0, results = 0;
    while (fgets(line, sizeof line, f)) {
        long r, t;
        if (sscanf(line, "reducer_finish %ld %ld", &r, &t) == 2) {
            finishes++;
            /* per scan: header to both workers, 6 images, series_end, and one
             * result from each worker's finish() */
            assert_int_equal(r, 2 + 6 + 1 + 2);
        } else if (!strncmp(line, "result", 6)) {
            results++;
        }
    }
    fclose(f);
    assert_int_equal(finishes, 3);
    assert_int_equal(results, 3 * 9);
}

static void test_sim_faults_detected(void **state)
{
    char *o;
    double rows[16];
    int n;
    /* drop: frame 3 never comes; counted missing; the rest processed */
    int rc = fault_run("fault-drop", "drop:3", &o, rows, &n);
    if (rc != 3) fail_msg("drop: exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "1 missing frames"));
    assert_int_equal(n, 13);
    for (int ev = 1; ev <= 12; ev++)
        if (ev == 4)
            assert_true(isnan(rows[ev]));
        else
            assert_float_equal(rows[ev], synth_mean((uint64_t)ev - 1), 1e-4);
    free(o);
    /* duplicate: dropped and counted; every frame processed once */
    rc = fault_run("fault-dup", "dup:3", &o, rows, &n);
    if (rc != 3) fail_msg("dup: exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "1 duplicates"));
    assert_non_null(strstr(o, "0 missing frames"));
    for (int ev = 1; ev <= 12; ev++)
        assert_float_equal(rows[ev], synth_mean((uint64_t)ev - 1), 1e-4);
    free(o);
    /* reorder: frames 3 and 4 swapped; put back in order, counted, all kept */
    rc = fault_run("fault-reorder", "reorder:3", &o, rows, &n);
    if (rc != 0) fail_msg("reorder: exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "1 out of order"));
    for (int ev = 1; ev <= 12; ev++)
        assert_float_equal(rows[ev], synth_mean((uint64_t)ev - 1), 1e-4);
    free(o);
    /* garbage: counted malformed (and its frame missing); the rest processed */
    rc = fault_run("fault-garbage", "garbage:3", &o, rows, &n);
    if (rc != 3) fail_msg("garbage: exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "1 malformed"));
    assert_non_null(strstr(o, "1 missing frames"));
    assert_float_equal(rows[12], synth_mean(11), 1e-4);
    free(o);
}

static void test_record_dump_and_raw(void **state)
{
    const char *dir = tu_tmpdir("record");
    int port = tu_free_port();
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"det\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": true}]}",
             port);
    tu_write(dir, "cfg.json", cfg);
    int rc = tu_run(dir,
                    "(timeout 60 %s record cfg.json -o rec.cbors & pid=$!; timeout 60 %s sim stins "
                    "--endpoint tcp://127.0.0.1:%d --synthetic 10 --shape 24x16 --seed 5; "
                    "wait $pid) && %s synth -o ref.cbors --frames 10 --shape 24x16 --seed 5 "
                    "--stream det --filename sim/scan.h5",
                    tu_build("weir"), tu_build("weir"), port, tu_build("weir"));
    char *o = tu_output();
    if (rc) fail_msg("record: exit %d:\n%s", rc, o);
    free(o);
    /* the recorded events, written again without created_at, are the
     * reference capture byte for byte (same frames, same numbering) */
    char p[4200], err[256];
    snprintf(p, sizeof p, "%s/rec.cbors", dir);
    weir_cbors_reader *r;
    assert_int_equal(weir_cbors_open(p, &r, err, sizeof err), 0);
    size_t rlen;
    snprintf(p, sizeof p, "%s/ref.cbors", dir);
    uint8_t *ref = tu_read_file(p, &rlen);
    size_t off = 0;
    int events = 0;
    weir_event *ev;
    while (weir_cbors_next_event(r, &ev) == 0 && ev) {
        assert_non_null(ev->created_at); /* recorded with its time, as dranspose does */
        assert_int_equal(strlen(ev->created_at) >= 20, 1);
        assert_int_equal(ev->created_at[strlen(ev->created_at) - 1], 'Z');
        uint8_t *enc;
        size_t len;
        assert_int_equal(weir_cbors_encode_event(ev, NULL, &enc, &len), 0);
        assert_true(off + len <= rlen);
        assert_memory_equal(enc, ref + off, len);
        off += len;
        free(enc);
        weir_event_free(ev);
        events++;
    }
    assert_int_equal(events, 12);
    assert_int_equal(off, rlen);
    free(ref);
    weir_cbors_close(r);
    /* raw: dump_xrd's STINS messages served and recorded as they arrive */
    rc = tu_run(
        dir,
        "(timeout 60 %s record cfg.json -o raw.cbors --raw & pid=$!; timeout 60 %s sim stins "
        "--endpoint tcp://127.0.0.1:%d --from %s; wait $pid)",
        tu_build("weir"), tu_build("weir"), port, tu_shared("dranspose/dump_xrd.cbors"));
    o = tu_output();
    if (rc) fail_msg("record --raw: exit %d:\n%s", rc, o);
    free(o);
    weir_cbors_reader *a, *b;
    snprintf(p, sizeof p, "%s/raw.cbors", dir);
    assert_int_equal(weir_cbors_open(p, &a, err, sizeof err), 0);
    assert_int_equal(weir_cbors_kind_of(a), WEIR_CBORS_RAW);
    assert_int_equal(weir_cbors_open(tu_shared("dranspose/dump_xrd.cbors"), &b, err, sizeof err),
                     0);
    int n = 0;
    for (;;) {
        weir_msg m;
        weir_msg_init(&m);
        int eof = 0;
        assert_int_equal(weir_cbors_next_raw(a, &m, &eof), 0);
        if (eof) break;
        assert_int_equal(weir_cbors_next_event(b, &ev), 0);
        assert_non_null(ev);
        const weir_msg *want = &ev->streams[0].msg;
        assert_int_equal(m.nparts, want->nparts);
        for (size_t k = 0; k < m.nparts; k++) {
            assert_int_equal(weir_buf_size(m.parts[k]), weir_buf_size(want->parts[k]));
            assert_memory_equal(weir_buf_data(m.parts[k]), weir_buf_data(want->parts[k]),
                                weir_buf_size(m.parts[k]));
        }
        weir_event_free(ev);
        weir_msg_clear(&m);
        n++;
    }
    assert_int_equal(n, 11);
    weir_cbors_close(a);
    weir_cbors_close(b);
}

/* DECTRIS stream v1 and v2 from weir's simulator into weir run: the frame
 * sums equal the sums of the regenerated frames. */
static void dectris_run(const char *proto, const char *comp)
{
    char name[64];
    snprintf(name, sizeof name, "dectris-%s-%s", proto, comp);
    const char *dir = tu_tmpdir(name);
    int port = tu_free_port();
    sum_config(dir, proto, port, 1, "");
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim %s --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 9 --shape 40x24 --seed 13 --compression %s; "
                    "wait $pid)",
                    tu_build("weir"), tu_build("weir"), proto, port, comp);
    char *o = tu_output();
    if (rc) fail_msg("%s/%s: exit %d:\n%s", proto, comp, rc, o);
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 9);
    for (int ev = 1; ev <= 9; ev++) /* image i is event i + 1 */
        assert_true(sums[ev] == frame_total(40, 24, 13, (uint64_t)ev - 1));
}

/* An image left from the previous series (DECTRIS series ids) is dropped
 * and counted; every image of the current series is processed. */
static void test_stale_series(void **state)
{
    const char *dir = tu_tmpdir("stale-series");
    int port = tu_free_port();
    sum_config(dir, "dectris2", port, 1, "");
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim dectris2 --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 6 --shape 8x8 --seed 4 --fault stale:2; "
                    "wait $pid)",
                    tu_build("weir"), tu_build("weir"), port);
    char *o = tu_output();
    if (rc != 3) fail_msg("exit %d, expected 3:\n%s", rc, o);
    assert_non_null(strstr(o, "series 7: 1 messages of another series dropped"));
    assert_non_null(strstr(o, "0 missing frames, 0 duplicates"));
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 6);
    for (int ev = 1; ev <= 6; ev++)
        assert_true(sums[ev] == frame_total(8, 8, 4, (uint64_t)ev - 1));
}

/* Two streams with their own policies. The frame-sum worker sums the first
 * stream of the event, so an event's sum tells which streams it had:
 * stream a (seed 21, policy partial) loses frame 3 -> event 4 is emitted
 * with b's frame (seed 22); stream b (policy wait) loses frame 5 -> event 6
 * is dropped whole. */
static void test_per_stream_policy(void **state)
{
    const char *dir = tu_tmpdir("policy");
    int pa = tu_free_port(), pb = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"a\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"bind\": true, \"policy\": \"partial\"},\n"
             "  {\"name\": \"b\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"bind\": true, \"policy\": \"wait\"}],\n"
             " \"reorder_ms\": 300, \"worker\": \"%s\", \"reducer\": \"%s:sum_reducer\",\n"
             " \"parameters\": {\"report\": \"%s/sums.txt\"}}\n",
             pa, pb, tu_build("examples/frame_sum_worker.so"),
             tu_build("tests/plugins/test_plugins.so"), dir);
    tu_write(dir, "cfg.json", cfg);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; "
                    "timeout 60 %s sim stins --endpoint tcp://127.0.0.1:%d --synthetic 8 "
                    "--shape 8x8 --seed 21 --fault drop:3 & "
                    "timeout 60 %s sim stins --endpoint tcp://127.0.0.1:%d --synthetic 8 "
                    "--shape 8x8 --seed 22 --fault drop:5; wait $pid)",
                    tu_build("weir"), tu_build("weir"), pa, tu_build("weir"), pb);
    char *o = tu_output();
    if (rc != 3) fail_msg("exit %d, expected 3:\n%s", rc, o);
    assert_non_null(strstr(o, "1 dropped, 1 emitted partial"));
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 7);
    for (int ev = 1; ev <= 8; ev++) {
        if (ev == 6)
            assert_true(isnan(sums[ev]));
        else if (ev == 4)
            assert_true(sums[ev] == frame_total(8, 8, 22, 3));
        else
            assert_true(sums[ev] == frame_total(8, 8, 21, (uint64_t)ev - 1));
    }
}

/* A stream with timeout_ms that goes silent: once the other stream has a
 * frame, it is waited for that long, then the event goes on without it
 * (policy partial); each frame given up is counted. */
static void test_stream_timeout(void **state)
{
    const char *dir = tu_tmpdir("stream-timeout");
    int pa = tu_free_port(), pb = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"a\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"bind\": true},\n"
             "  {\"name\": \"b\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"bind\": true, \"policy\": \"partial\", "
             "\"timeout_ms\": 200}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s:sum_reducer\",\n"
             " \"parameters\": {\"report\": \"%s/sums.txt\"}}\n",
             pa, pb, tu_build("examples/frame_sum_worker.so"),
             tu_build("tests/plugins/test_plugins.so"), dir);
    tu_write(dir, "cfg.json", cfg);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; "
                    "timeout 60 %s sim stins --endpoint tcp://127.0.0.1:%d --synthetic 8 "
                    "--shape 8x8 --seed 21 & "
                    "timeout 60 %s sim stins --endpoint tcp://127.0.0.1:%d --synthetic 8 "
                    "--shape 8x8 --seed 22 --fault disconnect:5; "
                    "sleep 4; kill -TERM $pid; wait $pid)",
                    tu_build("weir"), tu_build("weir"), pa, tu_build("weir"), pb);
    char *o = tu_output();
    if (rc != 3) fail_msg("exit %d, expected 3:\n%s", rc, o);
    assert_non_null(strstr(o, "0 messages of another series dropped, 3 frames given up"));
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 8);
    for (int ev = 1; ev <= 8; ev++)
        assert_true(sums[ev] == frame_total(8, 8, 21, (uint64_t)ev - 1));
}

/* The ARINA NeXus master (16 frames of 192x192 uint32, bitshuffle-LZ4 in
 * HDF5) served by weir sim as DECTRIS stream v1 and v2: every frame sum
 * equals the sum HDF5 itself decodes (through the bitshuffle filter
 * plug-in, not weir's decoder). */
static void test_dectris_from_master(void **state)
{
    char data[4200], master[4200];
    snprintf(master, sizeof master, "%s", tu_shared("dectris/arina/test_00_master.h5"));
    snprintf(data, sizeof data, "%s", tu_shared("dectris/arina/test_00_data_000001.h5"));
    hid_t f = H5Fopen(data, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "/entry/data/data", H5P_DEFAULT);
    uint32_t *px = malloc(16 * 192 * 192 * 4);
    assert_true(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, px) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    double truth[16];
    for (int i = 0; i < 16; i++) {
        truth[i] = 0;
        for (int k = 0; k < 192 * 192; k++)
            truth[i] += px[(size_t)i * 192 * 192 + k];
    }
    free(px);
    const char *protos[2] = {"dectris1", "dectris2"}, *comps[2] = {"bslz4", "lz4"};
    for (int v = 0; v < 2; v++) {
        char name[64];
        snprintf(name, sizeof name, "arina-%s", protos[v]);
        const char *dir = tu_tmpdir(name);
        int port = tu_free_port();
        sum_config(dir, protos[v], port, 1, "");
        int rc = tu_run(dir,
                        "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim %s --endpoint "
                        "tcp://127.0.0.1:%d --from %s --compression %s; wait $pid)",
                        tu_build("weir"), tu_build("weir"), protos[v], port, master, comps[v]);
        char *o = tu_output();
        if (rc) fail_msg("%s: exit %d:\n%s", protos[v], rc, o);
        free(o);
        double sums[20];
        assert_int_equal(read_sums(dir, sums, 20), 16);
        for (int ev = 1; ev <= 16; ev++)
            assert_true(sums[ev] == truth[ev - 1]);
    }
    /* a file that is not a master: a clear error naming it */
    char *o;
    int rc =
        tu_run(tu_tmpdir("arina-bad"), "%s sim dectris2 --endpoint tcp://127.0.0.1:1 --from %s",
               tu_build("weir"), data);
    o = tu_output();
    assert_int_equal(rc, 1);
    assert_non_null(strstr(o, "test_00_data_000001.h5: /entry/data has no data_NNNNNN links"));
    free(o);
}

static void test_dectris_v1_v2(void **state)
{
    dectris_run("dectris1", "bslz4");
    dectris_run("dectris1", "none");
    dectris_run("dectris2", "bslz4");
    dectris_run("dectris2", "lz4");
}

/* A slow pipeline pushes back on the sender instead of growing memory:
 * 300 frames of 256x512 uint16 (78.6 MB) sent as fast as a PUSH socket with
 * a send high-water mark of 2 allows, into a worker summing every frame 40
 * times. Nothing is lost, and weir's peak memory stays far below the data
 * sent (queues hold a few dozen frames at most). */
static void test_back_pressure(void **state)
{
    const char *dir = tu_tmpdir("backpressure");
    int port = tu_free_port();
    sum_config(dir, "stins", port, 1, "\"rcvhwm\": 4"); /* and repeat = 40 */
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim stins --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 300 --shape 256x512 --seed 3 --sndhwm 2; "
                    "wait $pid)",
                    tu_build("weir"), tu_build("weir"), port);
    char *o = tu_output();
    if (rc) fail_msg("exit %d:\n%s", rc, o);
    assert_non_null(strstr(o, "0 missing frames, 0 duplicates"));
    const char *pm = strstr(o, "peak memory ");
    assert_non_null(pm);
    double mb = atof(pm + strlen("peak memory "));
#if defined(__SANITIZE_ADDRESS__)
    print_message("peak memory %.1f MB (not compared: AddressSanitizer keeps freed memory "
                  "in quarantine)\n",
                  mb);
#else
    assert_true(mb > 0 && mb < 60.0); /* the scan is 78.6 MB */
#endif
    free(o);
    double sums[302];
    assert_int_equal(read_sums(dir, sums, 302), 300);
    assert_true(sums[300] == frame_total(256, 512, 3, 299));
}

/* Merlin's data port served by weir sim from the shared .mib files, read by
 * weir run over TCP: the frame sums match the ground truth in
 * ../shared/data/README.md. */
static void merlin_run(const char *file, int frames, double first, double total)
{
    const char *dir = tu_tmpdir("merlin");
    int port = tu_free_port();
    sum_config(dir, "merlin", port, 0, ""); /* weir connects to the detector's port */
    char rel[256];
    snprintf(rel, sizeof rel, "merlin/%s", file);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim merlin --endpoint "
                    "tcp://127.0.0.1:%d --from %s; wait $pid)",
                    tu_build("weir"), tu_build("weir"), port, tu_shared(rel));
    char *o = tu_output();
    if (rc) fail_msg("%s: exit %d:\n%s", file, rc, o);
    free(o);
    double sums[16], sum = 0;
    assert_int_equal(read_sums(dir, sums, 16), frames);
    assert_true(sums[1] == first);
    for (int ev = 1; ev <= frames; ev++)
        sum += sums[ev];
    assert_true(sum == total);
}

/* The nav shape plug-ins get (host->nav_shape), for 9 Merlin frames:
 * inferred square, explicit with -1, from the on_determine_nav_shape hook
 * (which sees WEIR_FRAMES), and a shape that cannot hold 9 frames (a clear
 * error). on_ready_for_data runs once the streams are ready: the simulator
 * starts only when the hook's flag file exists. */
static void nav_run(const char *extra, int expect_rc, const char *expect)
{
    const char *dir = tu_tmpdir("navshape");
    int port = tu_free_port();
    char ex[1024];
    int hook = strstr(extra, "on_determine") != NULL;
    snprintf(ex, sizeof ex, "\"hooks\": {\"on_ready_for_data\": \"touch %s/ready.flag\"%s%s}%s%s",
             dir, hook ? ", " : "", hook ? extra : "", !hook && *extra ? ", " : "",
             hook ? "" : extra);
    sum_config(dir, "merlin", port, 0, ex);
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; n=0; while [ ! -f ready.flag ] && "
                    "[ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; timeout 60 %s sim merlin "
                    "--endpoint tcp://127.0.0.1:%d --from %s; wait $pid)",
                    tu_build("weir"), tu_build("weir"), port,
                    tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"));
    char *o = tu_output();
    if (rc != expect_rc) fail_msg("%s: exit %d, expected %d:\n%s", extra, rc, expect_rc, o);
    if (expect_rc) {
        assert_non_null(strstr(o, expect));
    } else {
        char p[4200];
        snprintf(p, sizeof p, "%s/sums.txt.nav", dir);
        size_t nl;
        char *nav = (char *)tu_read_file(p, &nl);
        if (strncmp(nav, expect, strlen(expect))) fail_msg("nav: '%s', expected '%s'", nav, expect);
        free(nav);
    }
    free(o);
}

/* The same hooks written in C (weir/hooks.h): the plug-in's
 * on_ready_for_data creates the flag the simulator waits for, and its
 * on_determine_nav_shape answers (-1, 3). */
static void test_hooks_plugin(void **state)
{
    const char *dir = tu_tmpdir("hooks-plugin");
    int port = tu_free_port();
    char ex[1024];
    snprintf(ex, sizeof ex, "\"hooks\": {\"plugin\": \"%s\"}",
             tu_build("tests/plugins/test_hooks.so"));
    sum_config(dir, "merlin", port, 0, ex);
    int rc = tu_run(dir,
                    "(export WEIR_TEST_HOOK_FLAG=%s/ready.flag; timeout 60 %s run cfg.json & "
                    "pid=$!; n=0; while [ ! -f ready.flag ] && [ $n -lt 400 ]; do sleep 0.05; "
                    "n=$((n+1)); done; timeout 60 %s sim merlin --endpoint tcp://127.0.0.1:%d "
                    "--from %s; wait $pid)",
                    dir, tu_build("weir"), tu_build("weir"), port,
                    tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"));
    char *o = tu_output();
    if (rc) fail_msg("exit %d:\n%s", rc, o);
    free(o);
    char p[4200];
    size_t nl;
    snprintf(p, sizeof p, "%s/sums.txt.nav", dir);
    char *nav = (char *)tu_read_file(p, &nl);
    nav[nl] = 0;
    assert_string_equal(nav, "frames 9 ndim 2 3 3\n");
    free(nav);
    snprintf(p, sizeof p, "%s/ready.flag", dir);
    char *flag = (char *)tu_read_file(p, &nl);
    flag[nl] = 0;
    assert_string_equal(flag, "1\n");
    free(flag);
    /* a hooks object that is not one is refused, naming it */
    snprintf(ex, sizeof ex, "\"hooks\": {\"plugin\": \"%s:weir_plugin_descriptor_nope\"}",
             tu_build("tests/plugins/test_hooks.so"));
    sum_config(dir, "merlin", port, 0, ex);
    rc = tu_run(dir, "%s run cfg.json", tu_build("weir"));
    o = tu_output();
    assert_int_equal(rc, 1);
    assert_non_null(strstr(o, "test_hooks.so:weir_plugin_descriptor_nope: no such symbol"));
    free(o);
}

static void test_nav_shape_and_hooks(void **state)
{
    nav_run("", 0, "frames 9 ndim 2 3 3\n");
    nav_run("\"nav_shape\": [-1, 9]", 0, "frames 9 ndim 2 1 9\n");
    nav_run("\"on_determine_nav_shape\": \"echo 1,$WEIR_FRAMES,1\"", 0, "frames 9 ndim 3 1 9 1\n");
    nav_run("\"nav_shape\": [4, 4]", 1, "the given shape holds 16 frames");
}

/* ASI TPX3 over TCP: weir sim serves a synthetic sparse stream (fixed seed)
 * to weir run; every frame sum equals the sum of that frame's CSR values,
 * summed here from the stream's chunks through the element accessors. */
static void test_tpx3(void **state)
{
    weir_tpx3_synth_opts so = {.nframes = 10,
                               .frames_per_chunk = 4,
                               .nav_h = 1,
                               .nav_w = 10,
                               .sig_h = 16,
                               .sig_w = 16,
                               .max_hits = 64,
                               .max_value = 9,
                               .indptr_dtype = WEIR_TPX3_U32,
                               .indices_dtype = WEIR_TPX3_U32,
                               .value_dtype = WEIR_TPX3_U16,
                               .seed = 5};
    char err[256];
    weir_buf *b;
    weir_tpx3_reader *r;
    assert_int_equal(weir_tpx3_synth(&so, &b, err, sizeof err), 0);
    assert_int_equal(weir_tpx3_reader_new(b, "t", &r), 0);
    weir_buf_unref(b);
    double truth[10] = {0};
    int frame = 0;
    weir_tpx3_acq_start acq = {0};
    for (;;) {
        weir_tpx3_item it;
        int eof = 0;
        assert_int_equal(weir_tpx3_reader_next(r, 1, &it, &eof, err, sizeof err), 0);
        if (eof) break;
        if (it.hdr.tag == WEIR_TPX3_ACQ_START) acq = it.hdr.u.acq_start;
        if (it.hdr.tag == WEIR_TPX3_ARRAY_CHUNK) {
            weir_tpx3_chunk c;
            weir_buf *pay = weir_buf_view(it.wire, WEIR_TPX3_HEADER_SIZE,
                                          weir_buf_size(it.wire) - WEIR_TPX3_HEADER_SIZE);
            assert_int_equal(
                weir_tpx3_chunk_view(&acq, &it.hdr.u.chunk, pay, 1, &c, err, sizeof err), 0);
            weir_buf_unref(pay);
            for (size_t row = 0; row < it.hdr.u.chunk.nframes; row++, frame++)
                for (uint64_t k = weir_tpx3_chunk_indptr(&c, row);
                     k < weir_tpx3_chunk_indptr(&c, row + 1); k++)
                    truth[frame] += (double)weir_tpx3_chunk_value(&c, k);
            weir_tpx3_chunk_clear(&c);
        }
        weir_tpx3_item_clear(&it);
    }
    weir_tpx3_reader_free(r);
    assert_int_equal(frame, 10);
    const char *dir = tu_tmpdir("tpx3");
    int port = tu_free_port();
    sum_config(dir, "asi_tpx3", port, 0, "");
    int rc = tu_run(dir,
                    "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim asi_tpx3 --endpoint "
                    "tcp://127.0.0.1:%d --synthetic 10 --shape 16x16 --seed 5; wait $pid)",
                    tu_build("weir"), tu_build("weir"), port);
    char *o = tu_output();
    if (rc) fail_msg("exit %d:\n%s", rc, o);
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), 10);
    for (int ev = 1; ev <= 10; ev++)
        assert_true(sums[ev] == truth[ev - 1]);

    /* weir record --raw keeps the TCP byte stream as it came: the same bytes
     * as the synthetic stream; served again from that recording, the sums
     * are the same */
    dir = tu_tmpdir("tpx3-record");
    port = tu_free_port();
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"t\", \"protocol\": \"asi_tpx3\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\"}]}",
             port);
    tu_write(dir, "rec.json", cfg);
    rc = tu_run(dir,
                "(timeout 60 %s record rec.json --raw -o tpx3.bin & pid=$!; timeout 60 %s sim "
                "asi_tpx3 --endpoint tcp://127.0.0.1:%d --synthetic 10 --shape 16x16 --seed 5; "
                "wait $pid)",
                tu_build("weir"), tu_build("weir"), port);
    o = tu_output();
    if (rc) fail_msg("record: exit %d:\n%s", rc, o);
    free(o);
    weir_buf *want;
    assert_int_equal(weir_tpx3_synth(&so, &want, err, sizeof err), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/tpx3.bin", dir);
    size_t n;
    uint8_t *got = tu_read_file(p, &n);
    assert_int_equal(n, weir_buf_size(want));
    assert_memory_equal(got, weir_buf_data(want), n);
    free(got);
    weir_buf_unref(want);
    port = tu_free_port();
    sum_config(dir, "asi_tpx3", port, 0, "");
    rc = tu_run(dir,
                "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim asi_tpx3 --endpoint "
                "tcp://127.0.0.1:%d --from tpx3.bin; wait $pid)",
                tu_build("weir"), tu_build("weir"), port);
    o = tu_output();
    if (rc) fail_msg("replayed recording: exit %d:\n%s", rc, o);
    free(o);
    assert_int_equal(read_sums(dir, sums, 16), 10);
    for (int ev = 1; ev <= 10; ev++)
        assert_true(sums[ev] == truth[ev - 1]);
}

/* Waits (in the shell) until a TCP port accepts connections. */
#define WAIT_PORT                                                                                  \
    "python3 -c \"import socket,time,sys\n"                                                        \
    "for i in range(200):\n"                                                                       \
    "  try: socket.create_connection(('127.0.0.1', %d), 0.2).close(); sys.exit(0)\n"               \
    "  except OSError: time.sleep(0.05)\n"                                                         \
    "sys.exit(1)\"; "

/* Active acquisition: weir configures, arms and triggers the simulated
 * detector itself. DECTRIS through SIMPLON (ints: 2 triggers of 3 images;
 * the series id is the arm's sequence id) and Merlin through its control
 * port (software trigger); the frame sums are the regenerated frames' sums
 * and, for Merlin, the data README's ground truth. */
static void test_active(void **state)
{
    const char *dir;
    int port;
    char extra[512];
    double sums[16];
    int rc;
    char *o;
    const char *protos[2] = {"dectris2", "dectris1"}, *details[2] = {"basic", "all"};
    for (int v = 0; v < 2; v++) {
        dir = tu_tmpdir(v ? "active-dectris1" : "active-dectris2");
        port = tu_free_port();
        int http = tu_free_port();
        snprintf(extra, sizeof extra,
                 "\"active\": {\"detector\": \"dectris\", \"api\": \"127.0.0.1:%d\", "
                 "\"header_detail\": \"%s\", \"config\": {\"nimages\": 3, \"ntrigger\": 2, "
                 "\"trigger_mode\": \"ints\"}}",
                 http, details[v]);
        sum_config(dir, protos[v], port, 1, extra);
        rc = tu_run(dir,
                    "(timeout 60 %s sim %s --simplon %d --endpoint tcp://127.0.0.1:%d "
                    "--synthetic 1 --shape 8x8 --seed 3 --loop 1 & sim=$!; " WAIT_PORT
                    "timeout 60 %s run cfg.json; r=$?; wait $sim; exit $r)",
                    tu_build("weir"), protos[v], http, port, http, tu_build("weir"));
        o = tu_output();
        if (rc) fail_msg("%s active: exit %d:\n%s", protos[v], rc, o);
        assert_non_null(strstr(o, "series 1 armed (ints, 2 x 3)"));
        free(o);
        assert_int_equal(read_sums(dir, sums, 16), 6);
        for (int ev = 1; ev <= 6; ev++)
            assert_true(sums[ev] == frame_total(8, 8, 3, (uint64_t)ev - 1));
    }

    dir = tu_tmpdir("active-merlin");
    port = tu_free_port();
    int ctl = tu_free_port();
    snprintf(extra, sizeof extra,
             "\"active\": {\"detector\": \"merlin\", \"control\": \"127.0.0.1:%d\", "
             "\"frames\": 9, \"trigger\": \"soft\"}",
             ctl);
    sum_config(dir, "merlin", port, 0, extra);
    rc = tu_run(dir,
                "(timeout 60 %s sim merlin --control %d --endpoint tcp://127.0.0.1:%d --from %s & "
                "sim=$!; " WAIT_PORT "timeout 60 %s run cfg.json; r=$?; wait $sim; exit $r)",
                tu_build("weir"), ctl, port,
                tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"), ctl,
                tu_build("weir"));
    o = tu_output();
    if (rc) fail_msg("merlin active: exit %d:\n%s", rc, o);
    free(o);
    double total = 0;
    assert_int_equal(read_sums(dir, sums, 16), 9);
    assert_true(sums[1] == 29032);
    for (int ev = 1; ev <= 9; ev++)
        total += sums[ev];
    assert_true(total == 260753);
}

/* The beamline streams of dranspose's raw captures, replayed by weir sim as
 * recorded into weir run: every frame becomes its own event, in order
 * (counts from the captures: Xspress3 5 images of 3 parts; Contrast 20
 * "running" records and heartbeats that carry no frame; PandA PCAP 1500
 * triggers in 100 vectorised messages; AlbaEM 4 frames). */
static void beamline_run(const char *proto, const char *capture, int images, int parts,
                         const char *expect)
{
    int tcp = !strcmp(proto, "pcap-raw"); /* weir connects to the PandA's port */
    const char *scheme = strcmp(proto, "sardana") ? "tcp" : "http"; /* Sardana POSTs */
    char name[64];
    snprintf(name, sizeof name, "bl-%s", proto);
    const char *dir = tu_tmpdir(name);
    int port = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"b\", \"protocol\": \"%s\", \"endpoint\": "
             "\"%s://127.0.0.1:%d\", \"bind\": %s}],\n"
             " \"worker\": \"%s:echo_worker\", \"reducer\": \"%s:slow_reducer\",\n"
             " \"parameters\": {\"report\": \"%s/r.txt\"}}\n",
             proto, scheme, port, tcp ? "false" : "true", tu_build("tests/plugins/test_plugins.so"),
             tu_build("tests/plugins/test_plugins.so"), dir);
    tu_write(dir, "cfg.json", cfg);
    char rel[256];
    snprintf(rel, sizeof rel, "dranspose/%s", capture);
    int rc = tcp ? tu_run(dir,
                          "(timeout 60 %s sim %s --endpoint tcp://127.0.0.1:%d --from %s & "
                          "sim=$!; " WAIT_PORT "timeout 60 %s run cfg.json; r=$?; wait $sim; "
                          "exit $r)",
                          tu_build("weir"), proto, port, tu_shared(rel), port, tu_build("weir"))
                 : tu_run(dir,
                          "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim %s --endpoint "
                          "%s://127.0.0.1:%d --from %s; wait $pid)",
                          tu_build("weir"), tu_build("weir"), proto, scheme, port, tu_shared(rel));
    char *o = tu_output();
    if (rc) fail_msg("%s: exit %d:\n%s", proto, rc, o);
    if (*expect) assert_non_null(strstr(o, expect));
    assert_non_null(strstr(o, "0 malformed, 0 missing frames, 0 duplicates"));
    free(o);
    char p[4200], line[256];
    snprintf(p, sizeof p, "%s/r.txt", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static int seen[4096];
    memset(seen, 0, sizeof seen);
    int last = -1;
    while (fgets(line, sizeof line, f)) {
        long long n, w, sc, pp;
        int wk;
        char hash[80];
        if (sscanf(line, "result %lld %lld %lld %d %79s %lld", &n, &w, &sc, &wk, hash, &pp) != 6)
            continue;
        assert_true(n >= 0 && n < 4096);
        seen[n]++;
        if (n >= 1 && n <= images && parts) assert_int_equal(pp, parts);
        if (n > last) last = (int)n;
    }
    fclose(f);
    assert_int_equal(seen[0], 2); /* the start goes to both workers */
    for (int ev = 1; ev <= images; ev++)
        assert_int_equal(seen[ev], 1);
    assert_int_equal(last, images + 1); /* the series end */
}

static void test_beamline_streams(void **state)
{
    beamline_run("xspress3", "xspress3-multipart.cbors", 5, 3, "");
    beamline_run("contrast", "contrast-dump.cbors", 20, 1,
                 /* heartbeats 0 and 13; 24 and 25 come after the series end */
                 "2 messages without a frame (heartbeats, acknowledgements)");
    beamline_run("pcap", "pcap-zmq.cbors", 1500, 0, "");
    beamline_run("albaem", "albaem-dump.cbors", 4, 0, "");
    /* LeCroy: PREPARE, two sequences of two traces (regrouped into one message
     * each: SeqStart, (meta, data, timestamps) x 2, SeqEnd), STOP */
    beamline_run("lecroy", "maui-02-continuous-3.cbor.gz", 2, 8, "");
    /* the PandA's raw TCP port: "OK", the header, 11 samples, "END 11 Disarmed" */
    beamline_run("pcap-raw",
                 "danmax/dumppcap_rotRAW-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors", 11,
                 1, "1 messages without a frame");
    /* Sardana's recorder POSTs over HTTP: DataDescription, points 0..10, RecordEnd */
    beamline_run("sardana",
                 "danmax/dumpsardana-ingester-70b3ce40-6e3e-4931-8dbc-245334e26eae.cbors", 11, 1,
                 "");
}

/* Merlin's simulator with faults: frame 3 dropped, frame 5 sent twice,
 * frame 7 garbage; each is counted, the other frames are exactly those of
 * a clean run. */
static void test_merlin_faults(void **state)
{
    char mib[4200];
    snprintf(mib, sizeof mib, "%s",
             tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"));
    double clean[16], got[16];
    for (int pass = 0; pass < 2; pass++) {
        const char *dir = tu_tmpdir(pass ? "merlin-faults" : "merlin-clean");
        int port = tu_free_port();
        sum_config(dir, "merlin", port, 0, "\"reorder_ms\": 200");
        int rc = tu_run(dir,
                        "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim merlin --endpoint "
                        "tcp://127.0.0.1:%d --from %s %s; wait $pid)",
                        tu_build("weir"), tu_build("weir"), port, mib,
                        pass ? "--fault drop:3 --fault dup:5 --fault garbage:7" : "");
        char *o = tu_output();
        if (rc != (pass ? 3 : 0)) fail_msg("pass %d: exit %d:\n%s", pass, rc, o);
        if (pass) {
            assert_non_null(strstr(o, "1 malformed, 2 missing frames, 1 duplicates"));
        }
        free(o);
        assert_int_equal(read_sums(dir, pass ? got : clean, 16), pass ? 7 : 9);
    }
    for (int ev = 1; ev <= 9; ev++)
        if (ev == 4 || ev == 8)
            assert_true(isnan(got[ev]));
        else
            assert_true(got[ev] == clean[ev]);
}

/* The check, literally: weir sim merlin serves the 9-frame 12-bit
 * file, weir run with the frame-sum worker (send_frame) and the sum-image
 * reducer writes the sum image; it equals the sum of the frames decoded
 * here, and its total is the data README's 260753. */
static void test_merlin_sum_image(void **state)
{
    char mib[4200], err[256];
    snprintf(mib, sizeof mib, "%s",
             tu_shared("merlin/Single_9_Frame_CounterDepth_12_Rows_256.mib"));
    double *want = calloc(256 * 256, sizeof *want);
    weir_merlin_reader *r;
    assert_int_equal(weir_merlin_reader_open(mib, &r, err, sizeof err), 0);
    for (;;) {
        weir_merlin_frame fr;
        int eof = 0;
        assert_int_equal(weir_merlin_reader_next(r, &fr, &eof, err, sizeof err), 0);
        if (eof) break;
        weir_array a;
        assert_int_equal(weir_merlin_decode(fr.buf, fr.offset, &fr.hdr, &a, err, sizeof err), 0);
        assert_int_equal(a.shape[0] * a.shape[1], 256 * 256);
        for (size_t i = 0; i < 256 * 256; i++)
            want[i] += weir_array_get_f64(&a, i);
        weir_array_release(&a);
        weir_merlin_frame_clear(&fr);
    }
    weir_merlin_reader_free(r);
    const char *dir = tu_tmpdir("merlin-sum-image");
    int port = tu_free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"m\", \"protocol\": \"merlin\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\"}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s\", \"output_dir\": \"%s\",\n"
             " \"parameters\": {\"send_frame\": \"True\"}}\n",
             port, tu_build("examples/frame_sum_worker.so"),
             tu_build("examples/sum_image_reducer.so"), dir);
    tu_write(dir, "cfg.json", cfg);
    /* the simulator first, probed until its port is up (the probe's connection
     * must not be taken for the receiver), then weir */
    int rc = tu_run(
        dir,
        "(timeout 60 %s sim merlin --endpoint tcp://127.0.0.1:%d --from %s & sim=$!; " WAIT_PORT
        "timeout 60 %s run cfg.json; r=$?; wait $sim; exit $r)",
        tu_build("weir"), port, mib, port, tu_build("weir"));
    char *o = tu_output();
    if (rc) fail_msg("exit %d:\n%s", rc, o);
    free(o);
    char p[4200];
    snprintf(p, sizeof p, "%s/sum_image.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "sum_image", H5P_DEFAULT);
    double *got = calloc(256 * 256, sizeof *got);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    double total = 0;
    for (size_t i = 0; i < 256 * 256; i++) {
        assert_true(got[i] == want[i]);
        total += got[i];
    }
    assert_true(total == 260753);
    free(got);
    free(want);
}

static void test_merlin_tcp(void **state)
{
    /* ground truth: ../shared/data/README.md, merlin table */
    merlin_run("Single_9_Frame_CounterDepth_12_Rows_256.mib", 9, 29032, 260753);
    merlin_run("Quad_1_Frame_CounterDepth_12_Rows_256.mib", 1, 845907, 845907);
    merlin_run("Single_9_Frame_CounterDepth_6_Rows_256.mib", 9, 24125, 217684);
}

/* Concert (no start message; frames by position, or by ucad's
 * "frame-number"), with a dropped frame in the numbered case. */
static void concert_run(const char *extra, int expect_rc, int nframes, int missing)
{
    const char *dir = tu_tmpdir("concert");
    int port = tu_free_port();
    sum_config(dir, "concert", port, 0, "\"reorder_ms\": 200");
    /* Concert's sender binds, the receiver connects */
    int rc =
        tu_run(dir,
               "(timeout 60 %s run cfg.json & pid=$!; timeout 60 %s sim concert --bind --endpoint "
               "tcp://127.0.0.1:%d --synthetic 8 --shape 20x30 --seed 17 %s; wait $pid)",
               tu_build("weir"), tu_build("weir"), port, extra);
    char *o = tu_output();
    if (rc != expect_rc) fail_msg("concert %s: exit %d:\n%s", extra, rc, o);
    free(o);
    double sums[16];
    assert_int_equal(read_sums(dir, sums, 16), nframes);
    for (int ev = 1; ev <= 8; ev++)
        if (ev == missing + 1)
            assert_true(isnan(sums[ev]));
        else
            assert_true(sums[ev] == frame_total(20, 30, 17, (uint64_t)ev - 1));
}

static void test_concert(void **state)
{
    concert_run("", 0, 8, -1);
    concert_run("--frame-numbers --fault drop:2", 3, 7, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_sender_threaded),
        cmocka_unit_test(test_python_sender_mpi),
        cmocka_unit_test(test_sim_faults_detected),
        cmocka_unit_test(test_continuous),
        cmocka_unit_test(test_sim_disconnect),
        cmocka_unit_test(test_record_dump_and_raw),
        cmocka_unit_test(test_dectris_v1_v2),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_merlin_tcp),
        cmocka_unit_test(test_merlin_sum_image),
        cmocka_unit_test(test_merlin_faults),
        cmocka_unit_test(test_beamline_streams),
        cmocka_unit_test(test_active),
        cmocka_unit_test(test_tpx3),
        cmocka_unit_test(test_nav_shape_and_hooks),
        cmocka_unit_test(test_hooks_plugin),
        cmocka_unit_test(test_concert),
        cmocka_unit_test(test_stale_series),
        cmocka_unit_test(test_dectris_from_master),
        cmocka_unit_test(test_per_stream_policy),
        cmocka_unit_test(test_stream_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
