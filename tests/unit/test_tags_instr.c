/* test_tags_instr.c — time-tag instruments (src/timetag/instr_*.c).
 *
 * Every expected histogram is computed here by brute force, independently
 * of the code under test: the correlation by an O(n^2) loop over all
 * start/stop pairs, start-stop and lifetimes by a plain simulation over the
 * merged sorted events, coincidences and count traces by direct scans.
 * The synthetic streams (fixed seeds) carry a correlated pair component
 * (a peak at a known delay), equal-time bursts, huge gaps, markers and
 * other channels. Parallel runs over 1..7 sections and resumed runs
 * (state saved to bytes at many split points) must equal one serial pass
 * bit for bit. On ETA's own test files the ETA emulation must equal
 * ETA's shipped histograms exactly, and the exact result must exceed it
 * by precisely the pairs of ETA's skipped start slot and final event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/array.h"
#include "weir/error.h"
#include "weir/npy.h"
#include "weir/tag_instr.h"
#include "weir/tags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- synthetic streams ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_time(const void *a, const void *b)
{
    const weir_tag *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    /* stable enough: order ties by channel then micro for determinism */
    if (x->channel != y->channel) return x->channel - y->channel;
    return x->micro - y->micro;
}

static weir_tag mk(int64_t t, int ch, int kind, int micro)
{
    weir_tag e = {t, micro, (int16_t)ch, (uint8_t)kind, 0};
    return e;
}

/* n events on channels 1 and 2 (random gaps up to `gap` ps), a correlated
 * ch1->ch2 pair component at +peak ps, ch0 syncs every 12500 ps, bursts of
 * equal times, a few huge gaps, and markers on channel 1 (which must never
 * be taken for photons). */
static weir_tag *synth(uint64_t seed, size_t n, int64_t gap, int64_t peak, size_t *out_n)
{
    rng_state = seed;
    weir_tag *ev = calloc(n * 3 + 16, sizeof *ev);
    size_t m = 0;
    int64_t t = 1000;
    while (m < n) {
        uint64_t r = rnd();
        t += (int64_t)(r % (uint64_t)gap);
        if (r % 997 == 0) t += 1000000000000ll; /* huge gap: 1 s */
        int ch = 1 + (int)((r >> 20) & 1);
        ev[m++] = mk(t, ch, WEIR_TAG_PHOTON, (int)((r >> 24) % 4096));
        if ((r >> 32) % 5 == 0) /* correlated partner */
            ev[m++] = mk(t + peak + (int64_t)((r >> 40) % 64), 2, WEIR_TAG_PHOTON, 7);
        if ((r >> 36) % 50 == 0) { /* burst at one time on both channels */
            for (int k = 0; k < 3; k++)
                ev[m++] = mk(t, 1 + (k & 1), WEIR_TAG_PHOTON, 9);
        }
        if ((r >> 44) % 40 == 0) ev[m++] = mk(t, 1, WEIR_TAG_MARKER, -1);
        if ((r >> 48) % 3 == 0) ev[m++] = mk(t - (t % 12500), 0, WEIR_TAG_SYNC, -1);
    }
    qsort(ev, m, sizeof *ev, cmp_time);
    *out_n = m;
    return ev;
}

static int64_t fdiv(int64_t x, int64_t w)
{
    int64_t q = x / w;
    if ((x % w) && ((x < 0) != (w < 0))) q--;
    return q;
}

static int is_ch(const weir_tag *e, int ch)
{
    return e->kind != WEIR_TAG_MARKER && e->channel == ch;
}

/* O(n^2) correlation: every start with every (distinct) stop. */
static uint64_t *brute_corr(const weir_tag *ev, size_t n, const weir_tinstr_config *c)
{
    uint64_t *h = calloc(c->nbins, sizeof *h);
    int64_t dA = 0, dB = 0;
    for (unsigned i = 0; i < c->ndelays; i++) {
        if (c->delays[i].channel == c->start) dA = c->delays[i].ps;
        if (c->delays[i].channel == c->stop) dB = c->delays[i].ps;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_ch(&ev[i], c->start)) continue;
        for (size_t j = 0; j < n; j++) {
            if (i == j || !is_ch(&ev[j], c->stop)) continue;
            int64_t tau = (ev[j].time + dB) - (ev[i].time + dA);
            int64_t k = fdiv(tau - c->lo_ps, c->bin_ps);
            if (k >= 0 && k < (int64_t)c->nbins) h[k]++;
        }
    }
    return h;
}

/* Feeds ev in pseudo-random chunk sizes (1 .. 200) and finishes. */
static weir_tinstr *run_chunked(const weir_tinstr_config *c, const weir_tag *ev, size_t n,
                                uint64_t seed)
{
    char err[256];
    weir_tinstr *t = NULL;
    int rc = weir_tinstr_create(c, &t, err, sizeof err);
    if (rc) fail_msg("create: %s", err);
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n;) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t k = 1 + (size_t)(s % 200);
        if (k > n - i) k = n - i;
        assert_int_equal(weir_tinstr_feed(t, ev + i, k), 0);
        i += k;
    }
    assert_int_equal(weir_tinstr_finish(t), 0);
    return t;
}

static void assert_hist_eq(const weir_tinstr *t, const uint64_t *want, size_t nbins)
{
    weir_tinstr_result r;
    weir_tinstr_get_result(t, &r);
    assert_int_equal(r.nbins, nbins);
    for (size_t i = 0; i < nbins; i++)
        if (r.counts[i] != want[i])
            fail_msg("bin %zu: got %llu, want %llu", i, (unsigned long long)r.counts[i],
                     (unsigned long long)want[i]);
}

static uint64_t hist_sum(const uint64_t *h, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += h[i];
    return s;
}

static weir_tinstr_config corr_cfg(int start, int stop, int64_t w, uint32_t nb, int64_t lo)
{
    weir_tinstr_config c;
    weir_tinstr_config_init(&c, WEIR_TI_CORR);
    c.start = (int16_t)start;
    c.stop = (int16_t)stop;
    c.bin_ps = w;
    c.nbins = nb;
    c.lo_ps = lo;
    return c;
}

static void add_delay(weir_tinstr_config *c, int ch, int64_t ps)
{
    c->delays[c->ndelays].channel = (int16_t)ch;
    c->delays[c->ndelays].ps = ps;
    c->ndelays++;
}

/* A set of correlation configurations covering both directions, odd and
 * power-of-two widths, delays both ways, autocorrelation and windows that
 * lie entirely on one side. */
