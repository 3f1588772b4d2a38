/* test_mpi.c — the pipeline on MPI ranks, with mpirun --oversubscribe -n 4
 * on this machine (rank 0 source, ranks 1-2 workers, rank 3 reducer).
 *
 * - dump_xrd.cbors through the tutorial plug-ins: the HDF5 `reduced` values
 *   are bit-identical to the threaded replay's, and equal ROI means computed
 *   here from the raw bytes; also with two worker threads per rank.
 * - a synthetic bslz4 capture through the frame-sum worker: identical `sum`
 *   datasets, equal to sums of the regenerated frames.
 * - signal split on ranks: the per-event totals of the row slices equal the
 *   full-frame sums.
 * - a worker rank killed mid-run ends the job with mpirun naming the rank;
 *   a hung worker rank is detected within the timeout with weir's error, or,
 *   with --continue-without-dead, the run goes on and reports the lost
 *   events.
 * - the HTTP control plane of replay and run (fed by weir sim) under
 *   mpirun: results equal to values computed here, merged counters, the
 *   live stream counters, parameters across ranks and acquisitions,
 *   stop/abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/mpi.h"
#include "weir/synth.h"

#include <arpa/inet.h>
#include <cbor.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testhttp.h"

/* Under the sanitizer build, leak checking is off for the MPI processes:
 * Open MPI's components are unloaded before LeakSanitizer runs, so its own
 * allocations show up as leaks in unknown modules that cannot be
 * suppressed. weir's code on these paths is leak-checked by the threaded
 * tests; ASan and UBSan still check everything here. */
static const char *mpirun(void)
{
    return getuid() == 0
               ? "env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 mpirun --oversubscribe "
                 "--allow-run-as-root -n 4"
               : "env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 mpirun --oversubscribe "
                 "-n 4";
}

/* Reads a 1-d dataset as doubles; returns the length. */
static size_t read_ds(const char *path, const char *name, double *out, size_t cap)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("cannot open %s", path);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    assert_true(n <= cap);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    return (size_t)n;
}

static void must(int rc, int want)
{
    if (rc == want) return;
    char *o = tu_output();
    fail_msg("exit code %d, expected %d:\n%s", rc, want, o);
}

static void test_built_with_mpi(void **state)
{
    assert_true(weir_mpi_compiled()); /* the tests need the MPI build: fail loudly */
}

static void test_dump_xrd_identical(void **state)
{
    const char *dir = tu_tmpdir("mpi-xrd");
    tu_write(dir, "params.json",
             "[{\"name\": \"till_x\", \"data\": \"3\"}, {\"name\": \"from_y\", \"data\": \"7\"}]");
    const char *common = "-p params.json --quiet";
    char w[4200], r[4200], x[4200];
    snprintf(w, sizeof w, "%s", tu_build("examples/roi_mean_worker.so"));
    snprintf(r, sizeof r, "%s", tu_build("examples/tutorial_reducer.so"));
    snprintf(x, sizeof x, "%s", tu_shared("dranspose/dump_xrd.cbors"));
    must(tu_run(dir, "%s replay -w %s -r %s -f %s %s --output-dir thr", tu_build("weir"), w, r, x,
                common),
         0);
    must(tu_run(dir, "%s %s replay -w %s -r %s -f %s %s --output-dir mpi", mpirun(),
                tu_build("weir"), w, r, x, common),
         0);
    must(tu_run(dir, "%s %s replay -w %s -r %s -f %s %s --output-dir mpi2 --threads-per-rank 2",
                mpirun(), tu_build("weir"), w, r, x, common),
         0);
    double a[16], b[16], c[16];
    char pa[4200], pb[4200], pc[4200];
    snprintf(pa, sizeof pa, "%s/thr/xrd_processed.h5", dir);
    snprintf(pb, sizeof pb, "%s/mpi/xrd_processed.h5", dir);
    snprintf(pc, sizeof pc, "%s/mpi2/xrd_processed.h5", dir);
    assert_int_equal(read_ds(pa, "reduced", a, 16), 10);
    assert_int_equal(read_ds(pb, "reduced", b, 16), 10);
    assert_int_equal(read_ds(pc, "reduced", c, 16), 10);
    assert_true(isnan(b[0]) && isnan(c[0]));
    assert_memory_equal(a + 1, b + 1, 9 * sizeof(double));
    assert_memory_equal(a + 1, c + 1, 9 * sizeof(double));
    /* event 1 by hand from the reference's first rows: rows 0..2, cols 7..9 */
    /* (values checked against independent decoding in test_replay_e2e) */
    assert_float_equal(b[1], 80.0 / 9.0, 1e-5);
}

