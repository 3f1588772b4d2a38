/* instr_impl.h — internals shared by the time-tag instruments
 * (src/timetag/instr_*.c): the context, the per-kind operations table,
 * growable time sequences and the save/load byte helpers. Not installed. */
#ifndef WEIR_INSTR_IMPL_H
#define WEIR_INSTR_IMPL_H

#include "weir/tag_instr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- save/load byte helpers ---- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int err;
} ti_wbuf;

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int err;
} ti_rbuf;

void ti_put(ti_wbuf *w, const void *src, size_t len);
void ti_put_u64(ti_wbuf *w, uint64_t v);
void ti_put_i64(ti_wbuf *w, int64_t v);
void ti_get(ti_rbuf *r, void *dst, size_t len);
uint64_t ti_get_u64(ti_rbuf *r);
int64_t ti_get_i64(ti_rbuf *r);

/* ---- a growable sequence of int64 times with absolute indices ----
 * Element with absolute index j lives at v[j - base]; dropping a prefix
 * moves `base` forward (the memory is compacted lazily). Nothing is ever
 * dropped that a caller still needs: callers drop only below their own
 * pointers. */
typedef struct {
    int64_t *v;
    size_t n, cap; /* valid elements v[0..n) */
    uint64_t base; /* absolute index of v[0] */
} ti_seq;

int ti_seq_reserve(ti_seq *s, size_t more);
void ti_seq_drop(ti_seq *s, uint64_t upto_abs); /* forget elements with index < upto_abs */
static inline uint64_t ti_seq_end(const ti_seq *s)
{
    return s->base + s->n;
}
static inline int64_t ti_seq_at(const ti_seq *s, uint64_t abs)
{
    return s->v[abs - s->base];
}
void ti_seq_free(ti_seq *s);
void ti_seq_save(ti_wbuf *w, const ti_seq *s);
int ti_seq_load(ti_rbuf *r, ti_seq *s);

/* ---- exact floor division by a fixed positive width without a divide ---- */
typedef struct {
    uint64_t w, magic;
    int shift; /* >= 0 when w is a power of two */
} ti_div;

void ti_div_init(ti_div *d, uint64_t w);
static inline uint64_t ti_div_do(const ti_div *d, uint64_t x)
{
    if (d->shift >= 0) return x >> d->shift;
    uint64_t q = (uint64_t)(((unsigned __int128)x * d->magic) >> 64);
    return q + (x - q * d->w >= d->w);
}
/* floor(x / w) for signed x, w > 0. */
static inline int64_t ti_floordiv(int64_t x, int64_t w)
{
    int64_t q = x / w;
    return q - ((x % w != 0) & ((x < 0) != (w < 0)));
}

/* ---- the context ---- */
struct weir_tinstr;
typedef struct {
    int (*init)(struct weir_tinstr *t, char *err, size_t errlen);
    int (*feed)(struct weir_tinstr *t, const weir_tag *ev, size_t n); /* gated, sorted */
    int (*finish)(struct weir_tinstr *t);
    void (*seal)(struct weir_tinstr *t);           /* may be NULL */
    int64_t (*reach)(const struct weir_tinstr *t); /* lead-out span in ps */
    void (*save)(const struct weir_tinstr *t, ti_wbuf *w);
    int (*load)(struct weir_tinstr *t, ti_rbuf *r);
    void (*free)(struct weir_tinstr *t);
} ti_ops;

struct weir_tinstr {
    weir_tinstr_config cfg;
    const ti_ops *ops;
    int sealed, finished;
    int have_last;
    int64_t last_raw; /* time of the last event fed */
    int64_t seal_raw; /* last_raw at the seal */
    int gate_on;      /* marker gate state */
    uint64_t events;
    uint64_t *hist; /* rows * nbins */
    size_t rows, nbins;
    uint64_t extra[2];
    weir_tag *scratch; /* gate output */
    size_t scratch_cap;
    void *impl;
};

/* Delay configured for a channel (0 when none). */
int64_t ti_delay(const weir_tinstr_config *c, int16_t ch);
/* Allocates t->hist as rows x nbins zeros, followed by TI_HIST_SINK spare
 * counters that branch-free kernels increment instead of testing whether a
 * candidate pair is in range (instr_corr.c); they are never part of a
 * result. */
#define TI_HIST_SINK 64
int ti_hist_alloc(struct weir_tinstr *t, size_t rows, size_t nbins);

/* start-stop machinery, shared with the T2 lifetime (instr_startstop.c) */
int ti_ss_init(struct weir_tinstr *t, char *err, size_t errlen);
int ti_ss_feed(struct weir_tinstr *t, const weir_tag *ev, size_t n);
int ti_ss_finish(struct weir_tinstr *t);
void ti_ss_seal(struct weir_tinstr *t);
int64_t ti_ss_reach(const struct weir_tinstr *t);
void ti_ss_save(const struct weir_tinstr *t, ti_wbuf *w);
int ti_ss_load(struct weir_tinstr *t, ti_rbuf *r);
void ti_ss_free(struct weir_tinstr *t);

/* Fused decode + correlation over raw HydraHarp T2 records (instr_corr.c):
 * 1 when t (a correlation on its fast path, not sealed or finished, no
 * gate) can consume r's records directly. ti_corr_fused then decodes and
 * correlates up to max_records records from r's position (never past its
 * end limit), moving r on exactly as weir_tag_read would; the result is
 * the one weir_tinstr_feed gives. Returns the records consumed (0 at the
 * end), or WEIR_ERANGE when time runs backwards, with nothing counted from
 * that call. */
struct weir_tag_reader;
int ti_corr_fused_ok(const struct weir_tinstr *t, const struct weir_tag_reader *r);
long ti_corr_fused(struct weir_tinstr *t, struct weir_tag_reader *r, uint64_t max_records);

extern const ti_ops ti_corr_ops, ti_startstop_ops, ti_lifetime_ops, ti_coinc_ops, ti_count_ops;

#endif