static size_t corr_cases(weir_tinstr_config *out)
{
    size_t n = 0;
    out[n++] = corr_cfg(1, 2, 16, 1000, -8000);
    out[n++] = corr_cfg(1, 2, 16, 1000, 0);
    out[n++] = corr_cfg(2, 1, 16, 1000, 1);
    out[n++] = corr_cfg(1, 2, 7, 2001, -7000);
    out[n++] = corr_cfg(1, 2, 1000, 37, -18500);
    out[n++] = corr_cfg(1, 1, 10, 1000, -5000); /* autocorrelation */
    out[n++] = corr_cfg(1, 2, 5, 300, -9000);   /* window entirely negative */
    out[n] = corr_cfg(1, 2, 16, 800, -6400);
    add_delay(&out[n], 2, -4321);
    add_delay(&out[n++], 1, 777);
    out[n] = corr_cfg(2, 1, 3, 4000, -6000);
    add_delay(&out[n++], 2, 25000); /* delay beyond the window */
    out[n] = corr_cfg(1, 0, 100, 125, 0);
    add_delay(&out[n++], 0, -30000); /* sync channel, large negative delay */
    return n;
}

static void test_corr_brute(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(12345, 3000, 4000, 5000, &n);
    weir_tinstr_config cases[16];
    size_t nc = corr_cases(cases);
    for (size_t i = 0; i < nc; i++) {
        uint64_t *want = brute_corr(ev, n, &cases[i]);
        assert_true(hist_sum(want, cases[i].nbins) > 0);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            weir_tinstr *t = run_chunked(&cases[i], ev, n, seed * 7919 + i);
            assert_hist_eq(t, want, cases[i].nbins);
            weir_tinstr_free(t);
        }
        free(want);
    }
    /* The known peak: correlated partners at +5000..5063 ps land in the
     * bins of case 0 (lo -8000, 16 ps) from (13000/16) on. */
    weir_tinstr *t = run_chunked(&cases[0], ev, n, 5);
    weir_tinstr_result r;
    weir_tinstr_get_result(t, &r);
    uint64_t peak = 0, side = 0;
    for (size_t k = 13000 / 16; k < 13064 / 16 + 1; k++)
        peak += r.counts[k];
    for (size_t k = 3000 / 16; k < 3064 / 16 + 1; k++)
        side += r.counts[k];
    assert_true(peak > 5 * side + 20);
    assert_string_equal(r.unit, "ps");
    assert_int_equal(r.lo, -8000);
    assert_int_equal(r.bin, 16);
    weir_tinstr_free(t);
    free(ev);
}

/* Dense bursts: many events at the same time and heavy overlap. */
static void test_corr_bursts(void **state)
{
    (void)state;
    rng_state = 99;
    size_t n = 0;
    weir_tag *ev = calloc(4000, sizeof *ev);
    int64_t t = 0;
    while (n < 3900) {
        uint64_t r = rnd();
        t += (r % 10 == 0) ? 50000000 : (int64_t)(r % 3);
        int k = 1 + (int)(r >> 40) % 12;
        for (int i = 0; i < k && n < 3900; i++)
            ev[n++] = mk(t, 1 + (int)((r >> i) & 1), WEIR_TAG_PHOTON, -1);
    }
    weir_tinstr_config c = corr_cfg(1, 2, 2, 50, -50);
    uint64_t *want = brute_corr(ev, n, &c);
    weir_tinstr *ti = run_chunked(&c, ev, n, 3);
    assert_hist_eq(ti, want, c.nbins);
    weir_tinstr_free(ti);
    free(want);
    c = corr_cfg(2, 2, 1, 9, -4);
    want = brute_corr(ev, n, &c);
    ti = run_chunked(&c, ev, n, 4);
    assert_hist_eq(ti, want, c.nbins);
    weir_tinstr_free(ti);
    free(want);
    free(ev);
}

static void test_unsorted_refused(void **state)
{
    (void)state;
    weir_tinstr_config c = corr_cfg(1, 2, 16, 10, 0);
    weir_tinstr *t = NULL;
    char err[128];
    assert_int_equal(weir_tinstr_create(&c, &t, err, sizeof err), 0);
    weir_tag ev[3] = {mk(10, 1, 0, -1), mk(5, 2, 0, -1), mk(20, 2, 0, -1)};
    assert_int_equal(weir_tinstr_feed(t, ev, 3), WEIR_ERANGE);
    weir_tinstr_free(t);
    c.bin_ps = 0;
    assert_int_equal(weir_tinstr_create(&c, &t, err, sizeof err), WEIR_EPARAM);
    assert_non_null(strstr(err, "bin width"));
}

/* ---- start-stop, lifetime, coincidences, count traces ---- */

typedef struct {
    int64_t x;
    int is_start;
} sev;

static int cmp_sev(const void *a, const void *b)
{
    const sev *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return q->is_start - p->is_start; /* start first */
}

static uint64_t *brute_ss(const weir_tag *ev, size_t n, const weir_tinstr_config *c, int multi)
{
    sev *s = calloc(n, sizeof *s);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = 0;
        for (unsigned k = 0; k < c->ndelays; k++)
            if (c->delays[k].channel == ev[i].channel) d = c->delays[k].ps;
        if (is_ch(&ev[i], c->start))
            s[m++] = (sev){ev[i].time + d, 1};
        else if (is_ch(&ev[i], c->stop))
            s[m++] = (sev){ev[i].time + d, 0};
    }
    qsort(s, m, sizeof *s, cmp_sev);
    uint64_t *h = calloc(c->nbins, sizeof *h);
    int armed = 0;
    int64_t ts = 0;
    for (size_t i = 0; i < m; i++) {
        if (s[i].is_start) {
            armed = 1;
            ts = s[i].x;
        } else {
            if (armed) {
                int64_t k = fdiv(s[i].x - ts - c->lo_ps, c->bin_ps);
                if (k >= 0 && k < (int64_t)c->nbins) h[k]++;
            }
            if (!multi) armed = 0;
        }
    }
    free(s);
    return h;
}