static void synth(const char *path, uint64_t frames, uint64_t seed)
{
    weir_synth_config c = {.path = path,
                           .stream = "det",
                           .filename = "scan/run.h5",
                           .frames = frames,
                           .height = 96,
                           .width = 64,
                           .dtype = WEIR_DT_U16,
                           .compression = WEIR_STINS_COMP_BSLZ4,
                           .seed = seed};
    char err[256];
    if (weir_synth_write(&c, err, sizeof err)) fail_msg("%s", err);
}

static double frame_sum(uint64_t seed, uint64_t i)
{
    weir_synth_config c = {
        .frames = 1, .height = 96, .width = 64, .dtype = WEIR_DT_U16, .seed = seed};
    static uint16_t px[96 * 64];
    weir_synth_frame(&c, i, px);
    double s = 0;
    for (size_t k = 0; k < 96 * 64; k++)
        s += px[k];
    return s;
}

static void test_synthetic_sums_and_split(void **state)
{
    const char *dir = tu_tmpdir("mpi-sum");
    char cap[4200];
    snprintf(cap, sizeof cap, "%s/cap.cbors", dir);
    synth(cap, 40, 21);
    char w[4200], r[4200], tp[4200];
    snprintf(w, sizeof w, "%s", tu_build("examples/frame_sum_worker.so"));
    snprintf(r, sizeof r, "%s", tu_build("examples/tutorial_reducer.so"));
    snprintf(tp, sizeof tp, "%s", tu_build("tests/plugins/test_plugins.so"));
    must(tu_run(dir, "%s replay -w %s -r %s -f cap.cbors --quiet --output-dir thr",
                tu_build("weir"), w, r),
         0);
    must(tu_run(dir,
                "%s %s replay -w %s -r %s -f cap.cbors --quiet --output-dir mpi --dist "
                "round-robin",
                mpirun(), tu_build("weir"), w, r),
         0);
    double a[64], b[64];
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/thr/run_processed.h5", dir);
    snprintf(pb, sizeof pb, "%s/mpi/run_processed.h5", dir);
    assert_int_equal(read_ds(pa, "sum", a, 64), 41);
    assert_int_equal(read_ds(pb, "sum", b, 64), 41);
    assert_memory_equal(a + 1, b + 1, 40 * sizeof(double));
    for (uint64_t ev = 1; ev <= 40; ev++)
        assert_true(b[ev] == frame_sum(21, ev - 1));
    /* signal split over the two worker ranks (and two threads each) */
    must(tu_run(dir,
                "%s %s replay -w %s -r %s:sum_reducer -f cap.cbors --quiet --dist split "
                "--threads-per-rank 2 --param report=%s/split.txt",
                mpirun(), tu_build("weir"), w, tp, dir),
         0);
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/split.txt", dir);
    FILE *f = fopen(sp, "r");
    assert_non_null(f);
    int ev, n = 0;
    double tot;
    while (fscanf(f, "%d %lf", &ev, &tot) == 2) {
        assert_true(ev >= 1 && ev <= 40);
        assert_true(tot == frame_sum(21, (uint64_t)ev - 1));
        n++;
    }
    fclose(f);
    assert_int_equal(n, 40);
}

