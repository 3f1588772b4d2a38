/* instr_lifetime.c — fluorescence lifetime (TCSPC decay) histograms.
 *
 * Two sources of the photon delay after excitation:
 *  - T3 files (lifetime_micro = 1): the micro-time of every photon on the
 *    chosen channel (every photon channel when stop is WEIR_TI_NOCH),
 *    binned in micro-time units: bin = floor((micro - lo) / bin). The axis
 *    unit is one micro bin (micro_ps picoseconds), so no rounding happens.
 *  - T2 files (lifetime_micro = 0): the delay of each photon (stop) after
 *    the most recent sync event (start) — start-stop without disarming,
 *    shared with instr_startstop.c.
 *
 * Micro mode has no pairing: each event counts on its own, so sections
 * simply ignore events fed after the seal. */
#include "instr_impl.h"

#include "weir/error.h"

#include <stdio.h>

static int lt_init(weir_tinstr *t, char *err, size_t errlen)
{
    if (!t->cfg.lifetime_micro) return ti_ss_init(t, err, errlen);
    if (t->cfg.nbins == 0) {
        snprintf(err, errlen, "a lifetime histogram needs at least one bin");
        return WEIR_EPARAM;
    }
    return ti_hist_alloc(t, 1, t->cfg.nbins);
}

static int lt_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    if (!t->cfg.lifetime_micro) return ti_ss_feed(t, ev, n);
    if (t->sealed) return 0;
    const int16_t ch = t->cfg.stop;
    const int64_t lo = t->cfg.lo_ps, w = t->cfg.bin_ps, nb = t->cfg.nbins;
    for (size_t i = 0; i < n; i++) {
        const weir_tag *e = &ev[i];
        if (e->kind != WEIR_TAG_PHOTON || e->micro < 0) continue;
        if (ch != WEIR_TI_NOCH && e->channel != ch) continue;
        t->events++;
        int64_t bin = ti_floordiv((int64_t)e->micro - lo, w);
        if (bin >= 0 && bin < nb) t->hist[bin]++;
    }
    return 0;
}

static int lt_finish(weir_tinstr *t)
{
    return t->cfg.lifetime_micro ? 0 : ti_ss_finish(t);
}

static void lt_seal(weir_tinstr *t)
{
    if (!t->cfg.lifetime_micro) ti_ss_seal(t);
}

static int64_t lt_reach(const weir_tinstr *t)
{
    return t->cfg.lifetime_micro ? -1 : ti_ss_reach(t);
}

static void lt_save(const weir_tinstr *t, ti_wbuf *w)
{
    if (!t->cfg.lifetime_micro) ti_ss_save(t, w);
}

static int lt_load(weir_tinstr *t, ti_rbuf *r)
{
    return t->cfg.lifetime_micro ? 0 : ti_ss_load(t, r);
}

static void lt_free(weir_tinstr *t)
{
    if (!t->cfg.lifetime_micro) ti_ss_free(t);
}

const ti_ops ti_lifetime_ops = {lt_init,  lt_feed, lt_finish, lt_seal,
                                lt_reach, lt_save, lt_load,   lt_free};
