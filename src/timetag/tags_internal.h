/* tags_internal.h — what the time-tag readers share (src/timetag/).
 *
 * reader.c owns the file mapping, detection, dispatch, seeking and the
 * sections; each format file (ptu.c, pq_legacy.c, swabian.c, qutag.c,
 * bh_spc.c, et_a033.c) provides one weir_tag_fmt table: a header parser
 * that fills r->info and the format state, a record decoder and an
 * encoder. Every decoder turns one record into at most one event and stops
 * as soon as `cap` events are written, so the position after a read of one
 * event is exactly the record after that event's record. */
#ifndef WEIR_TAGS_INTERNAL_H
#define WEIR_TAGS_INTERNAL_H

#include "weir/tags.h"

#include <stdarg.h>
#include <stdio.h>

#define WEIR_TAG_MAX_FMT_STATE 8

struct weir_tag_reader {
    const uint8_t *data; /* the mapping (or the caller's memory) */
    size_t len;
    void *map; /* our mmap, NULL for memory */
    size_t maplen;
    int fd;     /* -1 for memory */
    char *path; /* for messages */
    const struct weir_tag_fmt *fmt;
    weir_tag_info info;
    weir_tag_counts counts;
    weir_tag_pos pos;
    uint64_t end;
    /* header tags and their owned payload copies (strings converted) */
    weir_tag_header_tag *tags;
    size_t ntags, tagcap;
    void **owned;
    size_t nowned, ownedcap;
    char format_name[96];
    /* format state set by the header parser */
    uint32_t rectype;
    int64_t wrap; /* ticks per overflow */
    int64_t st[WEIR_TAG_MAX_FMT_STATE];
};

typedef struct weir_tag_fmt {
    weir_tag_format id;
    const char *name;
    /* fills r->info (header_bytes, record_bytes, resolutions …); may add tags */
    int (*open)(weir_tag_reader *r, char *err, size_t errlen);
    /* decodes records [r->pos.record, lim) into out, at most cap events */
    long (*decode)(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap);
    int (*encode)(const weir_tag_encode_opts *o, const weir_tag *ev, size_t n, FILE *f, char *err,
                  size_t errlen);
} weir_tag_fmt;

extern const weir_tag_fmt weir_tagfmt_ptu, weir_tagfmt_pq_legacy, weir_tagfmt_swabian,
    weir_tagfmt_qutag, weir_tagfmt_qutag_raw, weir_tagfmt_qutag_comp, weir_tagfmt_bh_spc,
    weir_tagfmt_et_a033;

/* PicoQuant record layouts (r->st[0]; r->st[1] = 1 for HydraHarp V1 wraps),
 * decoded by ptu.c for PTU and legacy files alike */
enum { L_PHT2 = 1, L_PHT3, L_HHT2, L_HHT3, L_T3R };
long tagi_ptu_decode(weir_tag_reader *r, uint64_t lim, weir_tag *out, size_t cap);

/* err helpers: "FILE: offset N: message" */
void tagi_err(const weir_tag_reader *r, uint64_t off, char *err, size_t errlen, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
void tagi_errpath(const char *path, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* header tags: adds one (copies `data` of len bytes when non-NULL, adding a NUL) */
weir_tag_header_tag *tagi_add_tag(weir_tag_reader *r, const char *name, int32_t index,
                                  weir_tag_value_type type, const void *data, uint64_t len,
                                  uint64_t offset);
const weir_tag_header_tag *tagi_find(const weir_tag_reader *r, const char *name);

/* little-endian loads */
static inline uint32_t tagi_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t tagi_u64(const uint8_t *p)
{
    return (uint64_t)tagi_u32(p) | (uint64_t)tagi_u32(p + 4) << 32;
}
static inline uint16_t tagi_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline void tagi_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}
static inline void tagi_put64(uint8_t *p, uint64_t v)
{
    tagi_put32(p, (uint32_t)v), tagi_put32(p + 4, (uint32_t)(v >> 32));
}

/* Two's-complement wrapping arithmetic: a damaged file can hold overflow
 * counts whose sum leaves int64 (an 8000-record HydraHarp file can reach
 * 2^63 ps); its times are then garbage, but never undefined behaviour. */
static inline int64_t tagi_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t tagi_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

/* ticks * res, rounded to nearest (exact, 128-bit) */
static inline int64_t tagi_scale(int64_t ticks, weir_tag_res res)
{
    if (res.den == 1) return tagi_mul(ticks, res.num);
    __int128 x = (__int128)ticks * res.num;
    __int128 h = res.den / 2;
    return (int64_t)(x >= 0 ? (x + h) / res.den : -((-x + h) / res.den));
}
/* sync * tick + micro * mres, rounded once (exact) */
int64_t tagi_scale2(int64_t sync, weir_tag_res tick, int64_t micro, weir_tag_res mres);
/* time (ps) to ticks: time / res rounded to nearest */
int64_t tagi_unscale(int64_t ps, weir_tag_res res);

/* ps per tick from seconds as a file states them: the shortest decimal that
 * reads back as the same double, as an exact fraction. {0,1} for s <= 0. */
weir_tag_res tagi_res_from_seconds(double s);
weir_tag_res tagi_res_mul(weir_tag_res a, int64_t num, int64_t den);

/* marker bits to the ETA channel (lowest set bit) */
static inline int16_t tagi_marker_channel(unsigned bits)
{
    return bits ? (int16_t)__builtin_ctz(bits) : 0;
}

/* Raw HydraHarp-style T2 records for fused consumers (the correlation in
 * instr_corr.c decodes them inside its own loop instead of going through
 * 16-byte weir_tag events). tagi_hht2_get returns 1 and fills v when r
 * reads HydraHarp/TimeHarp 260/MultiHarp T2 records (PTU or legacy) with a
 * whole number of ps per tick, else 0. The consumer decodes exactly as
 * dec_hht2 in ptu.c does (time = (tick_base + low 25 bits) * tick_ps;
 * overflow records add `wrap` ticks times their count, 1 on V1) and hands
 * the new position and its counts back with tagi_hht2_commit. */
typedef struct {
    const uint8_t *rec; /* record `first` */
    uint64_t first, lim;
    int64_t tick_base; /* ticks before `first` */
    int64_t tick_ps;
    int64_t wrap; /* ticks per overflow */
    int v1;       /* HydraHarp V1: every overflow record is one wrap */
} tagi_hht2_view;
int tagi_hht2_get(const weir_tag_reader *r, tagi_hht2_view *v);
void tagi_hht2_commit(weir_tag_reader *r, uint64_t record, int64_t tick_base,
                      const weir_tag_counts *add);

#endif
