/* sim.c — `weir sim stins`: a STINS sender for tests and for users without
 * hardware.
 *
 * Serves the STINS messages of a capture (one stream of an ingester dump,
 * or every message of a raw capture) or synthetic frames over ZeroMQ PUSH
 * or PUB, at a chosen rate, any number of times, and can inject faults into
 * the data messages on purpose: drop, duplicate, swap with the next
 * (reorder), replace by garbage, or disconnect in the middle of the scan.
 * Header and series_end are never faulted, so a receiver can always tell
 * where a scan starts and (unless disconnected) ends. */
#include "cli.h"
#include "sim.h"

#include "weir/beamline.h"
#include "weir/cbors.h"
#include "weir/concert.h"
#include "weir/dectris.h"
#include "weir/dectris_h5.h"
#include "weir/merlin.h"
#include "weir/merlin_ctl.h"
#include "weir/error.h"
#include "weir/stins.h"
#include "weir/synth.h"
#include "weir/tpx3.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

int push(msglist *l, weir_msg *m)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        weir_msg *nm = realloc(l->m, cap * sizeof *nm);
        if (!nm) return WEIR_ENOMEM;
        l->m = nm;
        l->cap = cap;
    }
    l->m[l->n++] = *m;
    weir_msg_init(m);
    return WEIR_OK;
}

void clear(msglist *l)
{
    for (size_t i = 0; i < l->n; i++)
        weir_msg_clear(&l->m[i]);
    free(l->m);
}

static int load_capture_typ(const char *path, const char *stream, const char *typ, msglist *l,
                            char *err, size_t el)
{
    weir_cbors_reader *r;
    int rc = weir_cbors_open(path, &r, err, el);
    if (rc) return rc;
    for (;;) {
        if (weir_cbors_kind_of(r) == WEIR_CBORS_RAW) {
            weir_msg m;
            weir_msg_init(&m);
            int eof = 0;
            rc = weir_cbors_next_raw(r, &m, &eof);
            if (rc || eof) break;
            rc = push(l, &m);
        } else {
            weir_event *ev = NULL;
            rc = weir_cbors_next_event(r, &ev);
            if (rc || !ev) break;
            for (size_t i = 0; i < ev->nstreams; i++) {
                weir_stream_packet *s = &ev->streams[i];
                if ((stream && !strcmp(s->name, stream)) || (!stream && !strcmp(s->typ, typ))) {
                    rc = push(l, &s->msg);
                    break;
                }
            }
            weir_event_free(ev);
        }
        if (rc) break;
    }
    if (rc) snprintf(err, el, "%s", weir_cbors_error(r));
    weir_cbors_close(r);
    return rc;
}

static int load_capture(const char *path, const char *stream, msglist *l, char *err, size_t el)
{
    return load_capture_typ(path, stream, "STINS", l, err, el);
}

/* A synthetic DECTRIS series (v1 or v2): start, n images of synthetic
 * uint16 frames with the given encoding, end. */
int dectris_series(int version, uint64_t n, size_t h, size_t w, uint64_t seed,
                   weir_dectris_encoding enc, int64_t series, const char *header_detail, msglist *l)
{
    weir_dectris_series ser = {.series = series,
                               .header_detail = header_detail,
                               .series_unique_id = "weir-sim",
                               .nimages = (int64_t)n,
                               .ntrigger = 1,
                               .x_pixels = w,
                               .y_pixels = h,
                               .bit_depth = 16};
    weir_msg m;
    weir_msg_init(&m);
    int rc = version == 1 ? weir_dectris_v1_encode_header(&m, &ser)
                          : weir_dectris_v2_encode_start(&m, &ser);
    if (!rc) rc = push(l, &m);
    weir_synth_config c = {
        .frames = n, .height = h, .width = w, .dtype = WEIR_DT_U16, .seed = seed};
    size_t shape[2] = {h, w};
    const char *names[1] = {"threshold_1"};
    for (uint64_t f = 0; !rc && f < n; f++) {
        weir_array a;
        rc = weir_array_alloc(&a, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, shape);
        if (rc) break;
        weir_synth_frame(&c, f, (void *)a.data);
        rc = version == 1
                 ? weir_dectris_v1_encode_image(&m, series, (int64_t)f, &a, enc, NULL, NULL)
                 : weir_dectris_v2_encode_image(&m, series, "weir-sim", (int64_t)f, 1, names, &a,
                                                enc, NULL);
        weir_array_release(&a);
        if (!rc) rc = push(l, &m);
    }
    if (!rc)
        rc = version == 1 ? weir_dectris_v1_encode_end(&m, series)
                          : weir_dectris_v2_encode_end(&m, series, "weir-sim");
    if (!rc) rc = push(l, &m);
    weir_msg_clear(&m);
    return rc;
}

/* A DECTRIS series from a NeXus master file and its data files: the
 * master's configuration in the header / start message (series id `series`), every
 * frame re-encoded with enc, then the end. */
