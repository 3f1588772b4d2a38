/* clip.c — clips of a time-tag file, as ETA's clip_file / clips /
 * clips_list have them (reference/eta.md §2.1-2.2), with ETA's bugs fixed.
 *
 * A clip is a record range; weir_tag_clip_next positions the reader at its
 * first record with the exact overflow base (weir_tag_seek_record) and
 * limits it to its end, so weir_tag_read returns exactly its events and a
 * following clip continues seamlessly. read_events counts records: N > 0,
 * 0 = the rest, negative = the rest minus |N|. Following a growing file
 * really re-stats it while waiting (ETA measures the size once and so can
 * never see the file grow), and only complete records are taken (ETA's
 * windows may end inside a record). Windows by index replace ETA's
 * keep_indexes, and weir_tag_sections (reader.c) replaces clips_list
 * without losing the tail of the file or the overflow base. */
#include "tags_internal.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t avail_from(const weir_tag_reader *r, uint64_t start)
{
    return r->info.nrecords > start ? r->info.nrecords - start : 0;
}

int weir_tag_clip_next(weir_tag_reader *r, const weir_tag_clip_opts *o, weir_tag_clip *out,
                       char *err, size_t errlen)
{
    if (!r || !out) return WEIR_EINVAL;
    weir_tag_clip_opts def = {0};
    if (!o) o = &def;
    uint64_t nrec;
    int rc = weir_tag_refresh(r, &nrec, err, errlen);
    if (rc) return rc;
    uint64_t start;
    if (o->seek_event >= 0)
        start = (uint64_t)o->seek_event;
    else
        start = r->end != UINT64_MAX ? r->end : r->pos.record;
    uint64_t avail = avail_from(r, start);
    int64_t want;
    if (o->read_events > 0) {
        want = o->read_events;
    } else {
        want = (int64_t)avail + o->read_events;
        if (want <= 0) want = 1; /* as ETA: wait for at least one record */
    }
    if (o->wait_timeout_s > 0 && avail < (uint64_t)want) {
        double t0 = now_s();
        unsigned ms = o->poll_ms ? o->poll_ms : 10;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (avail < (uint64_t)want && now_s() - t0 < o->wait_timeout_s) {
            nanosleep(&ts, NULL);
            if ((rc = weir_tag_refresh(r, &nrec, err, errlen))) return rc;
            avail = avail_from(r, start);
        }
    }
    uint64_t n;
    if (o->read_events > 0)
        n = avail < (uint64_t)want ? avail : (uint64_t)want;
    else if (o->read_events == 0)
        n = avail;
    else
        n = avail > (uint64_t)(-o->read_events) ? avail - (uint64_t)(-o->read_events) : 0;
    if (start > r->info.nrecords) {
        /* nothing there yet: an empty clip at start */
        out->first = out->end = start;
        return 0;
    }
    r->end = UINT64_MAX;
    rc = weir_tag_seek_record(r, start, err, errlen);
    if (rc) return rc;
    out->first = start;
    out->end = start + n;
    r->end = out->end;
    return 0;
}

static int read_all(weir_tag_reader *r, uint64_t nrec, weir_tag **events, size_t *n, char *err,
                    size_t errlen)
{
    *events = NULL;
    *n = 0;
    size_t cap = nrec ? (size_t)nrec : 1;
    weir_tag *ev = malloc(cap * sizeof *ev);
    if (!ev) return WEIR_ENOMEM;
    size_t got = 0;
    for (;;) {
        long k = weir_tag_read(r, ev + got, cap - got, err, errlen);
        if (k < 0) {
            free(ev);
            return (int)k;
        }
        if (k == 0) break;
        got += (size_t)k;
        if (got == cap) break; /* one event per record at most */
    }
    *events = ev;
    *n = got;
    return 0;
}

int weir_tag_clip_read(weir_tag_reader *r, const weir_tag_clip_opts *o, weir_tag **events,
                       size_t *n, char *err, size_t errlen)
{
    weir_tag_clip c;
    int rc = weir_tag_clip_next(r, o, &c, err, errlen);
    if (rc) return rc;
    return read_all(r, c.end - c.first, events, n, err, errlen);
}

int weir_tag_windows_next(weir_tag_reader *r, weir_tag_windows *w, weir_tag_clip *out, char *err,
                          size_t errlen)
{
    if (!r || !w || !out || !w->read_events) return WEIR_EINVAL;
    for (;;) {
        if (w->keep && w->next >= w->nkeep) return 0;
        uint64_t idx = w->keep ? w->keep[w->next] : w->next;
        w->next++;
        if (idx > (UINT64_MAX - w->start) / w->read_events) continue;
        uint64_t first = w->start + idx * w->read_events;
        if (first >= r->info.nrecords) {
            if (!w->keep) return 0;
            continue;
        }
        uint64_t end = first + w->read_events;
        if (end > r->info.nrecords || end < first) end = r->info.nrecords;
        r->end = UINT64_MAX;
        int rc = weir_tag_seek_record(r, first, err, errlen);
        if (rc) return rc;
        r->end = end;
        out->first = first;
        out->end = end;
        return 1;
    }
}

size_t weir_tag_keep_time_windows(weir_tag *events, size_t n, const int64_t *t0, const int64_t *t1,
                                  size_t nwin)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = events[i].time;
        for (size_t j = 0; j < nwin; j++)
            if (t >= t0[j] && t < t1[j]) {
                events[k++] = events[i];
                break;
            }
    }
    return k;
}
