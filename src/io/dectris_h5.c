/* dectris_h5.c — frames of a DECTRIS NeXus master + data files (see
 * weir/dectris_h5.h).
 *
 * The master's /entry/data group links data_000001, data_000002, … (external
 * links, resolved beside the master). Each data set is (n, y, x) with one
 * frame per chunk, compressed with the bitshuffle filter (32008, LZ4) or the
 * LZ4 filter (32004), or not at all. A frame is read as its raw chunk and
 * decoded here, so the simulator runs without the HDF5 filter plug-ins. */
#include "weir/dectris_h5.h"

#include "weir/bslz4.h"
#include "weir/error.h"

#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 4096

typedef struct {
    hid_t dset;
    uint64_t n;     /* frames */
    int filter;     /* 0 none, 32008 bitshuffle, 32004 lz4 */
    uint64_t first; /* index of its first frame over all files */
} datafile;

struct weir_dectris_h5 {
    char *path;
    hid_t file;
    datafile *df;
    size_t ndf;
    uint64_t frames;
    size_t y, x;
    weir_dtype_kind dt;
    size_t elem;
    char trigger_mode[16];
    weir_dectris_series series;
};

static int read_i64(hid_t f, const char *name, int64_t *v)
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return WEIR_ENOTFOUND;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return WEIR_EHDF5;
    herr_t r = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    return r < 0 ? WEIR_EHDF5 : WEIR_OK;
}

static int read_str(hid_t f, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return WEIR_ENOTFOUND;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return WEIR_EHDF5;
    hid_t t = H5Dget_type(d);
    int rc = WEIR_EHDF5;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) >= 0 && s) {
                snprintf(out, cap, "%s", s);
                H5free_memory(s);
                rc = WEIR_OK;
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(t);
            char *buf = calloc(1, n + 1);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, n + 1);
            if (buf && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
                snprintf(out, cap, "%s", buf);
                rc = WEIR_OK;
            }
            H5Tclose(mt);
            free(buf);
        }
    }
    H5Tclose(t);
    H5Dclose(d);
    return rc;
}

typedef struct {
    char **names;
    size_t n;
} namelist;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    namelist *l = ud;
    if (strncmp(name, "data_", 5) || l->n >= MAX_FILES) return 0;
    l->names[l->n++] = strdup(name);
    return 0;
}

static int open_datafile(weir_dectris_h5 *h, hid_t g, const char *name, datafile *df, char *err,
                         size_t errlen)
{
    df->dset = H5Dopen2(g, name, H5P_DEFAULT);
    if (df->dset < 0) {
        snprintf(err, errlen,
                 "%s: /entry/data/%s cannot be opened (is its data file beside the master?)",
                 h->path, name);
        return WEIR_ENOENT;
    }
    hid_t sp = H5Dget_space(df->dset), t = H5Dget_type(df->dset),
          pl = H5Dget_create_plist(df->dset);
    hsize_t dims[3] = {0, 0, 0}, chunk[3] = {0, 0, 0};
    int rank = H5Sget_simple_extent_ndims(sp), rc = WEIR_OK;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t elem = H5Tget_size(t);
    if (rank != 3 || H5Tget_class(t) != H5T_INTEGER || H5Tget_sign(t) != H5T_SGN_NONE ||
        (elem != 1 && elem != 2 && elem != 4)) {
        snprintf(err, errlen,
                 "%s: /entry/data/%s: expected (frames, y, x) of uint8/16/32, got rank %d with "
                 "%zu-byte elements",
                 h->path, name, rank, elem);
        rc = WEIR_EFORMAT;
    } else if (h->y && (dims[1] != h->y || dims[2] != h->x || elem != h->elem)) {
        snprintf(err, errlen, "%s: /entry/data/%s: frames of %llux%llu, the first file has %zux%zu",
                 h->path, name, (unsigned long long)dims[1], (unsigned long long)dims[2], h->y,
                 h->x);
        rc = WEIR_EFORMAT;
    } else if (H5Pget_layout(pl) == H5D_CHUNKED &&
               (H5Pget_chunk(pl, 3, chunk) != 3 || chunk[0] != 1 || chunk[1] != dims[1] ||
                chunk[2] != dims[2])) {
        snprintf(err, errlen, "%s: /entry/data/%s: expected one frame per chunk", h->path, name);
        rc = WEIR_EUNSUPPORTED;
    }
    if (!rc) {
        h->y = dims[1], h->x = dims[2], h->elem = elem;
        h->dt = elem == 1 ? WEIR_DT_U8 : elem == 2 ? WEIR_DT_U16 : WEIR_DT_U32;
        df->n = dims[0];
        df->filter = 0;
        int nf = H5Pget_layout(pl) == H5D_CHUNKED ? H5Pget_nfilters(pl) : 0;
        for (int i = 0; i < nf && !rc; i++) {
            unsigned flags, cd[8];
            size_t ncd = 8;
            H5Z_filter_t f = H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
            if ((f == 32008 && (ncd < 5 || cd[4] == 2)) || f == 32004) {
                if (df->filter) rc = WEIR_EUNSUPPORTED;
                df->filter = (int)f;
            } else {
                rc = WEIR_EUNSUPPORTED;
            }
            if (rc)
                snprintf(err, errlen,
                         "%s: /entry/data/%s: filter %d is not bitshuffle-LZ4 (32008) or LZ4 "
                         "(32004)",
                         h->path, name, (int)f);
        }
    }
    H5Pclose(pl);
    H5Tclose(t);
    H5Sclose(sp);
    return rc;
}

