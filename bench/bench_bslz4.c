/* bench_bslz4.c — decode speed of bitshuffle-LZ4 frames.
 *
 * Builds detector-like frames with a fixed seed (Poisson counts at a low
 * rate, as a photon-counting detector sees them, plus the all-ones module
 * gap rows an EIGER2 500K has), encodes them with weir_bslz4_encode and
 * checks decode == original before any timing. It then times, per frame,
 * in GB/s of decoded (output) bytes:
 *   - weir_bslz4_decode with the run-time-selected transpose and forced scalar,
 *   - its two stages alone (LZ4 of the shuffled blocks; the un-transpose),
 *   - references measured in the same run: memcpy of the output bytes and
 *     LZ4_decompress_safe of a plain-LZ4 block of the same unshuffled frame.
 * Ratios against the references are printed; there are no thresholds.
 * Usage: bench_bslz4 [seconds per measurement, default 0.3]. */
#include <lz4.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weir/bslz4.h"

struct frame {
    const char *name;
    size_t rows, cols, elem;
    double rate;                /* mean counts per pixel */
    size_t gap_first, gap_rows; /* all-ones module gap */
};

static uint64_t rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Knuth's Poisson sampler: fine for the small rates used here. */
static unsigned poisson(uint64_t *st, double rate)
{
    double l = exp(-rate), p = 1.0;
    unsigned k = 0;
    do {
        k++;
        p *= (double)(rng_next(st) >> 11) * 0x1.0p-53;
    } while (p > l);
    return k - 1;
}

static void make_frame(const struct frame *f, uint8_t *buf, uint64_t seed)
{
    uint64_t st = seed;
    for (size_t r = 0; r < f->rows; r++) {
        int gap = r >= f->gap_first && r < f->gap_first + f->gap_rows;
        for (size_t c = 0; c < f->cols; c++) {
            uint64_t v = gap ? UINT64_MAX : poisson(&st, f->rate);
            uint8_t *p = buf + (r * f->cols + c) * f->elem;
            for (size_t b = 0; b < f->elem; b++) /* little-endian pixels */
                p[b] = (uint8_t)(v >> (8 * b));
        }
    }
}

static volatile uint8_t sink; /* keeps timed results observable */

enum what { W_BSLZ4, W_LZ4_STAGE, W_UNSHUFFLE_STAGE, W_MEMCPY, W_PLAIN_LZ4 };

struct ctx {
    const uint8_t *enc, *plain, *orig, *shuffled;
    size_t enc_len, plain_len, nbytes, elem;
    uint8_t *out, *tmp;
};

static int run_once(struct ctx *c, enum what w)
{
    switch (w) {
    case W_BSLZ4:
        return weir_bslz4_decode(c->enc, c->enc_len, c->out, c->nbytes, c->elem);
    case W_LZ4_STAGE: {
        /* Walk the frame and decompress every block, skipping the transpose. */
        const uint8_t *p = c->enc + 12;
        size_t belems = 8192 / c->elem, nelem = c->nbytes / c->elem, done = 0;
        size_t blocked = nelem / 8 * 8;
        while (done < blocked) {
            size_t be = blocked - done < belems ? blocked - done : belems;
            uint32_t len =
                ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
            if (LZ4_decompress_safe((const char *)p + 4, (char *)c->tmp, (int)len,
                                    (int)(be * c->elem)) != (int)(be * c->elem))
                return -1;
            p += 4 + len;
            done += be;
        }
        sink = c->tmp[0];
        return 0;
    }
    case W_UNSHUFFLE_STAGE: {
        size_t belems = 8192 / c->elem, nelem = c->nbytes / c->elem, done = 0;
        size_t blocked = nelem / 8 * 8;
        while (done < blocked) {
            size_t be = blocked - done < belems ? blocked - done : belems;
            weir_bitunshuffle(c->shuffled + done * c->elem, c->out + done * c->elem, be, c->elem);
            done += be;
        }
        return 0;
    }
    case W_MEMCPY:
        memcpy(c->out, c->orig, c->nbytes);
        sink = c->out[c->nbytes / 2];
        return 0;
    case W_PLAIN_LZ4:
        return LZ4_decompress_safe((const char *)c->plain, (char *)c->out, (int)c->plain_len,
                                   (int)c->nbytes) == (int)c->nbytes
                   ? 0
                   : -1;
    }
    return -1;
}