static void test_killed_worker_rank(void **state)
{
    const char *dir = tu_tmpdir("mpi-kill");
    char cap[4200];
    snprintf(cap, sizeof cap, "%s/cap.cbors", dir);
    synth(cap, 60, 3);
    char tp[4200];
    snprintf(tp, sizeof tp, "%s", tu_build("tests/plugins/test_plugins.so"));
    double t0 = now_s();
    int rc = tu_run(dir,
                    "timeout 120 %s %s replay -w %s:fault_worker -r %s:slow_reducer -f "
                    "cap.cbors --param fault=kill --param report=r.txt --rank-timeout 5 "
                    "--dist round-robin --quiet",
                    mpirun(), tu_build("weir"), tp, tp);
    double dt = now_s() - t0;
    char *o = tu_output();
    if (rc == 0 || rc == 124) fail_msg("exit %d after %.1f s:\n%s", rc, dt, o);
    /* Open MPI ends the job when a rank dies and names it */
    assert_non_null(strstr(o, "rank 1"));
    assert_non_null(strstr(o, "signal 9"));
    assert_true(dt < 60);
    free(o);
}

static void test_hung_worker_rank(void **state)
{
    const char *dir = tu_tmpdir("mpi-hang");
    char cap[4200];
    snprintf(cap, sizeof cap, "%s/cap.cbors", dir);
    synth(cap, 60, 4);
    char tp[4200];
    snprintf(tp, sizeof tp, "%s", tu_build("tests/plugins/test_plugins.so"));
    double t0 = now_s();
    int rc = tu_run(dir,
                    "timeout 120 %s %s replay -w %s:fault_worker -r %s:slow_reducer -f "
                    "cap.cbors --param fault=hang --param report=r.txt --rank-timeout 2 "
                    "--dist round-robin --quiet",
                    mpirun(), tu_build("weir"), tp, tp);
    double dt = now_s() - t0;
    char *o = tu_output();
    /* weir ends the job with MPI_Abort(4); a rank torn down mid-call may make
     * mpirun report a signal instead, so any failure code is accepted when
     * weir's own message is there */
    if (rc == 0 || rc == 124) fail_msg("exit %d after %.1f s, expected failure:\n%s", rc, dt, o);
    assert_non_null(strstr(o, "worker rank 1"));
    assert_non_null(strstr(o, "FAILED"));
    assert_true(dt < 60);
    free(o);
    /* going on without it: the other rank's events are all processed and
     * the lost ones (slot 0's: odd events from 5 on, round-robin) reported */
    rc = tu_run(dir,
                "rm -f r.txt && timeout 120 %s %s replay -w %s:fault_worker -r %s:slow_reducer "
                "-f cap.cbors --param fault=hang --param report=r.txt --rank-timeout 2 "
                "--dist round-robin --continue-without-dead --quiet",
                mpirun(), tu_build("weir"), tp, tp);
    o = tu_output();
    if (rc == 0 || rc == 124) fail_msg("exit %d, expected failure (3):\n%s", rc, o);
    assert_non_null(strstr(o, "lost to dead or hung worker ranks"));
    free(o);
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/r.txt", dir);
    FILE *f = fopen(rp, "r");
    assert_non_null(f);
    char line[256];
    int seen[64] = {0};
    while (fgets(line, sizeof line, f)) {
        long long n, w;
        if (sscanf(line, "result %lld %lld", &n, &w) == 2 && n >= 0 && n < 64) seen[n]++;
    }
    fclose(f);
    for (int ev = 2; ev <= 61; ev += 2) /* even events went to the healthy slot */
        assert_int_equal(seen[ev], 1);
    for (int ev = 1; ev <= 3; ev += 2) /* before the fault */
        assert_int_equal(seen[ev], 1);
    for (int ev = 5; ev <= 61; ev += 2)
        assert_int_equal(seen[ev], 0);
}

/* ---- the HTTP control plane on a rank ---- */

/* mpirun ... weir replay of dump_xrd.cbors (till_x 3, from_y 7) serving on
 * port, with more options; output in dir/weir.log. Returns mpirun's pid. */