int dectris_from_h5(int version, const char *master, weir_dectris_encoding enc, int64_t series,
                    msglist *l, char *err, size_t el)
{
    weir_dectris_h5 *h;
    int rc = weir_dectris_h5_open(master, &h, err, el);
    if (rc) return rc;
    weir_dectris_series ser = *weir_dectris_h5_series(h);
    ser.series = series;
    ser.series_unique_id = "weir-sim";
    weir_msg m;
    weir_msg_init(&m);
    rc = version == 1 ? weir_dectris_v1_encode_header(&m, &ser)
                      : weir_dectris_v2_encode_start(&m, &ser);
    if (!rc) rc = push(l, &m);
    const char *names[1] = {"threshold_1"};
    for (uint64_t f = 0; !rc && f < weir_dectris_h5_frames(h); f++) {
        weir_array a;
        rc = weir_dectris_h5_read(h, f, &a, err, el);
        if (rc) break;
        rc = version == 1
                 ? weir_dectris_v1_encode_image(&m, series, (int64_t)f, &a, enc, NULL, NULL)
                 : weir_dectris_v2_encode_image(&m, series, "weir-sim", (int64_t)f, 1, names, &a,
                                                enc, NULL);
        weir_array_release(&a);
        if (!rc) rc = push(l, &m);
    }
    if (!rc)
        rc = version == 1 ? weir_dectris_v1_encode_end(&m, series)
                          : weir_dectris_v2_encode_end(&m, series, "weir-sim");
    if (!rc) rc = push(l, &m);
    if (rc && !err[0]) snprintf(err, el, "%s: %s", master, weir_strerror(rc));
    weir_msg_clear(&m);
    weir_dectris_h5_close(h);
    fprintf(stderr, "weir sim: %s: %zu messages\n", master, l->n);
    return rc;
}

int send_msg(void *sock, const weir_msg *m)
{
    for (size_t i = 0; i < m->nparts; i++)
        if (zmq_send(sock, weir_buf_data(m->parts[i]), weir_buf_size(m->parts[i]),
                     i + 1 < m->nparts ? ZMQ_SNDMORE : 0) < 0)
            return WEIR_EIO;
    return WEIR_OK;
}

static int is_data(const weir_msg *m, int proto)
{
    if (proto == 6) return 0; /* beamline captures: sent as they are, no faults */
    if (proto == 4) {
        weir_concert_packet p;
        if (weir_concert_parse(m, 0, &p, NULL, 0)) return 0;
        int d = !p.end;
        weir_concert_clear(&p);
        return d;
    }
    if (proto == 0) {
        weir_stins_packet p;
        if (weir_stins_parse(m, 0, &p, NULL, 0)) return 0;
        int d = p.kind == WEIR_STINS_IMAGE;
        weir_stins_clear(&p);
        return d;
    }
    weir_dectris_packet p;
    int rc = proto == 1 ? weir_dectris_v1_parse(m, 0, &p, NULL, 0)
                        : (m->nparts == 1
                               ? weir_dectris_v2_parse(weir_buf_data(m->parts[0]),
                                                       weir_buf_size(m->parts[0]), 0, &p, NULL, 0)
                               : WEIR_EFORMAT);
    if (rc) return 0;
    int d = p.kind == WEIR_DECTRIS_IMAGE;
    weir_dectris_clear(&p);
    return d;
}

/* Waits on a ZMQ_STREAM socket for the peer that stays: a connection that
 * closes again within 200 ms (a port probe) is not the receiver. Fills id
 * with the peer's routing id; 0, or -1 on a socket error. */
static int wait_peer(void *sock, zmq_msg_t *id)
{
    for (;;) {
        zmq_msg_t note, id2;
        zmq_msg_init(&note);
        if (zmq_msg_recv(id, sock, 0) < 0 || zmq_msg_recv(&note, sock, 0) < 0) {
            zmq_msg_close(&note);
            return -1;
        }
        zmq_msg_close(&note);
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 200) <= 0) return 0; /* it stayed */
        zmq_msg_init(&id2);
        zmq_msg_init(&note);
        if (zmq_msg_recv(&id2, sock, 0) < 0 || zmq_msg_recv(&note, sock, 0) < 0) {
            zmq_msg_close(&id2);
            zmq_msg_close(&note);
            return -1;
        }
        int gone = zmq_msg_size(&note) == 0 && zmq_msg_size(&id2) == zmq_msg_size(id) &&
                   !memcmp(zmq_msg_data(&id2), zmq_msg_data(id), zmq_msg_size(id));
        zmq_msg_close(&id2);
        zmq_msg_close(&note);
        if (!gone) return 0;
        zmq_msg_close(id); /* a probe: wait for the next connection */
        zmq_msg_init(id);
    }
}

/* Sends one MPX message (prefix + payload) to the TCP peer `id`. */
static int send_mpx(void *sock, const zmq_msg_t *id, const uint8_t *payload, size_t len)
{
    char prefix[WEIR_MERLIN_MPX_PREFIX + 1];
    if (weir_merlin_mpx_prefix(len, prefix)) return WEIR_ERANGE;
    uint8_t *buf = malloc(WEIR_MERLIN_MPX_PREFIX + len);
    if (!buf) return WEIR_ENOMEM;
    memcpy(buf, prefix, WEIR_MERLIN_MPX_PREFIX);
    memcpy(buf + WEIR_MERLIN_MPX_PREFIX, payload, len);
    int rc = zmq_send(sock, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size((zmq_msg_t *)id),
                      ZMQ_SNDMORE) < 0 ||
                     zmq_send(sock, buf, WEIR_MERLIN_MPX_PREFIX + len, 0) < 0
                 ? WEIR_EIO
                 : WEIR_OK;
    free(buf);
    return rc;
}

