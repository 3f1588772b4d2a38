/* instr_count.c — count-rate time trace: events per channel per time bin.
 *
 * One row per traced channel; bin = floor((time + delay - lo) / bin). With
 * nbins = 0 the trace grows to cover the latest event (events before lo
 * are counted in `extra[0]` as out of range), otherwise events outside the
 * fixed range are counted there. Each event counts on its own, so section
 * workers just ignore events fed after the seal. */
#include "instr_impl.h"

#include "weir/error.h"

#include <stdio.h>

typedef struct {
    int64_t delay[WEIR_TI_MAXCH];
    int grow;
} counter;

static int cnt_init(weir_tinstr *t, char *err, size_t errlen)
{
    const weir_tinstr_config *c = &t->cfg;
    if (c->nchannels == 0) {
        snprintf(err, errlen, "a count-rate trace needs at least one channel");
        return WEIR_EPARAM;
    }
    counter *k = calloc(1, sizeof *k);
    if (!k) return WEIR_ENOMEM;
    t->impl = k;
    for (unsigned i = 0; i < c->nchannels; i++)
        k->delay[i] = ti_delay(c, c->channels[i]);
    k->grow = c->nbins == 0;
    return ti_hist_alloc(t, c->nchannels, c->nbins);
}

static int grow_to(weir_tinstr *t, size_t nbins)
{
    size_t nb = t->nbins ? t->nbins : 64;
    while (nb < nbins)
        nb *= 2;
    uint64_t *h = calloc(t->rows * nb, sizeof *h);
    if (!h) return WEIR_ENOMEM;
    for (size_t r = 0; r < t->rows && t->nbins; r++)
        memcpy(h + r * nb, t->hist + r * t->nbins, t->nbins * sizeof *h);
    free(t->hist);
    t->hist = h;
    t->nbins = nb;
    return 0;
}

static int cnt_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    counter *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    if (t->sealed) return 0;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        if (e->kind == WEIR_TAG_MARKER) continue;
        for (unsigned r = 0; r < c->nchannels; r++) {
            if (e->channel != c->channels[r]) continue;
            t->events++;
            int64_t bin = ti_floordiv(e->time + k->delay[r] - c->lo_ps, c->bin_ps);
            if (bin >= 0 && k->grow && (uint64_t)bin >= t->nbins) {
                if ((uint64_t)bin > (1ull << 32)) return WEIR_ERANGE;
                int rc = grow_to(t, (size_t)bin + 1);
                if (rc) return rc;
            }
            if (bin >= 0 && (uint64_t)bin < t->nbins)
                t->hist[r * t->nbins + (size_t)bin]++;
            else
                t->extra[0]++;
        }
    }
    return 0;
}

static int cnt_finish(weir_tinstr *t)
{
    (void)t;
    return 0;
}

static int64_t cnt_reach(const weir_tinstr *t)
{
    (void)t;
    return -1;
}

static void cnt_save(const weir_tinstr *t, ti_wbuf *w)
{
    (void)t;
    (void)w;
}

static int cnt_load(weir_tinstr *t, ti_rbuf *r)
{
    (void)t;
    (void)r;
    return 0;
}

static void cnt_free(weir_tinstr *t)
{
    free(t->impl);
}

const ti_ops ti_count_ops = {cnt_init,  cnt_feed, cnt_finish, NULL,
                             cnt_reach, cnt_save, cnt_load,   cnt_free};