static pid_t spawn_mpi_replay(const char *dir, int port, const char *more)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "exec %s %s replay -w %s -r %s -f %s --param till_x=3 --param from_y=7 --quiet "
             "--output-dir out --port %d %s > weir.log 2>&1",
             mpirun(), tu_build("weir"), tu_build("examples/roi_mean_worker.so"),
             tu_build("examples/tutorial_reducer.so"), tu_shared("dranspose/dump_xrd.cbors"), port,
             more);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir)) _exit(126);
        setenv("LOG_LEVEL", "WARNING", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Exit status once it ends (deadline s), -1 if killed by a signal. */
static int wait_exit(const char *dir, pid_t pid, double s)
{
    double end = now_s() + s;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            char p[4200];
            snprintf(p, sizeof p, "%s/weir.log", dir);
            size_t n;
            char *log = (char *)tu_read_file(p, &n);
            fail_msg("mpirun did not end within %.0f s:\n%.*s", s, (int)n, log);
        }
        nap_ms(20);
    }
}

/* Non-null entries of /results/roi_mean; *rm receives the JSON (caller frees). */
static int roi_count(int port, cJSON **rm)
{
    resp r = http_get(port, "/api/v1/results/roi_mean");
    if (r.code == 404) {
        resp_free(&r);
        *rm = NULL;
        return 0;
    }
    assert_int_equal(r.code, 200);
    *rm = cJSON_Parse(r.body);
    resp_free(&r);
    assert_non_null(*rm);
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(*rm, "data")) n += cJSON_IsNumber(v);
    return n;
}

static void wait_roi(int port, int n, double s)
{
    double end = now_s() + s;
    for (;;) {
        cJSON *rm;
        int got = roi_count(port, &rm);
        cJSON_Delete(rm);
        if (got >= n) return;
        if (now_s() > end) fail_msg("roi_mean never had %d values (%d)", n, got);
        nap_ms(50);
    }
}

/* Worker-rank counters in /status: per worker slot events_in, all > 0. */
static void check_worker_counters(int port, int alive)
{
    cJSON *st = get_json(port, "/api/v1/status");
    const cJSON *w =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "stages"), "workers");
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(w, "per_worker");
    assert_int_equal(cJSON_GetArraySize(per), 2);
    const cJSON *one;
    cJSON_ArrayForEach(one, per) assert_true(jnum(one, "events_in") > 0);
    assert_true(jnum(w, "events_in") >= 2);
    assert_int_equal((int)jnum(st, "nworkers"), 2);
    if (alive >= 0) assert_int_equal((int)jnum(st, "workers_alive"), alive);
    cJSON_Delete(st);
}

/* Served from rank 0 while a --rate replay runs on 4 ranks: results as
 * computed here, worker-rank counters in /status, and a parameter POSTed
 * mid-run that reaches the worker ranks from a later event on. */