static void test_startstop_lifetime(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(777, 4000, 3000, 2500, &n);
    weir_tinstr_config c;
    weir_tinstr_config_init(&c, WEIR_TI_STARTSTOP);
    c.start = 1;
    c.stop = 2;
    c.bin_ps = 8;
    c.nbins = 1500;
    uint64_t *want = brute_ss(ev, n, &c, 0);
    assert_true(hist_sum(want, c.nbins) > 100);
    weir_tinstr *t = run_chunked(&c, ev, n, 11);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    free(want);
    add_delay(&c, 1, 900);
    add_delay(&c, 2, -350);
    want = brute_ss(ev, n, &c, 0);
    t = run_chunked(&c, ev, n, 12);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    free(want);

    /* T2 lifetime: photons on ch2 after the most recent sync (ch0). */
    weir_tinstr_config_init(&c, WEIR_TI_LIFETIME);
    c.start = 0;
    c.stop = 2;
    c.bin_ps = 16;
    c.nbins = 800;
    want = brute_ss(ev, n, &c, 1);
    assert_true(hist_sum(want, c.nbins) > 100);
    t = run_chunked(&c, ev, n, 13);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    free(want);

    /* T3 lifetime from micro-times, channel 1, 64-bin groups, lo = 100. */
    weir_tinstr_config_init(&c, WEIR_TI_LIFETIME);
    c.lifetime_micro = 1;
    c.stop = 1;
    c.bin_ps = 64;
    c.lo_ps = 100;
    c.nbins = 60;
    c.micro_ps = 16;
    want = calloc(c.nbins, sizeof *want);
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == WEIR_TAG_PHOTON && ev[i].channel == 1 && ev[i].micro >= 0) {
            int64_t k = fdiv(ev[i].micro - 100, 64);
            if (k >= 0 && k < 60) want[k]++;
        }
    t = run_chunked(&c, ev, n, 14);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_result r;
    weir_tinstr_get_result(t, &r);
    assert_string_equal(r.unit, "micro bin");
    assert_true(r.unit_ps == 16.0);
    weir_tinstr_free(t);
    free(want);
    free(ev);
}

static void test_coinc_count(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(4242, 4000, 3000, 400, &n);
    weir_tinstr_config c;
    weir_tinstr_config_init(&c, WEIR_TI_COINC);
    c.channels[0] = 1;
    c.channels[1] = 2;
    c.channels[2] = 0;
    c.nchannels = 3;
    c.window_ps = 600;
    add_delay(&c, 0, 1500);
    uint64_t want = 0, refs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_ch(&ev[i], 1)) continue;
        refs++;
        int64_t r = ev[i].time;
        int ok2 = 0, ok0 = 0;
        for (size_t j = 0; j < n; j++) {
            if (is_ch(&ev[j], 2) && llabs(ev[j].time - r) <= 600) ok2 = 1;
            if (is_ch(&ev[j], 0) && llabs(ev[j].time + 1500 - r) <= 600) ok0 = 1;
        }
        want += ok2 && ok0;
    }
    assert_true(want > 10);
    weir_tinstr *t = run_chunked(&c, ev, n, 21);
    weir_tinstr_result r;
    weir_tinstr_get_result(t, &r);
    assert_int_equal(r.extra[0], want);
    assert_int_equal(r.extra[1], refs);
    weir_tinstr_free(t);

    weir_tinstr_config_init(&c, WEIR_TI_COUNT);
    c.channels[0] = 2;
    c.channels[1] = 1;
    c.nchannels = 2;
    c.bin_ps = 100000000; /* 100 us */
    add_delay(&c, 1, -5000);
    t = run_chunked(&c, ev, n, 22);
    weir_tinstr_get_result(t, &r);
    assert_int_equal(r.rows, 2);
    uint64_t *w = calloc(2 * r.nbins, sizeof *w), out_of_range = 0;
    for (size_t i = 0; i < n; i++)
        for (int row = 0; row < 2; row++) {
            int ch = row == 0 ? 2 : 1;
            if (!is_ch(&ev[i], ch)) continue;
            int64_t k = fdiv(ev[i].time + (ch == 1 ? -5000 : 0), c.bin_ps);
            assert_true(k < (int64_t)r.nbins);
            if (k < 0)
                out_of_range++;
            else
                w[row * r.nbins + (size_t)k]++;
        }
    assert_memory_equal(r.counts, w, 2 * r.nbins * sizeof *w);
    assert_int_equal(r.extra[0], out_of_range);
    free(w);
    weir_tinstr_free(t);
    free(ev);
}

/* ---- parallel sections, resume, aggregation ---- */

static void results_equal(const weir_tinstr *a, const weir_tinstr *b)
{
    weir_tinstr_result x, y;
    weir_tinstr_get_result(a, &x);
    weir_tinstr_get_result(b, &y);
    assert_int_equal(x.rows, y.rows);
    size_t nb = x.nbins < y.nbins ? x.nbins : y.nbins;
    for (size_t r = 0; r < x.rows; r++)
        for (size_t i = 0; i < (x.nbins > y.nbins ? x.nbins : y.nbins); i++) {
            uint64_t u = i < x.nbins ? x.counts[r * x.nbins + i] : 0;
            uint64_t v = i < y.nbins ? y.counts[r * y.nbins + i] : 0;
            if (u != v)
                fail_msg("%s row %zu bin %zu: %llu != %llu", x.name, r, i, (unsigned long long)u,
                         (unsigned long long)v);
        }
    (void)nb;
    assert_int_equal(x.extra[0], y.extra[0]);
    assert_int_equal(x.extra[1], y.extra[1]);
}

static size_t all_cases(weir_tinstr_config *out)
{
    size_t n = corr_cases(out);
    weir_tinstr_config_init(&out[n], WEIR_TI_STARTSTOP);
    out[n].start = 1, out[n].stop = 2, out[n].bin_ps = 8, out[n].nbins = 1500;
    add_delay(&out[n], 1, 300), add_delay(&out[n], 2, 300);
    n++;
    weir_tinstr_config_init(&out[n], WEIR_TI_LIFETIME);
    out[n].start = 0, out[n].stop = 1, out[n].bin_ps = 16, out[n].nbins = 800;
    n++;
    weir_tinstr_config_init(&out[n], WEIR_TI_LIFETIME);
    out[n].lifetime_micro = 1, out[n].bin_ps = 16, out[n].nbins = 256;
    n++;
    weir_tinstr_config_init(&out[n], WEIR_TI_COUNT);
    out[n].channels[0] = 1, out[n].channels[1] = 2, out[n].nchannels = 2;
    out[n].bin_ps = 50000000;
    n++;
    weir_tinstr_config_init(&out[n], WEIR_TI_COINC);
    out[n].channels[0] = 2, out[n].channels[1] = 1, out[n].nchannels = 2;
    out[n].window_ps = 700;
    n++;
    return n;
}