int weir_dectris_h5_open(const char *master, weir_dectris_h5 **out, char *err, size_t errlen)
{
    *out = NULL;
    weir_dectris_h5 *h = calloc(1, sizeof *h);
    if (!h) return WEIR_ENOMEM;
    h->path = strdup(master);
    h->file = -1;
    int rc = WEIR_OK;
    namelist nl = {calloc(MAX_FILES, sizeof(char *)), 0};
    hid_t g = -1;
    H5E_BEGIN_TRY
    {
        h->file = H5Fopen(master, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (!h->path || !nl.names) {
        rc = WEIR_ENOMEM;
        goto out;
    }
    if (h->file < 0) {
        snprintf(err, errlen, "%s: not an HDF5 file (or cannot be read)", master);
        rc = WEIR_ENOENT;
        goto out;
    }
    const char *det = "/entry/instrument/detector/",
               *spec = "/entry/instrument/detector/detectorSpecific/";
    char name[256];
    int64_t nimages = 1, ntrigger = 1, xp = 0, yp = 0, bits = 0;
    H5E_BEGIN_TRY
    {
        snprintf(name, sizeof name, "%snimages", spec);
        read_i64(h->file, name, &nimages);
        snprintf(name, sizeof name, "%sntrigger", spec);
        read_i64(h->file, name, &ntrigger);
        snprintf(name, sizeof name, "%sx_pixels_in_detector", spec);
        read_i64(h->file, name, &xp);
        snprintf(name, sizeof name, "%sy_pixels_in_detector", spec);
        read_i64(h->file, name, &yp);
        snprintf(name, sizeof name, "%sbit_depth_image", det);
        read_i64(h->file, name, &bits);
        snprintf(name, sizeof name, "%strigger_mode", spec);
        read_str(h->file, name, h->trigger_mode, sizeof h->trigger_mode);
        g = H5Gopen2(h->file, "/entry/data", H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (g < 0) {
        snprintf(err, errlen, "%s: no /entry/data group: not a DECTRIS master file", master);
        rc = WEIR_EFORMAT;
        goto out;
    }
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &nl);
    if (!nl.n) {
        snprintf(err, errlen, "%s: /entry/data has no data_NNNNNN links", master);
        rc = WEIR_EFORMAT;
        goto out;
    }
    h->df = calloc(nl.n, sizeof *h->df);
    if (!h->df) {
        rc = WEIR_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nl.n && !rc; i++) {
        h->df[i].dset = -1;
        H5E_BEGIN_TRY
        {
            rc = open_datafile(h, g, nl.names[i], &h->df[i], err, errlen);
        }
        H5E_END_TRY;
        h->df[i].first = h->frames;
        h->frames += h->df[i].n;
        h->ndf = i + 1;
    }
    if (rc) goto out;
    if ((xp && (size_t)xp != h->x) || (yp && (size_t)yp != h->y))
        snprintf(err, errlen, "%s: note: data frames %zux%zu, detector %lldx%lld (ROI mode)",
                 master, h->y, h->x, (long long)yp, (long long)xp);
    h->series = (weir_dectris_series){
        .series = 1,
        .series_unique_id = "weir-sim-h5",
        .trigger_mode = h->trigger_mode[0] ? h->trigger_mode : NULL,
        .nimages = nimages,
        .ntrigger = ntrigger,
        .x_pixels = h->x,
        .y_pixels = h->y,
        .bit_depth = bits == 8 || bits == 16 || bits == 32 ? (int)bits : (int)h->elem * 8,
    };
out:
    if (g >= 0) H5Gclose(g);
    for (size_t i = 0; i < nl.n; i++)
        free(nl.names[i]);
    free(nl.names);
    if (rc) {
        weir_dectris_h5_close(h);
        return rc;
    }
    *out = h;
    return WEIR_OK;
}

const weir_dectris_series *weir_dectris_h5_series(const weir_dectris_h5 *h)
{
    return &h->series;
}

uint64_t weir_dectris_h5_frames(const weir_dectris_h5 *h)
{
    return h->frames;
}

int weir_dectris_h5_read(weir_dectris_h5 *h, uint64_t i, weir_array *out, char *err, size_t errlen)
{
    if (i >= h->frames) {
        snprintf(err, errlen, "%s: frame %llu of %llu", h->path, (unsigned long long)i,
                 (unsigned long long)h->frames);
        return WEIR_ERANGE;
    }
    size_t k = 0;
    while (k + 1 < h->ndf && i >= h->df[k + 1].first)
        k++;
    datafile *df = &h->df[k];
    hsize_t off[3] = {i - df->first, 0, 0};
    size_t shape[2] = {h->y, h->x}, nbytes = h->y * h->x * h->elem;
    int rc = weir_array_alloc(out, (weir_dtype){h->dt, WEIR_LITTLE}, 2, shape);
    if (rc) return rc;
    if (!df->filter) {
        hid_t fs = H5Dget_space(df->dset);
        hsize_t cnt[3] = {1, h->y, h->x};
        hid_t ms = H5Screate_simple(3, cnt, NULL);
        hid_t mt = h->elem == 1 ? H5T_STD_U8LE : h->elem == 2 ? H5T_STD_U16LE : H5T_STD_U32LE;
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        herr_t r = H5Dread(df->dset, mt, ms, fs, H5P_DEFAULT, (void *)out->data);
        H5Sclose(ms);
        H5Sclose(fs);
        if (r < 0) {
            snprintf(err, errlen, "%s: frame %llu cannot be read", h->path, (unsigned long long)i);
            weir_array_release(out);
            return WEIR_EHDF5;
        }
        return WEIR_OK;
    }
    hsize_t csize = 0;
    uint32_t mask = 0;
    if (H5Dget_chunk_storage_size(df->dset, off, &csize) < 0 || !csize) {
        snprintf(err, errlen, "%s: frame %llu has no stored chunk", h->path, (unsigned long long)i);
        weir_array_release(out);
        return WEIR_EFORMAT;
    }
    uint8_t *raw = malloc(csize);
    if (!raw) {
        weir_array_release(out);
        return WEIR_ENOMEM;
    }
    if (H5Dread_chunk(df->dset, H5P_DEFAULT, off, &mask, raw) < 0) {
        rc = WEIR_EHDF5;
        snprintf(err, errlen, "%s: frame %llu: chunk cannot be read", h->path,
                 (unsigned long long)i);
    } else if (mask) { /* the filter was skipped for this chunk: stored raw */
        if (csize != nbytes) {
            rc = WEIR_EFORMAT;
            snprintf(err, errlen, "%s: frame %llu: unfiltered chunk of %llu bytes, expected %zu",
                     h->path, (unsigned long long)i, (unsigned long long)csize, nbytes);
        } else {
            memcpy((void *)out->data, raw, nbytes);
        }
    } else {
        rc = df->filter == 32008
                 ? weir_bslz4_decode(raw, csize, (uint8_t *)out->data, nbytes, h->elem)
                 : weir_lz4h5_decode(raw, csize, (uint8_t *)out->data, nbytes);
        if (rc)
            snprintf(err, errlen, "%s: frame %llu (chunk of %llu bytes at frame offset): %s",
                     h->path, (unsigned long long)i, (unsigned long long)csize, weir_strerror(rc));
    }
    free(raw);
    if (rc) weir_array_release(out);
    return rc;
}

void weir_dectris_h5_close(weir_dectris_h5 *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->ndf; i++)
        if (h->df[i].dset >= 0) H5Dclose(h->df[i].dset);
    free(h->df);
    if (h->file >= 0) H5Fclose(h->file);
    free(h->path);
    free(h);
}