static void test_http_on_rank0(void **state)
{
    const char *dir = tu_tmpdir("mpi-http");
    double m1[16], m2[16];
    assert_int_equal(tu_xrd_roi_means(m1, 3, 7), 9);
    tu_xrd_roi_means(m2, 5, 2);
    int port = tu_free_port();
    pid_t pid = spawn_mpi_replay(dir, port, "--keep-alive --rate 2");
    wait_up(port, 60);
    wait_roi(port, 2, 60);
    check_worker_counters(port, 2);
    cJSON *pr = get_json(port, "/api/v1/progress");
    assert_true(jnum(pr, "total") > 0);
    cJSON_Delete(pr);
    cJSON *rm;
    roi_count(port, &rm);
    char old_hash[32];
    snprintf(old_hash, sizeof old_hash, "%s", jstr(rm, "params_hash"));
    cJSON_Delete(rm);
    /* a bad value is refused on the serving rank */
    resp r = post_json(port, "/api/v1/parameters", "{\"till_x\": 1.5}", NULL);
    assert_int_equal(r.code, 400);
    assert_non_null(strstr(r.body, "parameter 'till_x': expected an integer"));
    resp_free(&r);
    r = post_json(port, "/api/v1/parameters", "{\"till_x\": 5, \"from_y\": 2}", NULL);
    assert_int_equal(r.code, 200);
    cJSON *pj = cJSON_Parse(r.body);
    char new_hash[32];
    snprintf(new_hash, sizeof new_hash, "%s", jstr(pj, "params_hash"));
    cJSON_Delete(pj);
    resp_free(&r);
    assert_string_not_equal(old_hash, new_hash);
    wait_state(port, "finished", 60);
    assert_int_equal(roi_count(port, &rm), 9);
    /* every value is the old or the new parameters' mean, old ones first;
     * the last events were computed on the worker ranks with the new set */
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    int olds = 0, news = 0, switched = 0;
    for (int n = 1; n <= 9; n++) {
        double v = cJSON_GetArrayItem(data, n)->valuedouble;
        int is_old = fabs(v - m1[n]) < 1e-9, is_new = fabs(v - m2[n]) < 1e-9;
        if (!is_old && !is_new) fail_msg("event %d: %g is neither %g nor %g", n, v, m1[n], m2[n]);
        if (is_new && !is_old) switched = 1;
        if (is_old && !is_new && switched) fail_msg("event %d: old parameters after new", n);
        olds += is_old && !is_new;
        news += is_new && !is_old;
    }
    assert_true(olds >= 2);
    assert_true(news >= 1);
    assert_string_equal(jstr(rm, "params_hash"), new_hash);
    assert_true(fabs(cJSON_GetArrayItem(data, 9)->valuedouble - m2[9]) < 1e-9);
    cJSON_Delete(rm);
    cJSON *last = get_json(port, "/api/v1/results/last_roi_mean");
    assert_string_equal(jstr(last, "params_hash"), new_hash);
    cJSON_Delete(last);
    cJSON *st = get_json(port, "/api/v1/status");
    assert_string_equal(jstr(st, "params_hash"), new_hash);
    assert_int_equal((int)jnum(st, "workers_alive"), 0); /* all ended */
    cJSON_Delete(st);
    check_worker_counters(port, 0);
    /* under mpirun a replay runs once */
    r = post_json(port, "/api/v1/control/start", "{}", NULL);
    assert_int_equal(r.code, 409);
    resp_free(&r);
    kill(pid, SIGTERM); /* keep-alive ends with a signal */
    wait_exit(dir, pid, 60);
}

/* Served from a worker rank (--http-rank 1): the same results, with a
 * parameter change forwarded through rank 0; stop ends the replay early
 * with the queued events processed. */
static void test_http_on_worker_rank_stop(void **state)
{
    const char *dir = tu_tmpdir("mpi-http-stop");
    double m1[16];
    tu_xrd_roi_means(m1, 3, 7);
    int port = tu_free_port();
    pid_t pid = spawn_mpi_replay(dir, port, "--http-rank 1 --rate 2");
    wait_up(port, 60);
    wait_roi(port, 3, 60);
    cJSON *rm;
    int n = roi_count(port, &rm);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    for (int i = 1; i <= n; i++)
        assert_true(fabs(cJSON_GetArrayItem(data, i)->valuedouble - m1[i]) < 1e-9);
    cJSON_Delete(rm);
    check_worker_counters(port, 2);
    resp r = post_json(port, "/api/v1/control/stop", "{}", NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    int rc = wait_exit(dir, pid, 60);
    char p[4200];
    snprintf(p, sizeof p, "%s/weir.log", dir);
    size_t len;
    char *log = (char *)tu_read_file(p, &len);
    unsigned long events = 99;
    int found = 0;
    for (const char *at = log; !found && (at = strstr(at, "weir replay: ")); at++)
        found = sscanf(at, "weir replay: %lu events", &events) == 1;
    if (!found) fail_msg("no event count in the log:\n%s", log);
    if (events >= 11 || (rc != 0 && rc != 3)) fail_msg("exit %d, %lu events:\n%s", rc, events, log);
    free(log);
}

/* Abort from the serving rank (rank 0) ends every rank at once: state
 * error "aborted", exit code 1. */
static void test_http_abort(void **state)
{
    const char *dir = tu_tmpdir("mpi-http-abort");
    int port = tu_free_port();
    pid_t pid = spawn_mpi_replay(dir, port, "--rate 2 --keep-alive");
    wait_up(port, 60);
    wait_roi(port, 2, 60);
    resp r = post_json(port, "/api/v1/control/abort", "{}", NULL);
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.body, "error"));
    resp_free(&r);
    double end = now_s() + 30;
    for (;;) {
        cJSON *st = get_json(port, "/api/v1/status");
        int done = !strcmp(jstr(st, "state"), "error") && !strcmp(jstr(st, "error"), "aborted") &&
                   jnum(st, "workers_alive") == 0;
        cJSON_Delete(st);
        if (done) break;
        if (now_s() > end) fail_msg("the abort did not end the worker ranks");
        nap_ms(50);
    }
    cJSON *rm;
    assert_true(roi_count(port, &rm) < 9);
    cJSON_Delete(rm);
    kill(pid, SIGTERM);
    wait_exit(dir, pid, 60);
}

