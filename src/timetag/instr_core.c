/* instr_core.c — the instrument context shared by every time-tag instrument.
 *
 * A weir_tinstr holds the configuration, the histogram and a kind-specific
 * state reached through an operations table (instr_corr.c, instr_startstop.c,
 * instr_lifetime.c, instr_coinc.c, instr_count.c). This file does what is
 * common: validation, the marker gate (events outside an open gate are
 * removed before the kind sees them), the seal that turns later events into
 * lead-out for section-parallel runs, merging, and the versioned binary
 * state format used by tasks: "WEIRTI" + u16 version, the configuration
 * field by field, the common counters and histogram, then the kind's own
 * pending buffers. Everything is little-endian fixed-width so a state file
 * moves between machines. */
#include "instr_impl.h"

#include "weir/error.h"

#include <errno.h>
#include <stdio.h>

#define TI_MAGIC "WEIRTI"
#define TI_VERSION 2 /* 2: the correlation keeps recent events, not pending ones */

/* ---- byte helpers ---- */

void ti_put(ti_wbuf *w, const void *src, size_t len)
{
    if (w->err) return;
    if (w->n + len > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + len)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->err = WEIR_ENOMEM;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, len);
    w->n += len;
}

void ti_put_u64(ti_wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    ti_put(w, b, 8);
}

void ti_put_i64(ti_wbuf *w, int64_t v)
{
    ti_put_u64(w, (uint64_t)v);
}

void ti_get(ti_rbuf *r, void *dst, size_t len)
{
    if (r->err || r->n - r->off < len) {
        r->err = WEIR_ETRUNCATED;
        memset(dst, 0, len);
        return;
    }
    memcpy(dst, r->p + r->off, len);
    r->off += len;
}