static void test_parallel_equals_serial(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(2024, 6000, 4000, 5000, &n);
    weir_tinstr_config cases[24];
    size_t nc = all_cases(cases);
    char err[256];
    for (size_t i = 0; i < nc; i++) {
        weir_tinstr *serial = run_chunked(&cases[i], ev, n, 31 + i);
        for (unsigned k = 1; k <= 7; k++) {
            weir_tinstr *par = NULL;
            assert_int_equal(weir_tinstr_create(&cases[i], &par, err, sizeof err), 0);
            assert_int_equal(weir_tinstr_run_sections(ev, n, k, &par, 1, err, sizeof err), 0);
            results_equal(serial, par);
            weir_tinstr_free(par);
        }
        /* Sections cut inside bursts of equal times and tiny sections. */
        weir_tinstr *par = NULL;
        assert_int_equal(weir_tinstr_create(&cases[i], &par, err, sizeof err), 0);
        assert_int_equal(weir_tinstr_run_sections(ev, n, 97, &par, 1, err, sizeof err), 0);
        results_equal(serial, par);
        weir_tinstr_free(par);
        weir_tinstr_free(serial);
    }
    free(ev);
}

static void test_resume_equals_one_pass(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(31337, 3000, 4000, 5000, &n);
    weir_tinstr_config cases[24];
    size_t nc = all_cases(cases);
    char err[256];
    for (size_t i = 0; i < nc; i++) {
        weir_tinstr *one = run_chunked(&cases[i], ev, n, 41 + i);
        for (size_t cut = 0; cut <= n; cut += 1 + n / 23) {
            weir_tinstr *a = NULL;
            assert_int_equal(weir_tinstr_create(&cases[i], &a, err, sizeof err), 0);
            if (cut) assert_int_equal(weir_tinstr_feed(a, ev, cut), 0);
            uint8_t *bytes = NULL;
            size_t len = 0;
            assert_int_equal(weir_tinstr_save(a, &bytes, &len), 0);
            weir_tinstr_free(a);
            /* Truncated state is refused with a message. */
            weir_tinstr *bad = NULL;
            assert_int_equal(weir_tinstr_load(bytes, len / 2, &bad, err, sizeof err), WEIR_EFORMAT);
            assert_null(bad);
            weir_tinstr *b = NULL;
            assert_int_equal(weir_tinstr_load(bytes, len, &b, err, sizeof err), 0);
            free(bytes);
            /* Second half split again, through a file this time. */
            size_t cut2 = cut + (n - cut) / 2;
            if (cut2 > cut) assert_int_equal(weir_tinstr_feed(b, ev + cut, cut2 - cut), 0);
            const char *path = tu_write(tu_tmpdir("instr_resume"), "state.bin", "");
            assert_int_equal(weir_tinstr_save_file(b, path, err, sizeof err), 0);
            weir_tinstr_free(b);
            weir_tinstr *c = NULL;
            assert_int_equal(weir_tinstr_load_file(path, &c, err, sizeof err), 0);
            if (n > cut2) assert_int_equal(weir_tinstr_feed(c, ev + cut2, n - cut2), 0);
            assert_int_equal(weir_tinstr_finish(c), 0);
            results_equal(one, c);
            weir_tinstr_free(c);
        }
        weir_tinstr_free(one);
    }
    free(ev);
}

static void test_aggregate(void **state)
{
    (void)state;
    size_t n1, n2;
    weir_tag *e1 = synth(5, 2000, 4000, 5000, &n1);
    weir_tag *e2 = synth(6, 2500, 4000, 3000, &n2);
    weir_tinstr_config c = corr_cfg(1, 2, 16, 1000, -8000);
    uint64_t *w1 = brute_corr(e1, n1, &c), *w2 = brute_corr(e2, n2, &c);
    weir_tinstr *a = run_chunked(&c, e1, n1, 1), *b = run_chunked(&c, e2, n2, 2);
    assert_int_equal(weir_tinstr_merge(a, b), 0);
    for (size_t i = 0; i < c.nbins; i++)
        w1[i] += w2[i];
    assert_hist_eq(a, w1, c.nbins);
    weir_tinstr_config d = corr_cfg(1, 2, 8, 1000, -8000);
    weir_tinstr *x = run_chunked(&d, e1, n1, 3);
    assert_int_equal(weir_tinstr_merge(a, x), WEIR_EINVAL);
    weir_tinstr_free(x);
    weir_tinstr_free(a);
    weir_tinstr_free(b);
    free(w1);
    free(w2);
    free(e1);
    free(e2);
}

/* ---- markers: gate and recipe ---- */

static void test_gate_and_recipe(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(8080, 3000, 4000, 5000, &n);
    /* Gate markers: channel 3 opens, channel 4 closes, every ~40 events. */
    weir_tag *g = calloc(n + n / 20 + 2, sizeof *g);
    size_t m = 0;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 40 == 0) {
            g[m++] = mk(ev[i].time, open ? 4 : 3, WEIR_TAG_MARKER, -1);
            open = !open;
        }
        g[m++] = ev[i];
    }
    /* Expected: the events inside open intervals only, markers removed. */
    weir_tag *in = calloc(m, sizeof *in);
    size_t k = 0;
    open = 0;
    for (size_t i = 0; i < m; i++) {
        if (g[i].kind == WEIR_TAG_MARKER) {
            if (g[i].channel == 4) open = 0;
            if (g[i].channel == 3) open = 1;
            continue;
        }
        if (open) in[k++] = g[i];
    }
    const char *json = "{\"instruments\": [{\"kind\": \"corr\", \"name\": \"g2\", \"start\": 1, "
                       "\"stop\": 2, \"binwidth\": \"16ps\", \"bins\": 1000, \"lo\": \"-8ns\", "
                       "\"gate\": [3, 4]}, {\"kind\": \"count\", \"channels\": [1, 2], "
                       "\"binwidth\": \"1ms\", \"delays\": {\"2\": \"0.5ns\"}}]}";
    weir_tinstr_config *cfgs = NULL;
    size_t nc = 0;
    char err[256];
    assert_int_equal(weir_tinstr_recipe_parse(json, &cfgs, &nc, err, sizeof err), 0);
    assert_int_equal(nc, 2);
    assert_string_equal(cfgs[0].name, "g2");
    assert_int_equal(cfgs[0].lo_ps, -8000);
    assert_int_equal(cfgs[1].bin_ps, 1000000000);
    assert_int_equal(cfgs[1].delays[0].ps, 500);
    weir_tinstr_config plain = cfgs[0];
    plain.gate_open = plain.gate_close = WEIR_TI_NOCH;
    uint64_t *want = brute_corr(in, k, &plain);
    assert_true(hist_sum(want, plain.nbins) > 0);
    weir_tinstr *t = run_chunked(&cfgs[0], g, m, 9);
    assert_hist_eq(t, want, plain.nbins);
    weir_tinstr_free(t);
    free(want);
    free(cfgs);
    assert_int_equal(weir_tinstr_recipe_parse("{\"instruments\": [{\"kind\": \"corr\", "
                                              "\"bnis\": 3}]}",
                                              &cfgs, &nc, err, sizeof err),
                     WEIR_EPARAM);
    assert_non_null(strstr(err, "bnis"));
    int64_t ps;
    assert_int_equal(weir_tinstr_parse_time("16ps", &ps), 0);
    assert_int_equal(ps, 16);
    assert_int_equal(weir_tinstr_parse_time("2.5us", &ps), 0);
    assert_int_equal(ps, 2500000);
    assert_int_equal(weir_tinstr_parse_time("1s", &ps), 0);
    assert_int_equal(ps, 1000000000000ll);
    assert_int_equal(weir_tinstr_parse_time("0.5ps", &ps), WEIR_EPARAM);
    assert_int_equal(weir_tinstr_parse_time("3 parsecs", &ps), WEIR_EPARAM);
    free(in);
    free(g);
    free(ev);
}