/* ---- weir run under mpirun with the control plane, fed by weir sim ---- */

/* ROI mean data[:till_x, from_y:] of synthetic uint16 frame i (h x w). */
static double synth_roi_mean(size_t h, size_t w, uint64_t seed, uint64_t i, int till_x, int from_y)
{
    weir_synth_config c = {
        .frames = i + 1, .height = h, .width = w, .dtype = WEIR_DT_U16, .seed = seed};
    uint16_t *px = malloc(h * w * 2);
    assert_non_null(px);
    weir_synth_frame(&c, i, px);
    double s = 0;
    int n = 0;
    for (size_t row = 0; row < (size_t)till_x && row < h; row++)
        for (size_t col = (size_t)from_y; col < w; col++) {
            s += px[row * w + col];
            n++;
        }
    free(px);
    return n ? s / n : NAN;
}

/* Runs `cmd` with sh in dir (output appended to dir/weir.log); its pid. */
static pid_t spawn_sh(const char *dir, const char *cmd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir)) _exit(126);
        setenv("LOG_LEVEL", "WARNING", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* cfg.json: one STINS stream bound on sport into the tutorial plug-ins
 * (till_x 4, from_y 2), served on hport; extra: more members. Then
 * mpirun ... weir run cfg.json args; returns mpirun's pid. */
static pid_t spawn_mpi_run(const char *dir, int sport, int hport, const char *extra,
                           const char *args)
{
    char cfg[8192], cmd[16384];
    snprintf(cfg, sizeof cfg,
             "{\"streams\": [{\"name\": \"det\", \"protocol\": \"stins\", \"endpoint\": "
             "\"tcp://127.0.0.1:%d\", \"socket\": \"pull\", \"bind\": true}],\n"
             " \"worker\": \"%s\", \"reducer\": \"%s\", \"output_dir\": \"out\",\n"
             " \"parameters\": {\"till_x\": \"4\", \"from_y\": \"2\"},\n"
             " \"http\": \"127.0.0.1:%d\"%s}\n",
             sport, tu_build("examples/roi_mean_worker.so"),
             tu_build("examples/tutorial_reducer.so"), hport, extra);
    tu_write(dir, "cfg.json", cfg);
    snprintf(cmd, sizeof cmd, "exec %s %s run cfg.json %s > weir.log 2>&1", mpirun(),
             tu_build("weir"), args);
    return spawn_sh(dir, cmd);
}

/* weir sim stins: n synthetic 16x12 frames (seed 5) at rate Hz into sport. */
static pid_t spawn_sim(const char *dir, int sport, int n, int rate)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "exec %s sim stins --endpoint tcp://127.0.0.1:%d --synthetic %d --shape 16x12 "
             "--seed 5 --rate %d >> sim.log 2>&1",
             tu_build("weir"), sport, n, rate);
    return spawn_sh(dir, cmd);
}

