/* fuzz_tags_common.h — the body shared by the fuzz_tags_<format>.c
 * libFuzzer harnesses (one per time-tag reader, src/timetag/).
 *
 * Any input must either be refused with a negative code and a message that
 * names the input, or decode without reading outside the buffer (ASan
 * checks that) into at most one event per record, with every record
 * accounted for in the counts. Accepted inputs are also split into three
 * sections (weir_tag_sections) whose events, read by separate readers,
 * must concatenate to the whole file's events bit for bit. */
#include "weir/error.h"
#include "weir/tags.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fuzz_tags_all(weir_tag_reader *r, weir_tag *ev, size_t cap)
{
    char err[256];
    size_t n = 0;
    for (;;) {
        long k = weir_tag_read(r, ev + n, cap - n < 7 ? cap - n : 7, err, sizeof err);
        if (k < 0) abort(); /* readers count bad records, they do not fail */
        if (!k) break;
        n += (size_t)k;
        if (n > cap) abort();
    }
    return n;
}

static int fuzz_tags_run(const uint8_t *data, size_t size, weir_tag_format fmt)
{
    uint8_t *copy = malloc(size ? size : 1); /* exactly size bytes for ASan */
    if (!copy) return 0;
    memcpy(copy, data, size);
    weir_tag_reader *r = NULL;
    char err[512];
    int rc = weir_tag_open_mem(copy, size, fmt, "<fuzz>", &r, err, sizeof err);
    if (rc) {
        if (rc >= 0 || !strstr(err, "<fuzz>")) abort();
        free(copy);
        return 0;
    }
    const weir_tag_info *in = weir_tag_reader_info(r);
    size_t nrec = (size_t)in->nrecords;
    weir_tag *all = malloc((nrec + 1) * sizeof *all);
    weir_tag *cat = malloc((nrec + 1) * sizeof *cat);
    if (!all || !cat) goto out;
    size_t n = fuzz_tags_all(r, all, nrec + 1);
    const weir_tag_counts *c = weir_tag_reader_counts(r);
    if (n > nrec || c->photons + c->syncs + c->markers != n) abort();
    if (c->photons + c->syncs + c->markers + c->overflows + c->errors > nrec) abort();
    weir_tag_pos pos[3];
    uint64_t ends[3];
    if (weir_tag_sections(r, 0, UINT64_MAX, 3, pos, ends, err, sizeof err) != 0) abort();
    size_t got = 0;
    for (int i = 0; i < 3; i++) {
        weir_tag_reader *ri = NULL;
        if (weir_tag_open_mem(copy, size, fmt, "<fuzz>", &ri, err, sizeof err) != 0) abort();
        weir_tag_seek(ri, &pos[i]);
        weir_tag_set_end(ri, ends[i]);
        got += fuzz_tags_all(ri, cat + got, nrec + 1 - got);
        weir_tag_close(ri);
    }
    if (got != n || (n && memcmp(cat, all, n * sizeof *all) != 0)) abort();
out:
    free(all);
    free(cat);
    weir_tag_close(r);
    free(copy);
    return 0;
}