/* ---- ETA emulation on synthetic data ----
 * ETA's CLOCK(c,S,1) ring: after n starts, head = n % S; when n >= S the
 * ring holds starts n-S+1 .. n-1 and, unless head is 0 or S-1, the start in
 * slot 0 (index multiple of S) is skipped by record_all. Here that rule is
 * applied to the exact pair list: expected ETA = exact pairs (without the
 * final event) minus the skipped-slot pairs. The data keep fewer than S-1
 * starts per window so the ring capacity never bites. */
static void test_eta_compat_synthetic(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(1717, 5000, 6000, 2000, &n);
    /* drop exact ties between channels 1 and 2 so processing order is the
     * time order in both models */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!(m && ev[i].time == ev[m - 1].time)) ev[m++] = ev[i];
    n = m;
    for (uint32_t S = 2; S <= 101; S += 33) {
        weir_tinstr_config c = corr_cfg(1, 2, 16, 300, 0);
        c.eta_compat = 1;
        c.eta_clock = S;
        uint64_t *want = calloc(c.nbins, sizeof *want);
        uint64_t skipped = 0;
        uint64_t nstarts = 0;
        int64_t *st = calloc(n, sizeof *st);
        for (size_t j = 0; j + 1 < n; j++) { /* final event dropped */
            if (is_ch(&ev[j], 2)) {
                uint64_t first = nstarts >= S - 1 ? nstarts - (S - 1) : 0;
                int64_t skip = -1;
                if (nstarts >= S && nstarts % S != 0 && nstarts % S != S - 1)
                    skip = (int64_t)((nstarts / S) * S);
                for (uint64_t a = first; a < nstarts; a++) {
                    int64_t k = fdiv(ev[j].time - st[a], 16);
                    if (k < 0 || k >= 300) continue;
                    if ((int64_t)a == skip)
                        skipped++;
                    else
                        want[k]++;
                }
            }
            if (is_ch(&ev[j], 1)) st[nstarts++] = ev[j].time;
        }
        weir_tinstr *t = run_chunked(&c, ev, n, S);
        assert_hist_eq(t, want, c.nbins);
        weir_tinstr_result r;
        weir_tinstr_get_result(t, &r);
        assert_int_equal(r.extra[0], skipped);
        if (S > 2) assert_true(skipped > 0);
        /* eta_compat cannot be split into sections */
        assert_int_equal(weir_tinstr_seal(t), WEIR_EUNSUPPORTED);
        weir_tinstr_free(t);
        free(want);
        free(st);
    }
    free(ev);
}

/* ---- ETA's own test files ----
 * Parameters from ETA's tests/recipes/test_correlation_recipe.py with
 * Correlation.eta: bins 10000, binsize 16, CLOCK(c,100,1); h3 = start on
 * the first detector, stop on the second (hist1), h4 the reverse (hist2).
 * HHT2: detectors are channels 1 and 2; HHT3: 0 and 1; quTAG: 1 and 2. */