uint64_t ti_get_u64(ti_rbuf *r)
{
    uint8_t b[8];
    ti_get(r, b, 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

int64_t ti_get_i64(ti_rbuf *r)
{
    return (int64_t)ti_get_u64(r);
}

/* ---- sequences ---- */

int ti_seq_reserve(ti_seq *s, size_t more)
{
    if (s->n + more <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->n + more)
        cap *= 2;
    int64_t *v = realloc(s->v, cap * sizeof *v);
    if (!v) return WEIR_ENOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

void ti_seq_drop(ti_seq *s, uint64_t upto_abs)
{
    if (upto_abs <= s->base) return;
    size_t k = (size_t)(upto_abs - s->base);
    if (k > s->n) k = s->n;
    /* Compact only when at least half is dead, so the copying stays
     * amortised O(1) per element. */
    if (k < 4096 || k < s->n / 2) return;
    memmove(s->v, s->v + k, (s->n - k) * sizeof *s->v);
    s->n -= k;
    s->base += k;
}

void ti_seq_free(ti_seq *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

void ti_seq_save(ti_wbuf *w, const ti_seq *s)
{
    ti_put_u64(w, s->base);
    ti_put_u64(w, s->n);
    for (size_t i = 0; i < s->n; i++)
        ti_put_i64(w, s->v[i]);
}

int ti_seq_load(ti_rbuf *r, ti_seq *s)
{
    uint64_t base = ti_get_u64(r), n = ti_get_u64(r);
    if (r->err || n > (r->n - r->off) / 8) return WEIR_EFORMAT;
    if (ti_seq_reserve(s, (size_t)n)) return WEIR_ENOMEM;
    s->base = base;
    s->n = (size_t)n;
    for (size_t i = 0; i < s->n; i++)
        s->v[i] = ti_get_i64(r);
    return r->err ? WEIR_EFORMAT : 0;
}

/* ---- division ---- */

void ti_div_init(ti_div *d, uint64_t w)
{
    d->w = w;
    d->shift = -1;
    if ((w & (w - 1)) == 0) {
        d->shift = 0;
        while ((1ull << d->shift) < w)
            d->shift++;
    }
    d->magic = UINT64_MAX / w;
}

/* ---- config ---- */

int64_t ti_delay(const weir_tinstr_config *c, int16_t ch)
{
    for (unsigned i = 0; i < c->ndelays; i++)
        if (c->delays[i].channel == ch) return c->delays[i].ps;
    return 0;
}

int ti_hist_alloc(struct weir_tinstr *t, size_t rows, size_t nbins)
{
    free(t->hist);
    t->hist = NULL;
    t->rows = rows;
    t->nbins = nbins;
    if (rows * nbins == 0) return 0;
    t->hist = calloc(rows * nbins + TI_HIST_SINK, sizeof *t->hist);
    return t->hist ? 0 : WEIR_ENOMEM;
}

void weir_tinstr_config_init(weir_tinstr_config *c, weir_tinstr_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->start = c->stop = WEIR_TI_NOCH;
    for (int i = 0; i < WEIR_TI_MAXCH; i++)
        c->channels[i] = WEIR_TI_NOCH;
    c->bin_ps = 16;
    c->nbins = 10000;
    c->gate_open = c->gate_close = WEIR_TI_NOCH;
    c->eta_clock = 100;
    c->micro_ps = 1;
    c->window_ps = 1000;
    if (kind == WEIR_TI_LIFETIME) c->bin_ps = 1;
    if (kind == WEIR_TI_COUNT) {
        c->bin_ps = 1000000000000ll;
        c->nbins = 0;
    }
}

static const ti_ops *ops_for(weir_tinstr_kind k)
{
    switch (k) {
    case WEIR_TI_CORR:
        return &ti_corr_ops;
    case WEIR_TI_STARTSTOP:
        return &ti_startstop_ops;
    case WEIR_TI_LIFETIME:
        return &ti_lifetime_ops;
    case WEIR_TI_COINC:
        return &ti_coinc_ops;
    case WEIR_TI_COUNT:
        return &ti_count_ops;
    }
    return NULL;
}

static const char *kind_name(weir_tinstr_kind k)
{
    switch (k) {
    case WEIR_TI_CORR:
        return "corr";
    case WEIR_TI_STARTSTOP:
        return "startstop";
    case WEIR_TI_LIFETIME:
        return "lifetime";
    case WEIR_TI_COINC:
        return "coinc";
    case WEIR_TI_COUNT:
        return "count";
    }
    return "?";
}

static int make(const weir_tinstr_config *cfg, weir_tinstr **out, char *err, size_t errlen)
{
    *out = NULL;
    const ti_ops *ops = ops_for(cfg->kind);
    if (!ops) {
        snprintf(err, errlen, "unknown instrument kind %d", (int)cfg->kind);
        return WEIR_EINVAL;
    }
    if (cfg->bin_ps <= 0) {
        snprintf(err, errlen, "bin width must be positive (got %lld)", (long long)cfg->bin_ps);
        return WEIR_EPARAM;
    }
    if (cfg->nchannels > WEIR_TI_MAXCH || cfg->ndelays > WEIR_TI_MAXCH) {
        snprintf(err, errlen, "at most %d channels and delays", WEIR_TI_MAXCH);
        return WEIR_EPARAM;
    }
    if ((cfg->gate_open == WEIR_TI_NOCH) != (cfg->gate_close == WEIR_TI_NOCH)) {
        snprintf(err, errlen, "a marker gate needs both an open and a close marker");
        return WEIR_EPARAM;
    }
    weir_tinstr *t = calloc(1, sizeof *t);
    if (!t) return WEIR_ENOMEM;
    t->cfg = *cfg;
    t->cfg.name[sizeof t->cfg.name - 1] = 0;
    if (!t->cfg.name[0]) snprintf(t->cfg.name, sizeof t->cfg.name, "%s", kind_name(cfg->kind));
    if (t->cfg.eta_clock < 2) t->cfg.eta_clock = 100;
    t->ops = ops;
    t->last_raw = INT64_MIN;
    int rc = ops->init(t, err, errlen);
    if (rc) {
        weir_tinstr_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int weir_tinstr_create(const weir_tinstr_config *cfg, weir_tinstr **out, char *err, size_t errlen)
{
    return make(cfg, out, err, errlen);
}

void weir_tinstr_free(weir_tinstr *t)
{
    if (!t) return;
    if (t->ops && t->ops->free) t->ops->free(t);
    free(t->hist);
    free(t->scratch);
    free(t);
}

const weir_tinstr_config *weir_tinstr_get_config(const weir_tinstr *t)
{
    return &t->cfg;
}

/* Removes events outside the marker gate; the markers themselves go too. */
static const weir_tag *gate(weir_tinstr *t, const weir_tag *ev, size_t *n)
{
    if (t->cfg.gate_open == WEIR_TI_NOCH) return ev;
    if (t->scratch_cap < *n) {
        weir_tag *s = realloc(t->scratch, *n * sizeof *s);
        if (!s) return NULL;
        t->scratch = s;
        t->scratch_cap = *n;
    }
    size_t m = 0;
    for (size_t i = 0; i < *n; i++) {
        if (ev[i].kind == WEIR_TAG_MARKER) {
            if (ev[i].channel == t->cfg.gate_close) t->gate_on = 0;
            if (ev[i].channel == t->cfg.gate_open) t->gate_on = 1;
            continue;
        }
        if (t->gate_on) t->scratch[m++] = ev[i];
    }
    *n = m;
    return t->scratch;
}

int weir_tinstr_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    if (t->finished) return WEIR_EINVAL;
    if (n == 0) return 0;
    int64_t first = ev[0].time, last = ev[n - 1].time;
    if (!t->cfg.eta_compat && t->have_last && first < t->last_raw) return WEIR_ERANGE;
    const weir_tag *g = gate(t, ev, &n);
    if (!g) return WEIR_ENOMEM;
    int rc = n ? t->ops->feed(t, g, n) : 0;
    if (rc) return rc;
    /* An empty gated chunk still moves time on: the kinds learn it through
     * last_raw on their next feed or at finish. */
    if (!t->cfg.eta_compat || !t->have_last || last > t->last_raw) t->last_raw = last;
    (void)first;
    t->have_last = 1;
    return 0;
}

int weir_tinstr_seal(weir_tinstr *t)
{
    if (t->cfg.eta_compat) return WEIR_EUNSUPPORTED;
    if (t->finished) return WEIR_EINVAL;
    t->sealed = 1;
    t->seal_raw = t->last_raw;
    if (t->ops->seal) t->ops->seal(t);
    return 0;
}

int weir_tinstr_wants_more(const weir_tinstr *t, int64_t t_next)
{
    if (!t->sealed) return 1;
    if (!t->have_last) return 0; /* nothing owned: nothing to pair */
    int64_t reach = t->ops->reach(t);
    return t_next <= t->seal_raw + reach;
}

int weir_tinstr_finish(weir_tinstr *t)
{
    if (t->finished) return 0;
    int rc = t->ops->finish(t);
    if (rc) return rc;
    t->finished = 1;
    return 0;
}

static int same_config(const weir_tinstr_config *a, const weir_tinstr_config *b)
{
    return a->kind == b->kind && a->start == b->start && a->stop == b->stop &&
           a->bin_ps == b->bin_ps && a->lo_ps == b->lo_ps && a->nbins == b->nbins &&
           a->nchannels == b->nchannels && a->window_ps == b->window_ps &&
           a->lifetime_micro == b->lifetime_micro && a->eta_compat == b->eta_compat &&
           !memcmp(a->channels, b->channels, sizeof a->channels);
}

int weir_tinstr_merge(weir_tinstr *dst, const weir_tinstr *src)
{
    if (!same_config(&dst->cfg, &src->cfg) || dst->rows != src->rows) return WEIR_EINVAL;
    if (src->nbins > dst->nbins) { /* growing count traces */
        uint64_t *h = calloc(dst->rows * src->nbins, sizeof *h);
        if (!h) return WEIR_ENOMEM;
        for (size_t r = 0; r < dst->rows; r++)
            if (dst->nbins) memcpy(h + r * src->nbins, dst->hist + r * dst->nbins, dst->nbins * 8);
        free(dst->hist);
        dst->hist = h;
        dst->nbins = src->nbins;
    }
    for (size_t r = 0; r < src->rows; r++)
        for (size_t i = 0; i < src->nbins; i++)
            dst->hist[r * dst->nbins + i] += src->hist[r * src->nbins + i];
    dst->events += src->events;
    dst->extra[0] += src->extra[0];
    dst->extra[1] += src->extra[1];
    return 0;
}

void weir_tinstr_get_result(const weir_tinstr *t, weir_tinstr_result *r)
{
    memset(r, 0, sizeof *r);
    r->name = t->cfg.name;
    r->counts = t->hist;
    r->rows = t->rows;
    r->nbins = t->nbins;
    r->lo = t->cfg.lo_ps;
    r->bin = t->cfg.bin_ps;
    r->unit = "ps";
    r->unit_ps = 1;
    r->quantity = "delay";
    if (t->cfg.kind == WEIR_TI_LIFETIME && t->cfg.lifetime_micro) {
        r->unit = "micro bin";
        r->unit_ps = t->cfg.micro_ps;
        r->quantity = "micro-time";
    }
    if (t->cfg.kind == WEIR_TI_COUNT) r->quantity = "time";
    if (t->cfg.kind == WEIR_TI_COINC) r->quantity = "coincidences";
    r->events = t->events;
    r->extra[0] = t->extra[0];
    r->extra[1] = t->extra[1];
}

/* ---- state files ---- */

static void save_config(ti_wbuf *w, const weir_tinstr_config *c)
{
    ti_put_i64(w, c->kind);
    ti_put(w, c->name, sizeof c->name);
    ti_put_i64(w, c->start);
    ti_put_i64(w, c->stop);
    ti_put_u64(w, c->nchannels);
    for (int i = 0; i < WEIR_TI_MAXCH; i++)
        ti_put_i64(w, c->channels[i]);
    ti_put_u64(w, c->ndelays);
    for (int i = 0; i < WEIR_TI_MAXCH; i++) {
        ti_put_i64(w, c->delays[i].channel);
        ti_put_i64(w, c->delays[i].ps);
    }
    ti_put_i64(w, c->bin_ps);
    ti_put_u64(w, c->nbins);
    ti_put_i64(w, c->lo_ps);
    ti_put_i64(w, c->window_ps);
    ti_put_i64(w, c->lifetime_micro);
    ti_put(w, &c->micro_ps, 8);
    ti_put_i64(w, c->gate_open);
    ti_put_i64(w, c->gate_close);
    ti_put_i64(w, c->eta_compat);
    ti_put_u64(w, c->eta_clock);
}

static void load_config(ti_rbuf *r, weir_tinstr_config *c)
{
    memset(c, 0, sizeof *c);
    c->kind = (weir_tinstr_kind)ti_get_i64(r);
    ti_get(r, c->name, sizeof c->name);
    c->name[sizeof c->name - 1] = 0;
    c->start = (int16_t)ti_get_i64(r);
    c->stop = (int16_t)ti_get_i64(r);
    c->nchannels = (unsigned)ti_get_u64(r);
    for (int i = 0; i < WEIR_TI_MAXCH; i++)
        c->channels[i] = (int16_t)ti_get_i64(r);
    c->ndelays = (unsigned)ti_get_u64(r);
    for (int i = 0; i < WEIR_TI_MAXCH; i++) {
        c->delays[i].channel = (int16_t)ti_get_i64(r);
        c->delays[i].ps = ti_get_i64(r);
    }
    c->bin_ps = ti_get_i64(r);
    c->nbins = (uint32_t)ti_get_u64(r);
    c->lo_ps = ti_get_i64(r);
    c->window_ps = ti_get_i64(r);
    c->lifetime_micro = (int)ti_get_i64(r);
    ti_get(r, &c->micro_ps, 8);
    c->gate_open = (int16_t)ti_get_i64(r);
    c->gate_close = (int16_t)ti_get_i64(r);
    c->eta_compat = (int)ti_get_i64(r);
    c->eta_clock = (uint32_t)ti_get_u64(r);
}

int weir_tinstr_save(const weir_tinstr *t, uint8_t **buf, size_t *len)
{
    ti_wbuf w = {0};
    uint8_t head[8] = {'W', 'E', 'I', 'R', 'T', 'I', TI_VERSION & 0xff, TI_VERSION >> 8};
    ti_put(&w, head, 8);
    save_config(&w, &t->cfg);
    ti_put_i64(&w, t->sealed);
    ti_put_i64(&w, t->finished);
    ti_put_i64(&w, t->have_last);
    ti_put_i64(&w, t->last_raw);
    ti_put_i64(&w, t->seal_raw);
    ti_put_i64(&w, t->gate_on);
    ti_put_u64(&w, t->events);
    ti_put_u64(&w, t->extra[0]);
    ti_put_u64(&w, t->extra[1]);
    ti_put_u64(&w, t->rows);
    ti_put_u64(&w, t->nbins);
    for (size_t i = 0; i < t->rows * t->nbins; i++)
        ti_put_u64(&w, t->hist[i]);
    t->ops->save(t, &w);
    if (w.err) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.n;
    return 0;
}

int weir_tinstr_load(const uint8_t *buf, size_t len, weir_tinstr **out, char *err, size_t errlen)
{
    *out = NULL;
    ti_rbuf r = {buf, len, 0, 0};
    uint8_t head[8];
    ti_get(&r, head, 8);
    if (r.err || memcmp(head, TI_MAGIC, 6)) {
        snprintf(err, errlen, "not a weir instrument state (no WEIRTI magic at offset 0)");
        return WEIR_EFORMAT;
    }
    unsigned ver = head[6] | (unsigned)head[7] << 8;
    if (ver != TI_VERSION) {
        snprintf(err, errlen, "instrument state version %u, this weir reads version %d", ver,
                 TI_VERSION);
        return WEIR_EUNSUPPORTED;
    }
    weir_tinstr_config c;
    load_config(&r, &c);
    if (r.err) goto truncated;
    weir_tinstr *t = NULL;
    int rc = make(&c, &t, err, errlen);
    if (rc) return rc;
    t->sealed = (int)ti_get_i64(&r);
    t->finished = (int)ti_get_i64(&r);
    t->have_last = (int)ti_get_i64(&r);
    t->last_raw = ti_get_i64(&r);
    t->seal_raw = ti_get_i64(&r);
    t->gate_on = (int)ti_get_i64(&r);
    t->events = ti_get_u64(&r);
    t->extra[0] = ti_get_u64(&r);
    t->extra[1] = ti_get_u64(&r);
    uint64_t rows = ti_get_u64(&r), nbins = ti_get_u64(&r);
    if (r.err || (nbins && rows > (len - r.off) / 8 / nbins)) {
        weir_tinstr_free(t);
        goto truncated;
    }
    if (rows != t->rows || nbins != t->nbins) {
        if (ti_hist_alloc(t, (size_t)rows, (size_t)nbins)) {
            weir_tinstr_free(t);
            return WEIR_ENOMEM;
        }
    }
    for (size_t i = 0; i < t->rows * t->nbins; i++)
        t->hist[i] = ti_get_u64(&r);
    rc = r.err ? WEIR_EFORMAT : t->ops->load(t, &r);
    if (rc || r.err) {
        weir_tinstr_free(t);
        if (rc == WEIR_ENOMEM) return rc;
        goto truncated;
    }
    *out = t;
    return 0;
truncated:
    snprintf(err, errlen, "instrument state is truncated or corrupt near byte %zu of %zu", r.off,
             len);
    return WEIR_EFORMAT;
}

int weir_tinstr_save_file(const weir_tinstr *t, const char *path, char *err, size_t errlen)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = weir_tinstr_save(t, &b, &n);
    if (rc) {
        snprintf(err, errlen, "cannot serialise the instrument state: %s", weir_strerror(rc));
        return rc;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(b);
        return WEIR_EIO;
    }
    size_t wr = fwrite(b, 1, n, f);
    int bad = fclose(f) != 0 || wr != n;
    free(b);
    if (bad) {
        snprintf(err, errlen, "%s: write failed", path);
        return WEIR_EIO;
    }
    return 0;
}

int weir_tinstr_load_file(const char *path, weir_tinstr **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
    }
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *p = realloc(b, cap);
            if (!p) {
                free(b);
                fclose(f);
                return WEIR_ENOMEM;
            }
            b = p;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    int rc = weir_tinstr_load(b, n, out, err, errlen);
    free(b);
    return rc;
}