/* /status's stream "det" has received at least n messages (deadline s). */
static void wait_stream(int port, int n, double s)
{
    double end = now_s() + s;
    for (;;) {
        cJSON *st = get_json(port, "/api/v1/status");
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(st, "streams");
        const cJSON *det = cJSON_GetArrayItem(ss, 0);
        int ok = cJSON_GetArraySize(ss) == 1 && !strcmp(jstr(det, "name"), "det") &&
                 !strcmp(jstr(det, "protocol"), "STINS") && jnum(det, "received") >= n &&
                 jnum(det, "bytes") > 0 && jnum(det, "malformed") == 0;
        cJSON_Delete(st);
        if (ok) return;
        if (now_s() > end) fail_msg("stream counters never showed %d messages", n);
        nap_ms(50);
    }
}

/* Every roi_mean value (events 1..n) is the old or the new parameters'
 * mean of its frame, old ones first; returns how many are new. */
static int check_run_means(const cJSON *rm, int n, int old_x, int old_y, int new_x, int new_y)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(rm, "data");
    int switched = 0, news = 0;
    for (int ev = 1; ev <= n; ev++) {
        const cJSON *v = cJSON_GetArrayItem(data, ev);
        if (!cJSON_IsNumber(v)) fail_msg("event %d has no value", ev);
        double mo = synth_roi_mean(16, 12, 5, (uint64_t)ev - 1, old_x, old_y);
        double mn = synth_roi_mean(16, 12, 5, (uint64_t)ev - 1, new_x, new_y);
        int is_old = fabs(v->valuedouble - mo) < 1e-9, is_new = fabs(v->valuedouble - mn) < 1e-9;
        if (!is_old && !is_new)
            fail_msg("event %d: %g is neither %g nor %g", ev, v->valuedouble, mo, mn);
        if (is_new && !is_old) switched = 1;
        if (is_old && !is_new && switched) fail_msg("event %d: old parameters after new", ev);
        news += is_new && !is_old;
    }
    return news;
}

/* weir run --continuous on 4 ranks served from rank 0: results as computed
 * here, worker-rank and stream counters in /status, a parameter POSTed mid
 * acquisition reaches the worker ranks from a later event on and carries
 * over to the next acquisition, state armed between acquisitions; stop
 * while armed ends the run. */