/* Merlin's data port: a TCP server (a ZMQ_STREAM socket) that waits for the
 * receiver to connect, then sends the acquisition header and every frame of
 * a .mib file, MPX-framed, as the detector does. */
/* Merlin's control port for the simulator: STARTACQUISITION arms (the data
 * port then sends the acquisition header), SOFTTRIGGER releases the frames
 * when TRIGGERSTART is 5 (software trigger). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long starts, triggers, stops;
} merlin_ctl_state;

/* Counts one command into *counter and wakes the sender. */
static int mc_count(merlin_ctl_state *m, long *counter)
{
    pthread_mutex_lock(&m->mu);
    (*counter)++;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mc_start(void *u)
{
    return mc_count(u, &((merlin_ctl_state *)u)->starts);
}

static int mc_trigger(void *u)
{
    return mc_count(u, &((merlin_ctl_state *)u)->triggers);
}

static int mc_stop(void *u)
{
    return mc_count(u, &((merlin_ctl_state *)u)->stops);
}

/* Waits until *counter > n (1) or a stop / abort came (0). */
static int mc_wait(merlin_ctl_state *m, long *counter, long n, long stops0)
{
    pthread_mutex_lock(&m->mu);
    while (*counter <= n && m->stops == stops0)
        pthread_cond_wait(&m->cv, &m->mu);
    int ok = m->stops == stops0;
    pthread_mutex_unlock(&m->mu);
    return ok;
}

/* Deliberate faults on frame K of every acquisition (-1: none). */
typedef struct {
    long drop, dup, garbage, disconnect;
} merlin_faults;

static int sim_merlin(const char *ep, const char *mib, const char *hdr, double rate, uint64_t loops,
                      int ctl_port, const merlin_faults *f)
{
    char hdrpath[4096], err[512];
    if (!hdr) {
        snprintf(hdrpath, sizeof hdrpath, "%s", mib);
        char *dot = strrchr(hdrpath, '.');
        if (dot) strcpy(dot, ".hdr");
        hdr = hdrpath;
    }
    weir_buf *hb = NULL;
    if (weir_buf_map_file(hdr, &hb)) {
        fprintf(stderr, "weir sim: cannot read the acquisition header %s\n", hdr);
        return 1;
    }
    void *zctx = zmq_ctx_new(), *sock = zmq_socket(zctx, ZMQ_STREAM);
    int linger = 10000, rc = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(sock, ep)) {
        fprintf(stderr, "weir sim: cannot bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        rc = 1;
        goto out;
    }
    merlin_ctl_state mc = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    weir_merlin_ctl_server *ctl = NULL;
    if (ctl_port >= 0) {
        weir_merlin_ctl_callbacks cb = {.user = &mc,
                                        .on_start_acquisition = mc_start,
                                        .on_soft_trigger = mc_trigger,
                                        .on_stop_acquisition = mc_stop,
                                        .on_abort = mc_stop};
        weir_merlin_acq a;
        if (weir_merlin_ctl_server_new(&cb, &ctl) ||
            weir_merlin_ctl_server_start(ctl, NULL, ctl_port, err, sizeof err)) {
            fprintf(stderr, "weir sim: Merlin control port: %s\n", err);
            weir_merlin_ctl_server_free(ctl);
            rc = 1;
            goto out;
        }
        if (weir_merlin_acq_parse(weir_buf_data(hb), weir_buf_size(hb), &a, err, sizeof err) == 0) {
            char v[32];
            snprintf(v, sizeof v, "%llu", (unsigned long long)a.frames_in_acquisition);
            weir_merlin_ctl_server_set(ctl, "NUMFRAMESTOACQUIRE", v);
            weir_merlin_acq_clear(&a);
        }
        fprintf(stderr, "weir sim: Merlin control port 127.0.0.1:%d\n",
                weir_merlin_ctl_server_port(ctl));
    }
    zmq_msg_t id, note;
    zmq_msg_init(&id);
    zmq_msg_init(&note);
    /* the connect notice of the receiver (port probes are skipped) */
    if (wait_peer(sock, &id)) {
        rc = 1;
        goto ids;
    }
    uint64_t frames = 0;
    for (uint64_t loop = 0; !rc && (loops == 0 || loop < loops); loop++) {
        weir_merlin_reader *r;
        if (weir_merlin_reader_open(mib, &r, err, sizeof err)) {
            fprintf(stderr, "weir sim: %s\n", err);
            rc = 1;
            break;
        }
        long stops0 = 0;
        if (ctl) { /* wait for STARTACQUISITION; with TRIGGERSTART 5 also for SOFTTRIGGER */
            pthread_mutex_lock(&mc.mu);
            stops0 = mc.stops;
            pthread_mutex_unlock(&mc.mu);
            if (!mc_wait(&mc, &mc.starts, (long)loop, stops0)) break;
        }
        rc = send_mpx(sock, &id, weir_buf_data(hb), weir_buf_size(hb));
        long long tstart = 0;
        if (!rc && ctl && weir_merlin_ctl_server_get_int(ctl, "TRIGGERSTART", &tstart) == 0 &&
            tstart == 5 && !mc_wait(&mc, &mc.triggers, (long)loop, stops0)) {
            weir_merlin_reader_free(r);
            break;
        }
        for (long k = 0;; k++) {
            weir_merlin_frame fr;
            int eof = 0;
            if (rc || weir_merlin_reader_next(r, &fr, &eof, err, sizeof err) || eof) break;
            const uint8_t *fb = weir_buf_data(fr.buf) + fr.offset;
            size_t fl = fr.hdr.data_offset + fr.hdr.payload_bytes;
            if (k == f->disconnect) { /* mid-scan: the detector goes away */
                fprintf(stderr, "weir sim: disconnecting before frame %ld\n", k);
                weir_merlin_frame_clear(&fr);
                weir_merlin_reader_free(r);
                goto ids;
            }
            if (k == f->garbage)
                rc = send_mpx(sock, &id, (const uint8_t *)"MQ1,not a frame header", 22);
            else if (k != f->drop)
                rc = send_mpx(sock, &id, fb, fl);
            if (!rc && k == f->dup) rc = send_mpx(sock, &id, fb, fl);
            weir_merlin_frame_clear(&fr);
            frames++;
            if (rate > 0) {
                struct timespec ts = {0, (long)(1e9 / rate)};
                nanosleep(&ts, NULL);
            }
        }
        weir_merlin_reader_free(r);
    }
    fprintf(stderr, "weir sim: sent %llu Merlin frames\n", (unsigned long long)frames);
ids:
    zmq_msg_close(&id);
    zmq_msg_close(&note);
    weir_merlin_ctl_server_free(ctl);
out:
    zmq_close(sock);
    zmq_ctx_term(zctx);
    weir_buf_unref(hb);
    return rc;
}

/* ASI TPX3: a TCP server like the Accos software (port 8283 by default):
 * waits for the receiver to connect, then sends a recorded stream (or a
 * synthetic one) wire message by wire message; --rate paces ArrayChunks. */
static int sim_tpx3(const char *ep, const char *from, uint64_t synthetic, size_t h, size_t w,
                    uint64_t seed, double rate, uint64_t loops)
{
    char err[512];
    weir_tpx3_reader *r = NULL;
    if (from) {
        if (weir_tpx3_reader_open(from, &r, err, sizeof err)) {
            fprintf(stderr, "weir sim: %s\n", err);
            return 1;
        }
    } else {
        weir_tpx3_synth_opts o = {.nframes = (uint32_t)synthetic,
                                  .frames_per_chunk = 4,
                                  .nav_h = 1,
                                  .nav_w = (uint16_t)synthetic,
                                  .sig_h = (uint16_t)h,
                                  .sig_w = (uint16_t)w,
                                  .max_hits = 64,
                                  .max_value = 9,
                                  .indptr_dtype = WEIR_TPX3_U32,
                                  .indices_dtype = WEIR_TPX3_U32,
                                  .value_dtype = WEIR_TPX3_U16,
                                  .seed = seed};
        weir_buf *b;
        if (weir_tpx3_synth(&o, &b, err, sizeof err) || weir_tpx3_reader_new(b, "synthetic", &r)) {
            fprintf(stderr, "weir sim: %s\n", err);
            return 1;
        }
        weir_buf_unref(b);
    }
    void *zctx = zmq_ctx_new(), *sock = zmq_socket(zctx, ZMQ_STREAM);
    int linger = 10000, rc = 0;
    uint64_t sent = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_msg_t id, note;
    zmq_msg_init(&id);
    zmq_msg_init(&note);
    if (zmq_bind(sock, ep)) {
        fprintf(stderr, "weir sim: cannot bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        rc = 1;
        goto out;
    }
    if (wait_peer(sock, &id)) {
        rc = 1;
        goto out;
    }
    for (uint64_t loop = 0; !rc && (loops == 0 || loop < loops); loop++) {
        weir_tpx3_reader_rewind(r);
        for (;;) {
            weir_tpx3_item it;
            int eof = 0;
            if (weir_tpx3_reader_next(r, 0, &it, &eof, err, sizeof err)) {
                fprintf(stderr, "weir sim: %s\n", err);
                rc = 1;
                break;
            }
            if (eof) break;
            if (zmq_send(sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE) < 0 ||
                zmq_send(sock, weir_buf_data(it.wire), weir_buf_size(it.wire), 0) < 0)
                rc = 1;
            int chunk = it.hdr.tag == WEIR_TPX3_ARRAY_CHUNK;
            weir_tpx3_item_clear(&it);
            if (rc) break;
            sent++;
            if (chunk && rate > 0) {
                struct timespec ts = {0, (long)(1e9 / rate)};
                nanosleep(&ts, NULL);
            }
        }
    }
    fprintf(stderr, "weir sim: sent %llu TPX3 wire messages\n", (unsigned long long)sent);
out:
    zmq_msg_close(&id);
    zmq_msg_close(&note);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    weir_tpx3_reader_free(r);
    return rc;
}

/* PandA position capture on its raw TCP data port: waits for a client,
 * reads its option line, answers OK and sends the packets of the PCAP_RAW
 * stream of a dump (or of a raw capture) back to back, as the PandA does. */
static int sim_pcap_raw(const char *ep, const char *from, const char *stream, double rate,
                        uint64_t loops)
{
    char err[512];
    msglist l = {0};
    if (load_capture_typ(from, stream, "PCAP_RAW", &l, err, sizeof err) || !l.n) {
        fprintf(stderr, "weir sim pcap-raw: %s: %s\n", from, l.n ? err : "no PCAP_RAW packets");
        clear(&l);
        return 1;
    }
    void *zctx = zmq_ctx_new(), *sock = zmq_socket(zctx, ZMQ_STREAM);
    int linger = 10000, rc = 0;
    uint64_t sent = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_msg_t id, note, opt;
    zmq_msg_init(&id);
    zmq_msg_init(&note);
    zmq_msg_init(&opt);
    weir_msg ok;
    weir_msg_init(&ok);
    if (zmq_bind(sock, ep)) {
        fprintf(stderr, "weir sim: cannot bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        rc = 1;
        goto out;
    }
    /* the client is the peer that sends an option line ("\n", "ASCII\n", ...);
     * connections that only connect and close (port probes) are ignored */
    for (;;) {
        if (zmq_msg_recv(&id, sock, 0) < 0 || zmq_msg_recv(&opt, sock, 0) < 0) {
            rc = 1;
            goto out;
        }
        if (zmq_msg_size(&opt) > 0) break;
    }
    if (weir_panda_encode_ok(&ok) || !ok.nparts) {
        rc = 1;
        goto out;
    }
    rc = zmq_send(sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE) < 0 ||
         zmq_send(sock, weir_buf_data(ok.parts[0]), weir_buf_size(ok.parts[0]), 0) < 0;
    for (uint64_t loop = 0; !rc && (loops == 0 || loop < loops); loop++)
        for (size_t i = 0; !rc && i < l.n; i++)
            for (size_t k = 0; !rc && k < l.m[i].nparts; k++) {
                rc = zmq_send(sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE) < 0 ||
                     zmq_send(sock, weir_buf_data(l.m[i].parts[k]), weir_buf_size(l.m[i].parts[k]),
                              0) < 0;
                sent++;
                if (rate > 0) {
                    struct timespec ts = {0, (long)(1e9 / rate)};
                    nanosleep(&ts, NULL);
                }
            }
    fprintf(stderr, "weir sim: sent %llu PandA packets\n", (unsigned long long)sent);
out:
    weir_msg_clear(&ok);
    zmq_msg_close(&id);
    zmq_msg_close(&note);
    zmq_msg_close(&opt);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    clear(&l);
    return rc;
}

/* Sardana's recorder: POSTs every message of the sardana stream of a dump
 * to /v1/data_desc, /v1/record_data or /v1/record_end (by its "type") on
 * the ingest's HTTP server, waiting up to 10 s for it to come up. */
static int sim_sardana(const char *ep, const char *from, const char *stream, double rate)
{
    char err[512];
    msglist l = {0};
    if (load_capture_typ(from, stream, "sardana", &l, err, sizeof err) || !l.n) {
        fprintf(stderr, "weir sim sardana: %s: %s\n", from, l.n ? err : "no sardana messages");
        clear(&l);
        return 1;
    }
    CURL *c = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    int rc = c && hd ? 0 : 1;
    size_t sent = 0;
    for (size_t i = 0; !rc && i < l.n; i++) {
        if (l.m[i].nparts != 1) continue;
        const char *body = (const char *)weir_buf_data(l.m[i].parts[0]);
        size_t len = weir_buf_size(l.m[i].parts[0]);
        cJSON *j = cJSON_ParseWithLength(body, len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        const char *path = !cJSON_IsString(t)                           ? "/v1/custom_data"
                           : !strcmp(t->valuestring, "DataDescription") ? "/v1/data_desc"
                           : !strcmp(t->valuestring, "RecordData")      ? "/v1/record_data"
                           : !strcmp(t->valuestring, "RecordEnd")       ? "/v1/record_end"
                                                                        : "/v1/custom_data";
        cJSON_Delete(j);
        char url[1024];
        snprintf(url, sizeof url, "%s%s", ep, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        CURLcode cc;
        for (int tries = 0; (cc = curl_easy_perform(c)) == CURLE_COULDNT_CONNECT && tries < 200;
             tries++) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (cc != CURLE_OK || code != 200) {
            fprintf(stderr, "weir sim sardana: POST %s: %s (HTTP %ld)\n", url,
                    curl_easy_strerror(cc), code);
            rc = 1;
        }
        sent++;
        if (rate > 0) {
            struct timespec ts = {0, (long)(1e9 / rate)};
            nanosleep(&ts, NULL);
        }
    }
    fprintf(stderr, "weir sim: posted %zu Sardana records\n", sent);
    curl_slist_free_all(hd);
    if (c) curl_easy_cleanup(c);
    clear(&l);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: weir sim stins|dectris1|dectris2 --endpoint EP [--bind] [--socket push|pub]\n"
           "                     (--from CAPTURE [--stream NAME] | --synthetic N [--shape HxW]\n"
           "                      [--compression none|bslz4] [--seed S])\n"
           "                     [--rate HZ] [--loop N] [--sndhwm N] [--fault KIND:K ...]\n\n"
           "       weir sim merlin --endpoint tcp://ADDR:PORT --from FILE.mib [--hdr FILE.hdr]\n"
           "       weir sim concert --endpoint EP --synthetic N [--frame-numbers] ...\n"
           "       weir sim asi_tpx3 --endpoint tcp://ADDR:PORT (--from RECORDING |\n"
           "                     --synthetic N [--shape HxW] [--seed S]) [--rate HZ] [--loop N]\n\n"
           "Sends STINS or DECTRIS stream v1/v2 scans over ZeroMQ (DECTRIS --from a NeXus\n"
           "master file (FILE_master.h5, frames re-encoded with --compression none|bslz4|lz4)\n"
           "or a capture sent as it is, or --synthetic). Faults act on the K-th data message "
           "(0-based) of\n"
           "every scan: drop:K, dup:K (send twice), reorder:K (swap with K+1),\n"
           "garbage:K (replace by bytes that are not JSON), disconnect:K (close the socket\n"
           "before it, mid-scan), stale:K (DECTRIS: an image of the previous series before\n"
           "it). --loop 0 repeats until killed.\n");
}

int cmd_sim(int argc, char **argv)
{
    const char *ep = NULL, *from = NULL, *stream = NULL, *sockname = "push";
    int bind = 0;
    uint64_t synthetic = 0, loops = 1, seed = 1;
    double rate = 0;
    int sndhwm = 0, frame_numbers = 0;
    size_t h = 64, w = 64;
    weir_stins_compression comp = WEIR_STINS_COMP_NONE;
    weir_dectris_encoding denc = WEIR_DECTRIS_ENC_NONE;
    long fdrop = -1, fdup = -1, freorder = -1, fgarbage = -1, fdisc = -1, fstale = -1;
    int ctl_port = -1; /* DECTRIS: SIMPLON REST port; Merlin: control port */
    int proto = argc >= 2 ? (!strcmp(argv[1], "stins")      ? 0
                             : !strcmp(argv[1], "dectris1") ? 1
                             : !strcmp(argv[1], "dectris2") ? 2
                             : !strcmp(argv[1], "merlin")   ? 3
                             : !strcmp(argv[1], "concert")  ? 4
                             : !strcmp(argv[1], "asi_tpx3") ? 5
                             : !strcmp(argv[1], "pcap-raw") ? 7
                             : !strcmp(argv[1], "sardana")  ? 8
                             : weir_beamline_known(argv[1]) && strcmp(argv[1], "pcap-raw") &&
                                     strcmp(argv[1], "sardana")
                                 ? 6
                                 : -1)
                          : -1;
    if (proto < 0) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr,
                "weir sim: protocols: stins, dectris1 (DECTRIS stream v1), dectris2, "
                "merlin, concert, asi_tpx3, xspress3, contrast, pcap, pcap-raw, lecroy, albaem, "
                "sardana\n");
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--bind")) {
            bind = 1;
            continue;
        }
        if (!strcmp(a, "--frame-numbers")) {
            frame_numbers = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "weir sim: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--endpoint"))
            ep = v;
        else if (!strcmp(a, "--from"))
            from = v;
        else if (!strcmp(a, "--stream") || !strcmp(a, "--hdr"))
            stream = v;
        else if (!strcmp(a, "--socket"))
            sockname = v;
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--sndhwm"))
            sndhwm = atoi(v);
        else if (!strcmp(a, "--loop")) {
            if (cli_parse_u64(a, v, &loops)) return 2;
        } else if (!strcmp(a, "--synthetic")) {
            if (cli_parse_u64(a, v, &synthetic)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_u64(a, v, &seed)) return 2;
        } else if (!strcmp(a, "--shape")) {
            if (sscanf(v, "%zux%zu", &h, &w) != 2) return 2;
        } else if (!strcmp(a, "--compression")) {
            comp = !strcmp(v, "bslz4") ? WEIR_STINS_COMP_BSLZ4 : WEIR_STINS_COMP_NONE;
            denc = !strcmp(v, "bslz4") ? WEIR_DECTRIS_ENC_BSLZ4
                   : !strcmp(v, "lz4") ? WEIR_DECTRIS_ENC_LZ4
                                       : WEIR_DECTRIS_ENC_NONE;
        } else if (!strcmp(a, "--simplon") || !strcmp(a, "--control")) {
            uint64_t port;
            if (cli_parse_u64(a, v, &port) || port > 65535) return 2;
            ctl_port = (int)port;
        } else if (!strcmp(a, "--fault")) {
            long k;
            char kind[32];
            if (sscanf(v, "%31[a-z]:%ld", kind, &k) != 2 || k < 0) {
                fprintf(stderr, "weir sim: --fault expects KIND:K, e.g. drop:3\n");
                return 2;
            }
            if (!strcmp(kind, "drop"))
                fdrop = k;
            else if (!strcmp(kind, "dup"))
                fdup = k;
            else if (!strcmp(kind, "reorder"))
                freorder = k;
            else if (!strcmp(kind, "garbage"))
                fgarbage = k;
            else if (!strcmp(kind, "disconnect"))
                fdisc = k;
            else if (!strcmp(kind, "stale"))
                fstale = k;
            else {
                fprintf(stderr, "weir sim: unknown fault '%s'\n", kind);
                return 2;
            }
        } else {
            fprintf(stderr, "weir sim: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (proto == 8) {
        if (!ep || !from) {
            fprintf(stderr, "weir sim sardana: --endpoint http://HOST:PORT --from DUMP.cbors\n");
            return 2;
        }
        return sim_sardana(ep, from, stream, rate);
    }
    if (proto == 7) {
        if (!ep || !from) {
            fprintf(stderr, "weir sim pcap-raw: --endpoint tcp://ADDR:PORT --from DUMP.cbors "
                            "[--stream NAME]\n");
            return 2;
        }
        return sim_pcap_raw(ep, from, stream, rate, loops);
    }
    if (proto == 5) {
        if (!ep || (!from && !synthetic)) {
            fprintf(stderr, "weir sim asi_tpx3: --endpoint tcp://ADDR:PORT and --from RECORDING "
                            "or --synthetic N [--shape HxW] [--seed S]\n");
            return 2;
        }
        return sim_tpx3(ep, from, synthetic, h, w, seed, rate, loops);
    }
    if ((proto == 1 || proto == 2) && ctl_port >= 0) {
        if (!ep || (!from && !synthetic)) {
            fprintf(stderr, "weir sim: --simplon needs --endpoint and --from MASTER.h5 or "
                            "--synthetic N\n");
            return 2;
        }
        sim_simplon_opts so = {.version = proto,
                               .http_port = ctl_port,
                               .endpoint = ep,
                               .from = from,
                               .socket = sockname,
                               .bind = bind,
                               .synthetic = synthetic,
                               .seed = seed,
                               .h = h,
                               .w = w,
                               .enc = denc,
                               .series = loops};
        return sim_dectris_simplon(&so);
    }
    if (proto == 3) { /* Merlin: --hdr is kept in `stream` */
        if (!ep || !from) {
            fprintf(stderr, "weir sim merlin: --endpoint tcp://ADDR:PORT and --from FILE.mib "
                            "(the .hdr beside it, or --hdr FILE)\n");
            return 2;
        }
        merlin_faults mf = {fdrop, fdup, fgarbage, fdisc};
        if (freorder >= 0 || fstale >= 0) {
            fprintf(stderr, "weir sim merlin: TCP keeps order and Merlin has no series ids: "
                            "faults are drop, dup, garbage and disconnect\n");
            return 2;
        }
        return sim_merlin(ep, from, stream, rate, loops, ctl_port, &mf);
    }
    if (!ep || (!from && !synthetic)) {
        usage(stderr);
        return 2;
    }
    char err[512];
    msglist l = {0};
    if (proto == 4) {
        /* Concert: images (with ucad's "frame-number" when --frame-numbers)
         * and the {"end": true} marker; no start message */
        if (!synthetic) {
            fprintf(stderr, "weir sim concert: --synthetic N is needed\n");
            return 2;
        }
        weir_synth_config c = {
            .frames = synthetic, .height = h, .width = w, .dtype = WEIR_DT_U16, .seed = seed};
        uint16_t *px = malloc(h * w * 2);
        weir_msg m;
        weir_msg_init(&m);
        int rc = px ? WEIR_OK : WEIR_ENOMEM;
        for (uint64_t f = 0; !rc && f < synthetic; f++) {
            weir_synth_frame(&c, f, px);
            rc = weir_concert_encode_image(&m, WEIR_DT_U16, h, w, px,
                                           frame_numbers ? (int64_t)f : -1);
            if (!rc) rc = push(&l, &m);
        }
        if (!rc) rc = weir_concert_encode_end(&m);
        if (!rc) rc = push(&l, &m);
        free(px);
        if (rc) {
            clear(&l);
            return 1;
        }
    } else if (proto == 6) {
        /* a beamline stream: a raw capture, every message as it was recorded */
        if (!from || load_capture(from, NULL, &l, err, sizeof err)) {
            fprintf(stderr, "weir sim %s: %s\n", argv[1],
                    from ? err : "--from RAW_CAPTURE.cbors is needed");
            clear(&l);
            return from ? 1 : 2;
        }
    } else if (proto > 0 && from) {
        /* an HDF5 master file, or a capture whose messages are sent as they are */
        size_t fl = strlen(from);
        err[0] = 0;
        int rc = fl > 3 && !strcmp(from + fl - 3, ".h5")
                     ? dectris_from_h5(proto, from, denc, 7, &l, err, sizeof err)
                     : load_capture(from, stream, &l, err, sizeof err);
        if (rc) {
            fprintf(stderr, "weir sim: %s\n", err);
            clear(&l);
            return 1;
        }
    } else if (proto > 0) {
        if (dectris_series(proto, synthetic, h, w, seed, denc, 7, NULL, &l)) {
            fprintf(stderr, "weir sim: cannot encode the DECTRIS series\n");
            clear(&l);
            return 1;
        }
    } else if (from) {
        if (load_capture(from, stream, &l, err, sizeof err)) {
            fprintf(stderr, "weir sim: %s\n", err);
            clear(&l);
            return 1;
        }
    } else {
        weir_synth_config c = {
            .frames = synthetic, .height = h, .width = w, .dtype = WEIR_DT_U16, .seed = seed};
        uint16_t *px = malloc(h * w * 2);
        weir_msg m;
        weir_msg_init(&m);
        int rc = px ? weir_stins_encode_header(&m, 0, "sim/scan.h5", NULL) : WEIR_ENOMEM;
        if (!rc) rc = push(&l, &m);
        size_t shape[2] = {h, w};
        for (uint64_t f = 0; !rc && f < synthetic; f++) {
            weir_synth_frame(&c, f, px);
            rc = weir_stins_encode_image(&m, (int64_t)f + 1, (int64_t)f,
                                         (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, shape, px, comp,
                                         NULL);
            if (!rc) rc = push(&l, &m);
        }
        if (!rc) rc = weir_stins_encode_series_end(&m, (int64_t)synthetic + 1);
        if (!rc) rc = push(&l, &m);
        free(px);
        if (rc) {
            clear(&l);
            return 1;
        }
    }
    void *zctx = zmq_ctx_new();
    void *sock = zmq_socket(zctx, !strcmp(sockname, "pub") ? ZMQ_PUB : ZMQ_PUSH);
    int linger = 10000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (sndhwm > 0) zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if ((bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep)) != 0) {
        fprintf(stderr, "weir sim: cannot %s %s: %s\n", bind ? "bind" : "connect to", ep,
                zmq_strerror(zmq_errno()));
        zmq_close(sock);
        zmq_ctx_term(zctx);
        clear(&l);
        return 1;
    }
    weir_msg garbage, stale;
    weir_msg_init(&garbage);
    weir_msg_init(&stale);
    weir_msg_append(&garbage, weir_buf_copy("\x01\x02not json", 10));
    if (fstale >= 0 && (proto == 1 || proto == 2)) {
        /* an image of the previous series (6; the scan is series 7) */
        weir_array a;
        size_t shape[2] = {h, w};
        const char *names[1] = {"threshold_1"};
        if (weir_array_alloc(&a, (weir_dtype){WEIR_DT_U16, WEIR_LITTLE}, 2, shape) == 0) {
            memset((void *)a.data, 0, h * w * 2);
            if (proto == 1)
                weir_dectris_v1_encode_image(&stale, 6, fstale, &a, denc, NULL, NULL);
            else
                weir_dectris_v2_encode_image(&stale, 6, "weir-sim-old", fstale, 1, names, &a, denc,
                                             NULL);
            weir_array_release(&a);
        }
    } else if (fstale >= 0) {
        fprintf(stderr, "weir sim: stale:K needs a protocol with series ids (dectris1/2)\n");
        clear(&l);
        return 2;
    }
    uint64_t sent = 0;
    int rc = 0;
    for (uint64_t loop = 0; !rc && (loops == 0 || loop < loops); loop++) {
        long k = -1;
        for (size_t i = 0; !rc && i < l.n; i++) {
            const weir_msg *m = &l.m[i];
            int data = is_data(m, proto);
            if (data) k++;
            if (data && k == fdisc) {
                fprintf(stderr, "weir sim: disconnecting before data message %ld\n", k);
                goto done;
            }
            if (data && k == fstale && stale.nparts) rc = send_msg(sock, &stale);
            if (data && k == fdrop) continue;
            if (data && k == freorder && i + 1 < l.n && is_data(&l.m[i + 1], proto)) {
                rc = send_msg(sock, &l.m[i + 1]);
                if (!rc) rc = send_msg(sock, m);
                i++;
                k++;
                sent += 2;
                continue;
            }
            rc = send_msg(sock, data && k == fgarbage ? &garbage : m);
            if (!rc && data && k == fdup) rc = send_msg(sock, m);
            sent++;
            if (rate > 0) {
                struct timespec ts = {(time_t)(1.0 / rate),
                                      (long)((1.0 / rate - (double)(time_t)(1.0 / rate)) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
    }
done:
    fprintf(stderr, "weir sim: sent %llu messages\n", (unsigned long long)sent);
    weir_msg_clear(&garbage);
    weir_msg_clear(&stale);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    clear(&l);
    return rc ? 1 : 0;
}
