/* bench_tags.c — time-tag decoding and exact correlation against a plain C
 * loop, same run.
 *
 * Generates (once, fixed seed 42) a HydraHarp V2 T2 PTU through
 * weir_tag_encode: two 5 MHz Poisson channels (inputs 1 and 2) plus a weak
 * correlated component (1 % of channel-1 photons get a channel-2 partner
 * 20 ns later, ±32 ps), N tags in all. Then measures:
 *   reference: a plain C loop over the mapped file decoding the HydraHarp
 *              T2 records (overflow, channel, time) and summing the times;
 *   decode:    weir_tag_read over the whole file (Mrecords/s);
 *   corr:      the exact correlation, 10 000 × 16 ps bins in each direction
 *              (20 000 bins from -160 ns), over the file with 1 and 2
 *              threads (decode included), and on decoded events in memory
 *              (instrument alone), in Mtags/s.
 * Checks before timing: decode sum == reference sum; the -j 2 histogram
 * equals the serial one bin for bit; the correlated peak is where it was
 * put. usage: bench_tags [tags=50000000] [dir=/tmp] */
#include "weir/error.h"
#include "weir/tag_instr.h"
#include "weir/tags.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rs = 42;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}

static int generate(const char *path, uint64_t n)
{
    weir_tag *ev = malloc(n * sizeof *ev);
    if (!ev) return WEIR_ENOMEM;
    double t1 = 0, t2 = 0; /* next times, ps */
    uint64_t m = 0;
    const double mean = 200000.0; /* 5 MHz */
    t1 = -log(urand()) * mean;
    t2 = -log(urand()) * mean;
    int64_t pend = -1; /* pending correlated partner time */
    while (m < n) {
        double t = t1 < t2 ? t1 : t2;
        if (pend >= 0 && (double)pend <= t) {
            ev[m++] = (weir_tag){pend, -1, 2, WEIR_TAG_PHOTON, 0};
            pend = -1;
            continue;
        }
        int ch = t1 < t2 ? 1 : 2;
        ev[m++] = (weir_tag){(int64_t)t, -1, (int16_t)ch, WEIR_TAG_PHOTON, 0};
        if (ch == 1) {
            t1 += -log(urand()) * mean;
            if (pend < 0 && urand() < 0.01)
                pend = (int64_t)t + 20000 + (int64_t)(urand() * 64) - 32;
        } else {
            t2 += -log(urand()) * mean;
        }
    }
    /* partners may land out of order by a few ps against the Poisson
     * stream: a short insertion pass keeps the array sorted */
    for (uint64_t i = 1; i < m; i++)
        for (uint64_t j = i; j > 0 && ev[j - 1].time > ev[j].time; j--) {
            weir_tag x = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = x;
        }
    char err[256];
    weir_tag_encode_opts o = {0x01010204, 1e-12, 0};
    int rc = weir_tag_encode(WEIR_TAGFMT_PTU, &o, ev, m, path, err, sizeof err);
    if (rc) fprintf(stderr, "encode: %s\n", err);
    free(ev);
    return rc;
}

/* The plain loop: HydraHarp V2 T2 records, overflow-corrected times summed. */
static uint64_t reference(const uint8_t *p, size_t len, uint64_t hdr, uint64_t *nrec)
{
    uint64_t sum = 0, ofl = 0, n = 0;
    for (size_t off = hdr; off + 4 <= len; off += 4) {
        uint32_t r;
        memcpy(&r, p + off, 4);
        uint32_t special = r >> 31, ch = (r >> 25) & 63, tt = r & 0x1ffffff;
        if (special && ch == 63) {
            ofl += 33554432ull * (tt ? tt : 1);
            continue;
        }
        if (special && ch >= 1 && ch <= 15) continue; /* markers */
        sum += ofl + tt;
        n++;
    }
    *nrec = n;
    return sum;
}

static weir_tinstr *corr_new(void)
{
    weir_tinstr_config c;
    weir_tinstr_config_init(&c, WEIR_TI_CORR);
    c.start = 1;
    c.stop = 2;
    c.bin_ps = 16;
    c.nbins = 20000;
    c.lo_ps = -160000;
    weir_tinstr *t = NULL;
    char err[256];
    if (weir_tinstr_create(&c, &t, err, sizeof err)) fprintf(stderr, "%s\n", err);
    return t;
}