static weir_tinstr *run_file(const char *path, int start, int stop, int compat, unsigned threads)
{
    char err[512];
    weir_tag_reader *r = NULL;
    if (weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err)) fail_msg("%s", err);
    weir_tinstr_config c = corr_cfg(start, stop, 16, 10000, 0);
    c.eta_compat = compat;
    weir_tinstr *t = NULL;
    assert_int_equal(weir_tinstr_create(&c, &t, err, sizeof err), 0);
    weir_tinstr_run_opts o = {threads, 4096, NULL, NULL};
    if (weir_tinstr_run_file(r, &t, 1, &o, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(weir_tinstr_finish(t), 0);
    weir_tag_close(r);
    return t;
}

static void assert_eq_npy(const weir_tinstr *t, const char *rel)
{
    weir_array a;
    char err[256];
    if (weir_npy_read(tu_shared(rel), &a, err, sizeof err)) fail_msg("%s", err);
    weir_tinstr_result r;
    weir_tinstr_get_result(t, &r);
    assert_int_equal(weir_array_nelem(&a), r.nbins);
    for (size_t i = 0; i < r.nbins; i++)
        if ((uint64_t)weir_array_get_f64(&a, i) != r.counts[i])
            fail_msg("%s bin %zu: ETA %.0f, weir %llu", rel, i, weir_array_get_f64(&a, i),
                     (unsigned long long)r.counts[i]);
    weir_array_release(&a);
}

static void test_eta_files_compat(void **state)
{
    (void)state;
    static const struct {
        const char *file, *res;
        int a, b;
    } f[] = {
        {"timetag/eta/200204_HH400_T2_320MHz_HBT.timeres", "200204_HH400_T2_320MHz_HBT_g2", 1, 2},
        {"timetag/eta/200213_HH400_T3_80MHz_HBT.timeres", "200213_HH400_T3_80MHz_HBT", 0, 1},
        {"timetag/eta/19_qutag_80MHz_HBT_sync_filtered.qutag", "19_qutag_80MHz_HBT_sync_filtered",
         1, 2},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char rel[256];
        weir_tinstr *t = run_file(tu_shared(f[i].file), f[i].a, f[i].b, 1, 1);
        snprintf(rel, sizeof rel, "timetag/eta/results/%s/hist1.npy", f[i].res);
        assert_eq_npy(t, rel);
        weir_tinstr_free(t);
        t = run_file(tu_shared(f[i].file), f[i].b, f[i].a, 1, 1);
        snprintf(rel, sizeof rel, "timetag/eta/results/%s/hist2.npy", f[i].res);
        assert_eq_npy(t, rel);
        weir_tinstr_free(t);
    }
}

/* The exact result on the T2 file equals ETA's plus exactly the pairs of
 * the start in ring slot 0 (100 slots) and of the dropped final event,
 * computed here from the decoded events. */
static void test_eta_t2_exact_difference(void **state)
{
    (void)state;
    const char *path = tu_shared("timetag/eta/200204_HH400_T2_320MHz_HBT.timeres");
    char err[512];
    weir_tag_reader *r = NULL;
    if (weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err)) fail_msg("%s", err);
    size_t cap = 1 << 20, n = 0;
    weir_tag *ev = malloc(cap * sizeof *ev);
    long got;
    while ((got = weir_tag_read(r, ev + n, cap - n, err, sizeof err)) > 0)
        n += (size_t)got;
    assert_true(got == 0 && n > 300000);
    weir_tag_close(r);
    for (int dir = 0; dir < 2; dir++) {
        int A = dir ? 2 : 1, B = dir ? 1 : 2;
        uint64_t *diff = calloc(10000, sizeof *diff);
        int64_t *st = malloc(n * sizeof *st);
        uint64_t ns = 0, ties = 0;
        const uint64_t S = 100;
        for (size_t j = 0; j < n; j++) {
            if (is_ch(&ev[j], B)) {
                /* all starts in range, newest first, for the final event */
                for (uint64_t a = ns; a-- > 0;) {
                    int64_t k = fdiv(ev[j].time - st[a], 16);
                    if (k >= 10000) break;
                    if (k == 0 && ev[j].time == st[a]) ties++;
                    if (a + S - 1 < ns) fail_msg("ring capacity exceeded: not modelled here");
                    int skipped = ns >= S && ns % S != 0 && ns % S != S - 1 && a == (ns / S) * S;
                    if (skipped || j == n - 1) diff[k]++;
                }
            }
            if (is_ch(&ev[j], A)) st[ns++] = ev[j].time;
        }
        assert_int_equal(ties, 0); /* no equal-time pairs, so ETA's merge order is moot */
        weir_tinstr *ex = run_file(path, A, B, 0, 1), *eta = run_file(path, A, B, 1, 1);
        weir_tinstr_result x, e;
        weir_tinstr_get_result(ex, &x);
        weir_tinstr_get_result(eta, &e);
        uint64_t total = 0;
        for (size_t k = 0; k < 10000; k++) {
            if (x.counts[k] - e.counts[k] != diff[k])
                fail_msg("bin %zu: exact %llu - ETA %llu != %llu", k,
                         (unsigned long long)x.counts[k], (unsigned long long)e.counts[k],
                         (unsigned long long)diff[k]);
            total += diff[k];
        }
        /* about 1 % of the pairs, as eta.md reports */
        assert_true(total * 200 > hist_sum(x.counts, 10000));
        assert_true(total * 50 < hist_sum(x.counts, 10000));
        /* the parallel file driver gives the exact result for any K */
        for (unsigned k = 2; k <= 4; k++) {
            weir_tinstr *p = run_file(path, A, B, 0, k);
            results_equal(ex, p);
            weir_tinstr_free(p);
        }
        weir_tinstr_free(ex);
        weir_tinstr_free(eta);
        free(diff);
        free(st);
    }
    free(ev);
}

/* ---- the fast path (windows holding tau = 0 after the delays) ----
 * Edges against the brute force: odd widths, lo = 0 and hi = 1 exactly,
 * delays that move zero to a window edge, equal times, huge gaps, times
 * near +-2^62 (the event-by-event branch), and chunks larger than the
 * internal 16 Ki split. */
static uint64_t *brute_corr_sorted(const weir_tag *ev, size_t n, const weir_tinstr_config *c)
{
    /* the same definition as brute_corr, visiting only pairs within the
     * reach (the events are sorted) so large inputs stay quick */
    uint64_t *h = calloc(c->nbins + 1, sizeof *h);
    int64_t dA = 0, dB = 0;
    for (unsigned i = 0; i < c->ndelays; i++) {
        if (c->delays[i].channel == c->start) dA = c->delays[i].ps;
        if (c->delays[i].channel == c->stop) dB = c->delays[i].ps;
    }
    const int64_t hi = c->lo_ps + (int64_t)c->nbins * c->bin_ps;
    const int64_t reach = (hi > -c->lo_ps ? hi : -c->lo_ps) + llabs(dA - dB) + 1;
    size_t j0 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_ch(&ev[i], c->start)) continue;
        while (j0 < n && ev[j0].time < ev[i].time - reach)
            j0++;
        for (size_t j = j0; j < n && ev[j].time <= ev[i].time + reach; j++) {
            if (i == j || !is_ch(&ev[j], c->stop)) continue;
            int64_t tau = (ev[j].time + dB) - (ev[i].time + dA);
            int64_t k = fdiv(tau - c->lo_ps, c->bin_ps);
            if (k >= 0 && k < (int64_t)c->nbins) h[k]++;
        }
    }
    return h;
}

static void test_corr_fast_edges(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(4711, 3000, 3000, 2000, &n);
    weir_tinstr_config cs[12];
    size_t nc = 0;
    cs[nc++] = corr_cfg(1, 2, 7, 1429, -5000);  /* odd width, hi = +3 */
    cs[nc++] = corr_cfg(2, 1, 16, 500, 0);      /* lo = 0 exactly */
    cs[nc++] = corr_cfg(1, 2, 1, 6001, -6000);  /* hi = 1 exactly */
    cs[nc++] = corr_cfg(1, 2, 1000, 9, -4500);  /* wide bins */
    cs[nc++] = corr_cfg(1, 2, 3, 3334, -10000); /* width 3, hi = +2 */
    cs[nc] = corr_cfg(1, 2, 16, 1000, -8000);
    add_delay(&cs[nc++], 2, -8000); /* zero moves to the upper edge */
    cs[nc] = corr_cfg(1, 2, 16, 1000, -8000);
    add_delay(&cs[nc++], 1, -7999); /* ... and near the lower edge */
    cs[nc] = corr_cfg(1, 0, 100, 125, -12000);
    add_delay(&cs[nc++], 0, 3000); /* sync channel as the stop */
    for (size_t i = 0; i < nc; i++) {
        uint64_t *want = brute_corr(ev, n, &cs[i]);
        assert_true(hist_sum(want, cs[i].nbins) > 0);
        for (uint64_t seed = 1; seed <= 2; seed++) {
            weir_tinstr *t = run_chunked(&cs[i], ev, n, seed * 131 + i);
            assert_hist_eq(t, want, cs[i].nbins);
            weir_tinstr_free(t);
        }
        free(want);
    }
    /* Times near the ends of int64 (beyond +-2^61) go event by event and
     * stay exact. */
    weir_tag *x = calloc(n, sizeof *x);
    for (size_t i = 0; i < n; i++) {
        x[i] = ev[i];
        x[i].time = ev[i].time - ev[0].time + (INT64_MIN / 2 - 1000000);
    }
    weir_tinstr_config c = corr_cfg(1, 2, 16, 1000, -8000);
    uint64_t *want = brute_corr(x, n, &c);
    weir_tinstr *t = run_chunked(&c, x, n, 77);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    free(want);
    free(x);
    free(ev);

    /* 70 000 events fed in one chunk (several internal splits), bursts of
     * equal times, 1 s gaps; then the same in chunks of 1..200. */
    ev = synth(99991, 60000, 2500, 1500, &n);
    assert_true(n > 2 * 16384);
    c = corr_cfg(1, 2, 16, 2000, -16000);
    want = brute_corr_sorted(ev, n, &c);
    char err[256];
    assert_int_equal(weir_tinstr_create(&c, &t, err, sizeof err), 0);
    assert_int_equal(weir_tinstr_feed(t, ev, n), 0);
    assert_int_equal(weir_tinstr_finish(t), 0);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    t = run_chunked(&c, ev, n, 5);
    assert_hist_eq(t, want, c.nbins);
    weir_tinstr_free(t);
    free(want);
    free(ev);
}