/* GB/s of output bytes: best of 5 runs of at least secs/5 each. */
static double measure(struct ctx *c, enum what w, double secs)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        size_t iters = 0;
        double t0 = now(), t;
        do {
            if (run_once(c, w) != 0) {
                fprintf(stderr, "bench_bslz4: decode failed during timing\n");
                exit(1);
            }
            iters++;
            t = now() - t0;
        } while (t < secs / 5);
        double gbs = (double)c->nbytes * (double)iters / t / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    if (secs <= 0) secs = 0.3;
    static const struct frame frames[] = {
        {"eiger2-500k u32 1065x1030", 1065, 1030, 4, 1.5, 514, 37},
        {"eiger2-500k u16 1065x1030", 1065, 1030, 2, 1.5, 514, 37},
        {"quadro u16 512x512", 512, 512, 2, 1.5, 255, 2},
        {"eiger2-500k u32 bright", 1065, 1030, 4, 40.0, 514, 37},
    };
    double worst_ratio = 1e9;
    double sum_vec = 0, sum_scalar = 0;
    int nf = (int)(sizeof frames / sizeof *frames);
    printf("bitshuffle transpose selected at run time: %s\n", weir_bitshuffle_impl());
    printf("%-27s %6s %7s | %7s %7s %7s %7s | %7s %7s | %6s %6s\n", "frame (GB/s of output)",
           "ratio", "KiB", "bslz4", "scalar", "lz4stg", "unshuf", "memcpy", "lz4", "/mcpy", "/lz4");
    for (int i = 0; i < nf; i++) {
        const struct frame *f = &frames[i];
        struct ctx c = {0};
        c.elem = f->elem;
        c.nbytes = f->rows * f->cols * f->elem;
        uint8_t *orig = malloc(c.nbytes), *out = malloc(c.nbytes), *tmp = malloc(8192);
        uint8_t *shuf = malloc(c.nbytes);
        size_t cap = weir_bslz4_bound(c.nbytes, f->elem, 0);
        uint8_t *enc = malloc(cap);
        uint8_t *plain = malloc((size_t)LZ4_compressBound((int)c.nbytes));
        if (!orig || !out || !tmp || !enc || !plain || !shuf) {
            fprintf(stderr, "bench_bslz4: out of memory\n");
            return 1;
        }
        make_frame(f, orig, 12345 + (uint64_t)i);
        if (weir_bslz4_encode(orig, c.nbytes, f->elem, 0, enc, cap, &c.enc_len) != 0) {
            fprintf(stderr, "bench_bslz4: encode failed\n");
            return 1;
        }
        int plen = LZ4_compress_default((const char *)orig, (char *)plain, (int)c.nbytes,
                                        LZ4_compressBound((int)c.nbytes));
        if (plen <= 0) return 1;
        c.plain_len = (size_t)plen;
        /* The block-wise shuffled frame, input of the un-transpose stage. */
        size_t belems = 8192 / f->elem, nelem = c.nbytes / f->elem, blocked = nelem / 8 * 8;
        for (size_t d = 0; d < blocked; d += belems) {
            size_t be = blocked - d < belems ? blocked - d : belems;
            weir_bitshuffle(orig + d * f->elem, shuf + d * f->elem, be, f->elem);
        }
        c.enc = enc;
        c.plain = plain;
        c.orig = orig;
        c.shuffled = shuf;
        c.out = out;
        c.tmp = tmp;

        /* Verify every timed path before timing it. */
        for (int scalar = 0; scalar < 2; scalar++) {
            weir_bitshuffle_force_scalar(scalar);
            memset(out, 0, c.nbytes);
            if (run_once(&c, W_BSLZ4) != 0 || memcmp(out, orig, c.nbytes) != 0) {
                fprintf(stderr, "bench_bslz4: %s decode mismatch (scalar=%d)\n", f->name, scalar);
                return 1;
            }
            memset(out, 0, c.nbytes);
            if (run_once(&c, W_UNSHUFFLE_STAGE) != 0 || memcmp(out, orig, blocked * f->elem) != 0) {
                fprintf(stderr, "bench_bslz4: %s unshuffle mismatch\n", f->name);
                return 1;
            }
        }
        weir_bitshuffle_force_scalar(0);
        memset(out, 0, c.nbytes);
        if (run_once(&c, W_PLAIN_LZ4) != 0 || memcmp(out, orig, c.nbytes) != 0) {
            fprintf(stderr, "bench_bslz4: plain lz4 mismatch\n");
            return 1;
        }
        if (run_once(&c, W_LZ4_STAGE) != 0) return 1;

        double vec = measure(&c, W_BSLZ4, secs);
        double lz4stage = measure(&c, W_LZ4_STAGE, secs);
        double unshuf = measure(&c, W_UNSHUFFLE_STAGE, secs);
        weir_bitshuffle_force_scalar(1);
        double scalar = measure(&c, W_BSLZ4, secs);
        weir_bitshuffle_force_scalar(0);
        double mcpy = measure(&c, W_MEMCPY, secs);
        double lz4 = measure(&c, W_PLAIN_LZ4, secs);
        printf("%-27s %6.1f %7.1f | %7.2f %7.2f %7.2f %7.2f | %7.2f %7.2f | %6.2f %6.2f\n", f->name,
               (double)c.nbytes / (double)c.enc_len, (double)c.enc_len / 1024.0, vec, scalar,
               lz4stage, unshuf, mcpy, lz4, vec / mcpy, vec / lz4);
        if (vec / lz4 < worst_ratio) worst_ratio = vec / lz4;
        sum_vec += vec;
        sum_scalar += scalar;
        free(orig);
        free(out);
        free(tmp);
        free(shuf);
        free(enc);
        free(plain);
    }
    printf("columns: bslz4 = weir_bslz4_decode (%s), scalar = same with the scalar transpose,\n"
           "  lz4stg / unshuf = its two stages alone, memcpy / lz4 = same-run references\n"
           "  (lz4 = LZ4_decompress_safe of one plain-LZ4 block of the unshuffled frame).\n",
           weir_bitshuffle_impl());
    printf("SUMMARY bslz4 decode: mean %.2f GB/s (%s) vs %.2f GB/s scalar (x%.2f); "
           "worst ratio to plain LZ4 decode %.2f\n",
           sum_vec / nf, weir_bitshuffle_impl(), sum_scalar / nf, sum_vec / sum_scalar,
           worst_ratio);
    return 0;
}