static void test_run_http_continuous(void **state)
{
    const char *dir = tu_tmpdir("mpi-run-http");
    int sport = tu_free_port(), port = tu_free_port();
    pid_t pid = spawn_mpi_run(dir, sport, port, "", "--continuous");
    wait_up(port, 60);
    wait_state(port, "armed", 60);
    pid_t sim = spawn_sim(dir, sport, 12, 3);
    wait_roi(port, 4, 60);
    wait_stream(port, 4, 30);
    check_worker_counters(port, 2);
    cJSON *rm;
    int n = roi_count(port, &rm);
    check_run_means(rm, n, 4, 2, 4, 2);
    char old_hash[32], new_hash[32];
    snprintf(old_hash, sizeof old_hash, "%s", jstr(rm, "params_hash"));
    cJSON_Delete(rm);
    resp r = post_json(port, "/api/v1/parameters", "{\"till_x\": 8, \"from_y\": 0}", NULL);
    assert_int_equal(r.code, 200);
    cJSON *pj = cJSON_Parse(r.body);
    snprintf(new_hash, sizeof new_hash, "%s", jstr(pj, "params_hash"));
    cJSON_Delete(pj);
    resp_free(&r);
    assert_string_not_equal(old_hash, new_hash);
    r = post_json(port, "/api/v1/control/start", "{}", NULL);
    assert_int_equal(r.code, 409);
    assert_non_null(strstr(r.body, "detector's series"));
    resp_free(&r);
    assert_int_equal(wait_exit(dir, sim, 60), 0);
    wait_roi(port, 12, 60);
    wait_state(port, "armed", 60); /* waiting for acquisition 2 */
    assert_int_equal(roi_count(port, &rm), 12);
    int news = check_run_means(rm, 12, 4, 2, 8, 0);
    assert_true(news >= 1 && news <= 12 - n);
    assert_string_equal(jstr(rm, "params_hash"), new_hash);
    cJSON_Delete(rm);
    /* acquisition 2: the new parameters from its first event on */
    sim = spawn_sim(dir, sport, 12, 20);
    assert_int_equal(wait_exit(dir, sim, 60), 0);
    double end = now_s() + 60;
    for (;;) {
        n = roi_count(port, &rm);
        int v = n ? (int)jnum(rm, "version") : 0;
        cJSON_Delete(rm);
        cJSON *ev = get_json(port, "/api/v1/results/events");
        int events = (int)jnum(ev, "value");
        cJSON_Delete(ev);
        /* the store was cleared: 12 values counted from this acquisition */
        if (n == 12 && events == 12 && v > 0) break;
        if (now_s() > end) fail_msg("acquisition 2 never had 12 values (%d)", n);
        nap_ms(50);
    }
    wait_state(port, "armed", 60);
    roi_count(port, &rm);
    check_run_means(rm, 12, 8, 0, 8, 0);
    for (int ev = 1; ev <= 12; ev++) /* every value with the new parameters */
        assert_true(
            fabs(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rm, "data"), ev)->valuedouble -
                 synth_roi_mean(16, 12, 5, (uint64_t)ev - 1, 8, 0)) < 1e-9);
    assert_string_equal(jstr(rm, "params_hash"), new_hash);
    cJSON_Delete(rm);
    cJSON *st = get_json(port, "/api/v1/status");
    assert_string_equal(jstr(st, "params_hash"), new_hash);
    cJSON_Delete(st);
    wait_stream(port, 28, 10); /* both acquisitions' messages */
    r = post_json(port, "/api/v1/control/stop", "{}", NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    int rc = wait_exit(dir, pid, 60);
    char p[4200];
    snprintf(p, sizeof p, "%s/weir.log", dir);
    size_t len;
    char *log = (char *)tu_read_file(p, &len);
    if (rc != 0 || !strstr(log, "acquisition 2: 14 events") || strstr(log, "acquisition 3:"))
        fail_msg("exit %d:\n%s", rc, log);
    free(log);
}

/* Served from a worker rank ("http_rank": 1 in the config): results and
 * the stream counters forwarded from rank 0; stop mid-acquisition ends the
 * run with the events so far processed. */
static void test_run_http_worker_rank_stop(void **state)
{
    const char *dir = tu_tmpdir("mpi-run-http-stop");
    int sport = tu_free_port(), port = tu_free_port();
    pid_t pid = spawn_mpi_run(dir, sport, port, ", \"http_rank\": 1", "");
    wait_up(port, 60);
    pid_t sim = spawn_sim(dir, sport, 60, 4);
    wait_roi(port, 3, 60);
    wait_stream(port, 4, 30);
    check_worker_counters(port, 2);
    cJSON *rm;
    int n = roi_count(port, &rm);
    check_run_means(rm, n, 4, 2, 4, 2);
    cJSON_Delete(rm);
    resp r = post_json(port, "/api/v1/control/stop", "{}", NULL);
    assert_int_equal(r.code, 200);
    resp_free(&r);
    int rc = wait_exit(dir, pid, 60);
    kill(sim, SIGKILL);
    waitpid(sim, NULL, 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/weir.log", dir);
    size_t len;
    char *log = (char *)tu_read_file(p, &len);
    if ((rc != 0 && rc != 3) || !strstr(log, "rank 1 serves the control plane"))
        fail_msg("exit %d:\n%s", rc, log);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_built_with_mpi),
        cmocka_unit_test(test_dump_xrd_identical),
        cmocka_unit_test(test_synthetic_sums_and_split),
        cmocka_unit_test(test_killed_worker_rank),
        cmocka_unit_test(test_hung_worker_rank),
        cmocka_unit_test(test_http_on_rank0),
        cmocka_unit_test(test_http_on_worker_rank_stop),
        cmocka_unit_test(test_http_abort),
        cmocka_unit_test(test_run_http_continuous),
        cmocka_unit_test(test_run_http_worker_rank_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