static double run_corr(const char *path, unsigned threads, weir_tinstr **out)
{
    char err[512];
    weir_tag_reader *r = NULL;
    if (weir_tag_open(path, WEIR_TAGFMT_PTU, &r, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    weir_tinstr *t = corr_new();
    weir_tinstr_run_opts o = {threads, 1 << 16, NULL, NULL};
    double t0 = now();
    if (weir_tinstr_run_file(r, &t, 1, &o, err, sizeof err) || weir_tinstr_finish(t)) {
        fprintf(stderr, "corr: %s\n", err);
        exit(1);
    }
    double dt = now() - t0;
    weir_tag_close(r);
    *out = t;
    return dt;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/weir-bench-tags-%llu-s42.ptu", dir, (unsigned long long)n);
    if (access(path, R_OK)) {
        fprintf(stderr, "generating %s ...\n", path);
        if (generate(path, n)) return 1;
    }
    /* reference */
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) return 1;
    const uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return 1;
    weir_tag_reader *r = NULL;
    if (weir_tag_open(path, WEIR_TAGFMT_PTU, &r, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const weir_tag_info *info = weir_tag_reader_info(r);
    uint64_t hdr = info->header_bytes, nrec_file = info->nrecords, nref = 0;
    double best_ref = 1e9, best_dec = 1e9;
    uint64_t ref_sum = 0, dec_sum = 0, ndec = 0;
    weir_tag *buf = malloc((1 << 16) * sizeof *buf);
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        ref_sum = reference(map, (size_t)st.st_size, hdr, &nref);
        double t1 = now();
        if (t1 - t0 < best_ref) best_ref = t1 - t0;
        weir_tag_pos p0 = {0, 0, {0, 0}};
        weir_tag_seek_record(r, 0, err, sizeof err);
        (void)p0;
        dec_sum = ndec = 0;
        t0 = now();
        long got;
        while ((got = weir_tag_read(r, buf, 1 << 16, err, sizeof err)) > 0) {
            for (long i = 0; i < got; i++)
                dec_sum += (uint64_t)buf[i].time;
            ndec += (uint64_t)got;
        }
        t1 = now();
        if (t1 - t0 < best_dec) best_dec = t1 - t0;
    }
    if (dec_sum != ref_sum || ndec != nref) {
        fprintf(stderr, "CHECK FAILED: decode sum %llu (%llu events) != reference %llu (%llu)\n",
                (unsigned long long)dec_sum, (unsigned long long)ndec, (unsigned long long)ref_sum,
                (unsigned long long)nref);
        return 1;
    }
    printf("machine: %ld cores; file %s: %llu records, %llu tags, %.0f MB\n",
           sysconf(_SC_NPROCESSORS_ONLN), path, (unsigned long long)nrec_file,
           (unsigned long long)nref, (double)st.st_size / 1e6);
    printf("check: decoded time sum == plain-loop sum over %llu tags\n", (unsigned long long)nref);
    double ref_rate = (double)nrec_file / best_ref / 1e6;
    printf("%-44s %8.1f Mrecords/s  (1.00)\n", "reference: plain C decode loop, 1 core", ref_rate);
    printf("%-44s %8.1f Mrecords/s  (%.2f of reference)\n", "decode: weir_tag_read, 1 core",
           (double)nrec_file / best_dec / 1e6, best_ref / best_dec);

    /* correlation: check -j 2 == serial and the peak, then time */
    weir_tinstr *s1 = NULL, *s2 = NULL;
    double d1 = run_corr(path, 1, &s1), d2 = run_corr(path, 2, &s2);
    weir_tinstr_result a, b;
    weir_tinstr_get_result(s1, &a);
    weir_tinstr_get_result(s2, &b);
    if (memcmp(a.counts, b.counts, a.nbins * sizeof *a.counts)) {
        fprintf(stderr, "CHECK FAILED: -j 2 histogram differs from the serial one\n");
        return 1;
    }
    uint64_t peak = 0, side = 0;
    for (size_t k = (160000 + 19968) / 16; k < (160000 + 20032) / 16; k++)
        peak += a.counts[k];
    for (size_t k = (160000 - 20032) / 16; k < (160000 - 19968) / 16; k++)
        side += a.counts[k];
    if (peak < 2 * side + 10) {
        fprintf(stderr, "CHECK FAILED: no correlated peak at +20 ns (%llu vs %llu)\n",
                (unsigned long long)peak, (unsigned long long)side);
        return 1;
    }
    uint64_t pairs = 0;
    for (size_t k = 0; k < a.nbins; k++)
        pairs += a.counts[k];
    printf("check: -j 2 == serial bin for bin; peak at +20 ns %llu vs %llu at -20 ns; %llu pairs\n",
           (unsigned long long)peak, (unsigned long long)side, (unsigned long long)pairs);
    for (int rep = 0; rep < 2; rep++) {
        weir_tinstr *x;
        double d = run_corr(path, 1, &x);
        weir_tinstr_free(x);
        if (d < d1) d1 = d;
        d = run_corr(path, 2, &x);
        weir_tinstr_free(x);
        if (d < d2) d2 = d;
    }
    printf("%-44s %8.1f Mtags/s     (%.2f of reference)\n", "corr 20000x16ps, file, 1 thread",
           (double)nref / d1 / 1e6, best_ref / d1);
    printf("%-44s %8.1f Mtags/s     (%.2f of reference)\n", "corr 20000x16ps, file, -j 2",
           (double)nref / d2 / 1e6, best_ref / d2);

    /* the instrument alone on decoded events in memory (up to 10 M) */
    size_t m = nref < 10000000 ? (size_t)nref : 10000000;
    weir_tag *ev = malloc(m * sizeof *ev);
    weir_tag_seek_record(r, 0, err, sizeof err);
    size_t have = 0;
    long got;
    while (have < m && (got = weir_tag_read(r, ev + have, m - have, err, sizeof err)) > 0)
        have += (size_t)got;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        weir_tinstr *t = corr_new();
        double t0 = now();
        for (size_t i = 0; i < have; i += 1 << 16)
            weir_tinstr_feed(t, ev + i, have - i < (1 << 16) ? have - i : (1 << 16));
        weir_tinstr_finish(t);
        double dt = now() - t0;
        if (dt < best) best = dt;
        weir_tinstr_free(t);
    }
    printf("%-44s %8.1f Mtags/s     (%zu tags in memory)\n", "corr 20000x16ps, instrument alone",
           (double)have / best / 1e6, have);
    free(ev);
    free(buf);
    weir_tinstr_free(s1);
    weir_tinstr_free(s2);
    weir_tag_close(r);
    munmap((void *)map, (size_t)st.st_size);
    return 0;
}
