/* instr_coinc.c — coincidence counting across two or more channels.
 *
 * channels[0] is the reference. A reference event r (delayed time r') is a
 * coincidence when every other channel has at least one event with delayed
 * time in [r' - window, r' + window]. Results: extra[0] = coincidences,
 * extra[1] = reference events, and a one-bin histogram holding the
 * coincidences. Each channel is a sorted sequence with a pointer to its
 * first event not older than r' - window (monotone in r); a reference event
 * is decided once every other stream is known beyond r' + window.
 *
 * Sections are not supported (a reference event near a section start needs
 * events from before it); the run driver keeps this instrument serial. */
#include "instr_impl.h"

#include "weir/error.h"

#include <stdio.h>

typedef struct {
    ti_seq s[WEIR_TI_MAXCH];
    uint64_t p[WEIR_TI_MAXCH]; /* s[0]: next reference; others: window start */
    int64_t d[WEIR_TI_MAXCH];
    int64_t last; /* raw time of the last event fed */
    int have;
} coinc;

static int co_init(weir_tinstr *t, char *err, size_t errlen)
{
    const weir_tinstr_config *c = &t->cfg;
    if (c->nchannels < 2 || c->window_ps < 0) {
        snprintf(err, errlen, "coincidences need 2..%d channels and a window >= 0", WEIR_TI_MAXCH);
        return WEIR_EPARAM;
    }
    for (unsigned i = 0; i < c->nchannels; i++)
        for (unsigned j = 0; j < i; j++)
            if (c->channels[i] == c->channels[j]) {
                snprintf(err, errlen, "coincidence channel %d listed twice", c->channels[i]);
                return WEIR_EPARAM;
            }
    coinc *k = calloc(1, sizeof *k);
    if (!k) return WEIR_ENOMEM;
    t->impl = k;
    for (unsigned i = 0; i < c->nchannels; i++)
        k->d[i] = ti_delay(c, c->channels[i]);
    return ti_hist_alloc(t, 1, 1);
}

static void co_process(weir_tinstr *t, int final)
{
    coinc *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    const int64_t W = c->window_ps;
    while (k->p[0] < ti_seq_end(&k->s[0])) {
        const int64_t r = ti_seq_at(&k->s[0], k->p[0]);
        if (!final) {
            int ready = 1;
            for (unsigned i = 1; i < c->nchannels; i++)
                if (!k->have || r + W >= k->last + k->d[i]) ready = 0;
            if (!ready) break;
        }
        int all = 1;
        for (unsigned i = 1; i < c->nchannels; i++) {
            ti_seq *s = &k->s[i];
            const uint64_t end = ti_seq_end(s);
            while (k->p[i] < end && ti_seq_at(s, k->p[i]) < r - W)
                k->p[i]++;
            if (!(k->p[i] < end && ti_seq_at(s, k->p[i]) <= r + W)) all = 0;
        }
        t->extra[1]++;
        if (all) {
            t->extra[0]++;
            t->hist[0]++;
        }
        k->p[0]++;
    }
    for (unsigned i = 0; i < c->nchannels; i++)
        ti_seq_drop(&k->s[i], k->p[i]);
}

static int co_feed(weir_tinstr *t, const weir_tag *ev, size_t n)
{
    coinc *k = t->impl;
    const weir_tinstr_config *c = &t->cfg;
    for (unsigned i = 0; i < c->nchannels; i++)
        if (ti_seq_reserve(&k->s[i], n)) return WEIR_ENOMEM;
    int64_t prev = ev[0].time;
    for (size_t j = 0; j < n; j++) {
        const weir_tag *e = &ev[j];
        if (e->time < prev) return WEIR_ERANGE;
        prev = e->time;
        if (e->kind == WEIR_TAG_MARKER) continue;
        for (unsigned i = 0; i < c->nchannels; i++)
            if (e->channel == c->channels[i]) {
                k->s[i].v[k->s[i].n++] = e->time + k->d[i];
                t->events++;
            }
    }
    k->last = ev[n - 1].time;
    k->have = 1;
    co_process(t, 0);
    return 0;
}

static int co_finish(weir_tinstr *t)
{
    co_process(t, 1);
    return 0;
}

static int64_t co_reach(const weir_tinstr *t)
{
    (void)t;
    return INT64_MAX / 4;
}

static void co_save(const weir_tinstr *t, ti_wbuf *w)
{
    const coinc *k = t->impl;
    for (unsigned i = 0; i < t->cfg.nchannels; i++) {
        ti_seq_save(w, &k->s[i]);
        ti_put_u64(w, k->p[i]);
    }
    ti_put_i64(w, k->last);
    ti_put_i64(w, k->have);
}

static int co_load(weir_tinstr *t, ti_rbuf *r)
{
    coinc *k = t->impl;
    for (unsigned i = 0; i < t->cfg.nchannels; i++) {
        int rc = ti_seq_load(r, &k->s[i]);
        if (rc) return rc;
        k->p[i] = ti_get_u64(r);
        if (k->p[i] < k->s[i].base || k->p[i] > ti_seq_end(&k->s[i])) return WEIR_EFORMAT;
    }
    k->last = ti_get_i64(r);
    k->have = (int)ti_get_i64(r);
    return r->err ? WEIR_EFORMAT : 0;
}

static void co_free(weir_tinstr *t)
{
    coinc *k = t->impl;
    if (!k) return;
    for (int i = 0; i < WEIR_TI_MAXCH; i++)
        ti_seq_free(&k->s[i]);
    free(k);
}

const ti_ops ti_coinc_ops = {co_init,  co_feed, co_finish, NULL,
                             co_reach, co_save, co_load,   co_free};
