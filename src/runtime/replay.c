/* replay.c — merging ingester dumps into one event stream (weir/replay.h).
 *
 * One cbors reader and one cached event per file. next() refills empty
 * slots, stops when a file has ended (dranspose's rule) unless draining,
 * picks the lowest cached event number and merges every cached event with
 * that number. When the replay stops early, the remaining items of the
 * other files are read (not processed) so the report can say exactly how
 * many events, and which numbers, were left over. */
#include "weir/replay.h"

#include "weir/cbors.h"
#include "weir/error.h"
#include "weir/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "replay"

typedef struct {
    weir_cbors_reader *rd;
    weir_event *cached;
    int ended;
    uint64_t left, left_min, left_max;
} input;

struct weir_replay {
    input *in;
    size_t n;
    int drain;
    int stopped; /* a file ended and we are not draining */
    int first_ended;
    uint64_t delivered, leftover, duplicates;
    int error;
    char errmsg[512];
};

int weir_replay_open(const char *const *files, size_t nfiles, int drain, weir_replay **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (!nfiles) {
        snprintf(err, errlen, "no input files");
        return WEIR_EINVAL;
    }
    weir_replay *r = calloc(1, sizeof *r);
    if (!r) return WEIR_ENOMEM;
    r->in = calloc(nfiles, sizeof *r->in);
    if (!r->in) {
        free(r);
        return WEIR_ENOMEM;
    }
    r->n = nfiles;
    r->drain = drain;
    r->first_ended = -1;
    for (size_t i = 0; i < nfiles; i++) {
        int rc = weir_cbors_open(files[i], &r->in[i].rd, err, errlen);
        if (rc) {
            weir_replay_close(r);
            return rc;
        }
        weir_cbors_kind k = weir_cbors_kind_of(r->in[i].rd);
        if (k == WEIR_CBORS_RAW) {
            snprintf(err, errlen,
                     "%s is a raw capture (arrays of ZMQ frames), not an ingester dump; "
                     "raw captures are served with 'weir sim', replay reads dumps",
                     files[i]);
            weir_replay_close(r);
            return WEIR_EFORMAT;
        }
    }
    *out = r;
    return WEIR_OK;
}

static void note_error(weir_replay *r, input *in, int rc)
{
    if (!r->error) {
        r->error = rc;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", weir_cbors_error(in->rd));
    }
    WEIR_LOGE(COMP, "%s", weir_cbors_error(in->rd));
}

/* Fills in->cached; marks the input ended at EOF or on error. */
static void refill(weir_replay *r, input *in)
{
    if (in->cached || in->ended) return;
    int rc = weir_cbors_next_event(in->rd, &in->cached);
    if (rc) note_error(r, in, rc);
    if (rc || !in->cached) {
        in->ended = 1;
        in->cached = NULL;
    }
}

/* Counts (and frees) what is left in every input after an early stop. */
static void count_leftovers(weir_replay *r)
{
    for (size_t i = 0; i < r->n; i++) {
        input *in = &r->in[i];
        for (;;) {
            refill(r, in);
            if (!in->cached) break;
            uint64_t num = in->cached->number;
            if (!in->left || num < in->left_min) in->left_min = num;
            if (!in->left || num > in->left_max) in->left_max = num;
            in->left++;
            r->leftover++;
            weir_event_free(in->cached);
            in->cached = NULL;
        }
    }
}

static int next(void *ud, weir_event **out)
{
    weir_replay *r = ud;
    *out = NULL;
    if (r->stopped) return WEIR_OK;
    size_t live = 0;
    for (size_t i = 0; i < r->n; i++) {
        refill(r, &r->in[i]);
        if (r->in[i].ended) {
            if (r->first_ended < 0) r->first_ended = (int)i;
        } else {
            live++;
        }
    }
    if (live == 0 || (live < r->n && !r->drain)) {
        r->stopped = 1;
        count_leftovers(r);
        return WEIR_OK;
    }
    size_t lo = SIZE_MAX;
    for (size_t i = 0; i < r->n; i++)
        if (r->in[i].cached &&
            (lo == SIZE_MAX || r->in[i].cached->number < r->in[lo].cached->number))
            lo = i;
    weir_event *ev = r->in[lo].cached;
    r->in[lo].cached = NULL;
    for (size_t i = lo + 1; i < r->n; i++) {
        input *in = &r->in[i];
        if (!in->cached || in->cached->number != ev->number) continue;
        size_t before = in->cached->nstreams;
        int rc = weir_event_merge(ev, in->cached);
        if (rc == WEIR_EDUPLICATE) {
            r->duplicates += in->cached->nstreams;
            WEIR_LOGW(COMP,
                      "event %" PRIu64 ": %zu stream(s) of %s also present in an earlier "
                      "file; dropped (dranspose refuses such events)",
                      ev->number, in->cached->nstreams, weir_cbors_name(in->rd));
        } else if (rc) {
            weir_event_free(ev);
            return rc;
        }
        (void)before;
        weir_event_free(in->cached);
        in->cached = NULL;
    }
    r->delivered++;
    *out = ev;
    return WEIR_OK;
}

static void progress(void *ud, uint64_t *done, uint64_t *total)
{
    weir_replay *r = ud;
    uint64_t d = 0, t = 0;
    for (size_t i = 0; i < r->n; i++) {
        d += weir_cbors_offset(r->in[i].rd);
        t += weir_cbors_size(r->in[i].rd);
    }
    *done = d;
    *total = t;
}

weir_source weir_replay_source(weir_replay *r)
{
    return (weir_source){.next = next, .progress = progress, .ud = r};
}

uint64_t weir_replay_delivered(const weir_replay *r)
{
    return r->delivered;
}

uint64_t weir_replay_leftover(const weir_replay *r)
{
    return r->leftover;
}

uint64_t weir_replay_duplicates(const weir_replay *r)
{
    return r->duplicates;
}

int weir_replay_error(const weir_replay *r, const char **msg)
{
    if (msg) *msg = r->errmsg;
    return r->error;
}

void weir_replay_report(const weir_replay *r, FILE *f)
{
    if (r->leftover && r->first_ended >= 0) {
        fprintf(f,
                "replay: %s ended first; %" PRIu64
                " event(s) left in other files were NOT replayed (use --drain to replay them):\n",
                weir_cbors_name(r->in[r->first_ended].rd), r->leftover);
        for (size_t i = 0; i < r->n; i++)
            if (r->in[i].left)
                fprintf(f, "  %s: %" PRIu64 " event(s), numbers %" PRIu64 "..%" PRIu64 "\n",
                        weir_cbors_name(r->in[i].rd), r->in[i].left, r->in[i].left_min,
                        r->in[i].left_max);
    }
    if (r->duplicates)
        fprintf(f, "replay: %" PRIu64 " duplicate stream packet(s) dropped\n", r->duplicates);
    if (r->error) fprintf(f, "replay: input error: %s\n", r->errmsg);
}

void weir_replay_close(weir_replay *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        weir_event_free(r->in[i].cached);
        weir_cbors_close(r->in[i].rd);
    }
    free(r->in);
    free(r);
}