/* run_file on a HydraHarp T2 PTU decodes and correlates in one loop
 * (ti_corr_fused): it must equal feeding the decoded events, leave the
 * reader's counts as weir_tag_read does, and split into sections exactly. */
static void test_corr_fused_file(void **state)
{
    (void)state;
    size_t n;
    weir_tag *ev = synth(606, 40000, 30000, 4000, &n);
    /* markers keep their bits; T2 syncs are channel 0 */
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == WEIR_TAG_MARKER) ev[i].bits = 1, ev[i].channel = 0;
    const char *path = tu_write(tu_tmpdir("instr_fused"), "hh.ptu", "");
    char err[512];
    weir_tag_encode_opts eo = {0x01010204, 1e-12, 0};
    assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, &eo, ev, n, path, err, sizeof err), 0);
    /* the decoded events (what the fused loop must reproduce) */
    weir_tag_reader *r = NULL;
    assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
    weir_tag *d = malloc((n + 16) * sizeof *d);
    size_t nd = 0;
    long got;
    while ((got = weir_tag_read(r, d + nd, n + 16 - nd, err, sizeof err)) > 0)
        nd += (size_t)got;
    weir_tag_counts want_counts = *weir_tag_reader_counts(r);
    weir_tag_close(r);
    assert_true(want_counts.overflows > 10);
    weir_tinstr_config cs[4];
    cs[0] = corr_cfg(1, 2, 16, 2000, -16000);
    cs[1] = corr_cfg(2, 1, 7, 3001, -9000);
    cs[2] = corr_cfg(0, 1, 32, 500, -8000); /* sync as the start */
    cs[3] = corr_cfg(1, 2, 16, 500, 1000);  /* one-sided: the general path */
    for (size_t i = 0; i < 4; i++) {
        uint64_t *want = brute_corr_sorted(d, nd, &cs[i]);
        assert_true(hist_sum(want, cs[i].nbins) > 0);
        for (unsigned threads = 1; threads <= 3; threads++) {
            assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
            weir_tinstr *t = NULL;
            assert_int_equal(weir_tinstr_create(&cs[i], &t, err, sizeof err), 0);
            weir_tinstr_run_opts o = {threads, 1000, NULL, NULL};
            if (weir_tinstr_run_file(r, &t, 1, &o, err, sizeof err)) fail_msg("%s", err);
            assert_int_equal(weir_tinstr_finish(t), 0);
            assert_hist_eq(t, want, cs[i].nbins);
            if (threads == 1) {
                const weir_tag_counts *gc = weir_tag_reader_counts(r);
                assert_memory_equal(gc, &want_counts, sizeof want_counts);
            }
            weir_tinstr_free(t);
            weir_tag_close(r);
        }
        free(want);
    }
    free(d);
    free(ev);
}

/* Sets WEIR_TAGS_SIMD ("scalar", or unset = automatic) for instruments
 * created from now on; returns the kernels they should report. */
static const char *simd_mode(const char *mode)
{
    if (mode) {
        setenv("WEIR_TAGS_SIMD", mode, 1);
        return "scalar";
    }
    unsetenv("WEIR_TAGS_SIMD");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "scalar";
}

/* The fast path's kernels, forced to the scalar ones (WEIR_TAGS_SIMD=scalar)
 * and automatic (AVX2 where the CPU has it), each against the brute force:
 * HydraHarp V2 T2 files at 1 ps and 4 ps per tick (the vector time is
 * base * tick + tt * tick) and a V1 file (one wrap per overflow record),
 * with overflow records carrying counts (1 s gaps), syncs and markers mixed
 * in (so 8-record vector steps fall back record by record), bursts of equal
 * times, a dense stream (dozens of partners per event: the deep look-back)
 * and a sparse one, power-of-two widths (the vector look-back, also width
 * 1: shift 0) and odd ones, sync as a start; read in chunks of 1, 7, 8, 9,
 * 1000 and 100 000 records (chunk boundaries inside vector steps), with 1
 * and 2 threads, and fed as events in chunks of 1..200. A time running
 * backwards inside an all-photon step is refused in both modes. */
static void test_corr_simd_paths(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("instr_simd");
    char err[512];
    struct {
        uint64_t seed;
        size_t n;
        int64_t gap;
        uint32_t variant;
        double res;
    } fs[] = {
        {31, 30000, 1500, 0x01010204, 1e-12},  /* dense, V2, 1 ps */
        {32, 30000, 40000, 0x01010204, 1e-12}, /* sparse, V2 */
        {33, 20000, 9000, 0x01010204, 4e-12},  /* 4 ps per tick */
        {34, 8000, 9000, 0x00010204, 1e-12},   /* V1 */
    };
    weir_tinstr_config cs[5];
    cs[0] = corr_cfg(1, 2, 16, 2000, -16000);
    cs[1] = corr_cfg(2, 1, 7, 3001, -9000);
    cs[2] = corr_cfg(0, 1, 32, 500, -8000);
    cs[3] = corr_cfg(1, 2, 1, 6001, -3000);
    cs[4] = corr_cfg(2, 1, 64, 300, -9600);
    add_delay(&cs[4], 1, 500);
    const size_t chunks[] = {1, 7, 8, 9, 1000, 100000};
    for (size_t f = 0; f < sizeof fs / sizeof fs[0]; f++) {
        size_t n;
        weir_tag *ev = synth(fs[f].seed, fs[f].n, fs[f].gap, 2000, &n);
        /* keep one sync in 40 and one marker in 4 on all but the first
         * file, so most 8-record steps are all photons */
        size_t m = 0, ns = 0;
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == WEIR_TAG_MARKER) ev[i].bits = 1, ev[i].channel = 0;
            if (f > 0 && ev[i].kind != WEIR_TAG_PHOTON &&
                ns++ % (ev[i].kind == WEIR_TAG_SYNC ? 40 : 4))
                continue;
            ev[m++] = ev[i];
        }
        n = m;
        char name[32];
        snprintf(name, sizeof name, "s%zu.ptu", f);
        const char *path = tu_write(dir, name, "");
        weir_tag_encode_opts eo = {fs[f].variant, fs[f].res, 0};
        assert_int_equal(weir_tag_encode(WEIR_TAGFMT_PTU, &eo, ev, n, path, err, sizeof err), 0);
        weir_tag_reader *r = NULL;
        assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
        const uint64_t nrec = weir_tag_reader_info(r)->nrecords;
        weir_tag *d = malloc((nrec + 16) * sizeof *d);
        size_t nd = 0;
        long got;
        while ((got = weir_tag_read(r, d + nd, nrec + 16 - nd, err, sizeof err)) > 0)
            nd += (size_t)got;
        weir_tag_counts want_counts = *weir_tag_reader_counts(r);
        weir_tag_close(r);
        if (want_counts.overflows < 5)
            fail_msg("file %zu: %llu overflows", f, (unsigned long long)want_counts.overflows);
        assert_true(want_counts.syncs > 20 && want_counts.markers > 5);
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            uint64_t *want = brute_corr_sorted(d, nd, &cs[i]);
            assert_true(hist_sum(want, cs[i].nbins) > 0);
            for (int mode = 0; mode < 2; mode++) {
                const char *kern = simd_mode(mode ? NULL : "scalar");
                for (size_t ci = 0; ci <= sizeof chunks / sizeof chunks[0]; ci++) {
                    const int last = ci == sizeof chunks / sizeof chunks[0];
                    const size_t chunk = last ? 1000 : chunks[ci];
                    if (chunk == 1 && nrec > 100000) continue; /* V1: many overflow records */
                    assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
                    weir_tinstr *t = NULL;
                    assert_int_equal(weir_tinstr_create(&cs[i], &t, err, sizeof err), 0);
                    assert_string_equal(weir_tinstr_kernels(t), kern);
                    weir_tinstr_run_opts o = {last ? 2 : 1, chunk, NULL, NULL};
                    if (weir_tinstr_run_file(r, &t, 1, &o, err, sizeof err)) fail_msg("%s", err);
                    assert_int_equal(weir_tinstr_finish(t), 0);
                    assert_hist_eq(t, want, cs[i].nbins);
                    if (!last) {
                        const weir_tag_counts *gc = weir_tag_reader_counts(r);
                        assert_memory_equal(gc, &want_counts, sizeof want_counts);
                    }
                    weir_tinstr_free(t);
                    weir_tag_close(r);
                }
                weir_tinstr *t = run_chunked(&cs[i], d, nd, 17 + i);
                assert_string_equal(weir_tinstr_kernels(t), kern);
                assert_hist_eq(t, want, cs[i].nbins);
                weir_tinstr_free(t);
            }
            free(want);
        }
        /* one photon record (inside a run of photons) made earlier than
         * its predecessor: refused in both modes */
        if (f == 0) {
            weir_tag_reader *rr = NULL;
            assert_int_equal(weir_tag_open(path, WEIR_TAGFMT_AUTO, &rr, err, sizeof err), 0);
            const uint64_t hdr = weir_tag_reader_info(rr)->header_bytes;
            weir_tag_close(rr);
            FILE *fp = fopen(path, "rb");
            assert_non_null(fp);
            uint8_t *buf = malloc(hdr + 4 * nrec);
            assert_int_equal(fread(buf, 1, hdr + 4 * nrec, fp), hdr + 4 * nrec);
            fclose(fp);
            uint64_t k = nrec / 2;
            for (;; k++) {
                uint32_t w[10];
                memcpy(w, buf + hdr + 4 * (k - 5), sizeof w);
                int ok = 1;
                for (int j = 0; j < 10; j++)
                    ok &= !(w[j] >> 31);
                if (ok && (w[4] & 0x1FFFFFF) > (w[5] & 0x1FFFFFF) / 2 + 1) break;
            }
            uint32_t w;
            memcpy(&w, buf + hdr + 4 * k, 4);
            w &= ~0x1FFFFFFu; /* tt = 0: before record k - 1 */
            memcpy(buf + hdr + 4 * k, &w, 4);
            const char *bad = tu_write(dir, "backwards.ptu", "");
            fp = fopen(bad, "wb");
            assert_int_equal(fwrite(buf, 1, hdr + 4 * nrec, fp), hdr + 4 * nrec);
            fclose(fp);
            free(buf);
            for (int mode = 0; mode < 2; mode++) {
                simd_mode(mode ? NULL : "scalar");
                assert_int_equal(weir_tag_open(bad, WEIR_TAGFMT_AUTO, &r, err, sizeof err), 0);
                weir_tinstr *t = NULL;
                assert_int_equal(weir_tinstr_create(&cs[0], &t, err, sizeof err), 0);
                weir_tinstr_run_opts o = {1, 100000, NULL, NULL};
                assert_int_not_equal(weir_tinstr_run_file(r, &t, 1, &o, err, sizeof err), 0);
                weir_tinstr_free(t);
                weir_tag_close(r);
            }
        }
        free(d);
        free(ev);
    }
    simd_mode(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corr_brute),
        cmocka_unit_test(test_corr_bursts),
        cmocka_unit_test(test_unsorted_refused),
        cmocka_unit_test(test_startstop_lifetime),
        cmocka_unit_test(test_coinc_count),
        cmocka_unit_test(test_parallel_equals_serial),
        cmocka_unit_test(test_resume_equals_one_pass),
        cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_gate_and_recipe),
        cmocka_unit_test(test_eta_compat_synthetic),
        cmocka_unit_test(test_eta_files_compat),
        cmocka_unit_test(test_eta_t2_exact_difference),
        cmocka_unit_test(test_corr_fast_edges),
        cmocka_unit_test(test_corr_fused_file),
        cmocka_unit_test(test_corr_simd_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
