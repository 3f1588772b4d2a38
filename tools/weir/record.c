/* record.c — `weir record CONFIG -o FILE`: live streams to captures.
 *
 * Default: an ingester dump (.cbors, or .cbors.gz) byte-compatible with
 * dranspose's dumper, one item per built event with its created_at time;
 * `weir replay` reads it back. With --raw: a raw capture per stream (one CBOR
 * array of byte strings per ZeroMQ message, as dranspose's test captures),
 * written as messages arrive, before any event building; FILE gets the
 * stream name inserted before the extension when there are several streams.
 * Streams over plain TCP (merlin, asi_tpx3, pcap-raw) are recorded raw as
 * their byte stream, exactly as it came (for asi_tpx3 that is the recording
 * `weir sim asi_tpx3 --from` serves); the peer closing the connection ends
 * them.
 * Records one acquisition, or with --continuous until Ctrl-C. */
#include "cli.h"

#include "weir/cbors.h"
#include "weir/error.h"
#include "weir/live.h"
#include "weir/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t rec_stop;

static void on_sig(int s)
{
    (void)s;
    rec_stop = 1;
}

static weir_live *volatile rec_live;

static void on_sig_live(int s)
{
    (void)s;
    if (rec_live) weir_live_stop(rec_live);
}

static const char *js(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* raw: every message of every stream as it arrives */
static int record_raw(const cJSON *streams, const char *out, int continuous)
{
    int n = cJSON_GetArraySize(streams), rc = 0;
    void *zctx = zmq_ctx_new();
    void **socks = calloc((size_t)n, sizeof *socks);
    weir_cbors_writer **w = calloc((size_t)n, sizeof *w);
    zmq_pollitem_t *items = calloc((size_t)n, sizeof *items);
    int *ended = calloc((size_t)n, sizeof *ended);
    FILE **bytes = calloc((size_t)n, sizeof *bytes); /* TCP streams: the raw byte stream */
    int *pandas = calloc((size_t)n, sizeof *pandas),
        *connects = calloc((size_t)n, sizeof *connects);
    uint64_t total = 0;
    if (!socks || !w || !items || !ended || !bytes || !pandas || !connects) rc = WEIR_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(streams, i);
        const char *sock = js(s, "socket"), *ep = js(s, "endpoint"), *name = js(s, "name");
        const char *proto = js(s, "protocol");
        int tcp = proto && (!strcmp(proto, "merlin") || !strcmp(proto, "asi_tpx3") ||
                            !strcmp(proto, "pcap-raw"));
        pandas[i] = proto && !strcmp(proto, "pcap-raw");
        socks[i] = zmq_socket(zctx, tcp                            ? ZMQ_STREAM
                                    : sock && !strcmp(sock, "sub") ? ZMQ_SUB
                                                                   : ZMQ_PULL);
        if (sock && !strcmp(sock, "sub")) zmq_setsockopt(socks[i], ZMQ_SUBSCRIBE, "", 0);
        int z = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "bind"))
                    ? zmq_bind(socks[i], ep)
                    : zmq_connect(socks[i], ep);
        if (!ep || !name || z) {
            fprintf(stderr, "weir record: stream %d: cannot open %s\n", i,
                    ep ? ep : "(no endpoint)");
            rc = WEIR_EIO;
            break;
        }
        char path[4096];
        const char *dot = strstr(out, ".cbors");
        if (n == 1 || !dot)
            snprintf(path, sizeof path, "%s", out);
        else
            snprintf(path, sizeof path, "%.*s-%s%s", (int)(dot - out), out, name, dot);
        if (tcp) {
            bytes[i] = fopen(path, "wb");
            if (!bytes[i]) {
                fprintf(stderr, "weir record: cannot write %s\n", path);
                rc = WEIR_EIO;
                break;
            }
        } else if ((rc = weir_cbors_writer_open(path, 0, &w[i]))) {
            fprintf(stderr, "weir record: cannot write %s\n", path);
            break;
        }
        items[i] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    int open = n;
    while (!rc && !rec_stop && open > 0) {
        if (zmq_poll(items, n, 200) <= 0) continue;
        for (int i = 0; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN)) continue;
            if (bytes[i]) { /* [peer id, bytes]; empty bytes: a connect or close */
                zmq_msg_t id, d;
                zmq_msg_init(&id);
                zmq_msg_init(&d);
                if (zmq_msg_recv(&id, socks[i], 0) < 0 || zmq_msg_recv(&d, socks[i], 0) < 0) {
                    rc = WEIR_EIO;
                } else if (zmq_msg_size(&d) == 0) {
                    if (connects[i]++ == 0) {
                        /* the PandA starts sending after a newline */
                        if (pandas[i]) {
                            zmq_send(socks[i], zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
                            zmq_send(socks[i], "\n", 1, 0);
                        }
                    } else if (!continuous && !ended[i]) {
                        ended[i] = 1;
                        open--;
                    }
                } else {
                    if (fwrite(zmq_msg_data(&d), 1, zmq_msg_size(&d), bytes[i]) != zmq_msg_size(&d))
                        rc = WEIR_EIO;
                    total++;
                }
                zmq_msg_close(&id);
                zmq_msg_close(&d);
                continue;
            }
            weir_msg m;
            weir_msg_init(&m);
            int more = 1;
            while (more && !rc) {
                zmq_msg_t z;
                zmq_msg_init(&z);
                if (zmq_msg_recv(&z, socks[i], 0) < 0) {
                    rc = WEIR_EIO;
                    break;
                }
                more = zmq_msg_more(&z);
                rc = weir_msg_append(&m, weir_buf_copy(zmq_msg_data(&z), zmq_msg_size(&z)));
                zmq_msg_close(&z);
            }
            if (!rc) rc = weir_cbors_write_raw(w[i], &m);
            total++;
            /* a STINS series_end ends this stream's acquisition */
            if (!continuous && m.nparts && weir_buf_size(m.parts[0]) < 4096) {
                cJSON *j = cJSON_ParseWithLength((const char *)weir_buf_data(m.parts[0]),
                                                 weir_buf_size(m.parts[0]));
                const char *ht = js(j, "htype");
                if (ht && !strcmp(ht, "series_end") && !ended[i]) {
                    ended[i] = 1;
                    open--;
                }
                cJSON_Delete(j);
            }
            weir_msg_clear(&m);
        }
    }
    for (int i = 0; i < n; i++) {
        if (w && w[i] && weir_cbors_writer_close(w[i]) && !rc) rc = WEIR_EIO;
        if (bytes && bytes[i] && fclose(bytes[i]) && !rc) rc = WEIR_EIO;
        if (socks && socks[i]) zmq_close(socks[i]);
    }
    zmq_ctx_term(zctx);
    fprintf(stderr, "weir record: %" PRIu64 " messages written\n", total);
    free(socks);
    free(w);
    free(items);
    free(ended);
    free(bytes);
    free(pandas);
    free(connects);
    return rc ? 1 : 0;
}

int cmd_record(int argc, char **argv)
{
    const char *cfgpath = NULL, *out = NULL;
    int raw = 0, continuous = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: weir record CONFIG.json -o FILE.cbors[.gz] [--raw] [--continuous]\n\n"
                   "Records the streams of a `weir run` config (only \"streams\" is used):\n"
                   "by default as a dranspose ingester dump of the built events, with\n"
                   "created_at; with --raw as raw captures, one per stream.\n");
            return 0;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--raw")) {
            raw = 1;
        } else if (!strcmp(argv[i], "--continuous")) {
            continuous = 1;
        } else if (argv[i][0] != '-' && !cfgpath) {
            cfgpath = argv[i];
        } else {
            fprintf(stderr, "weir record: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!cfgpath || !out) {
        fprintf(stderr, "usage: weir record CONFIG.json -o FILE.cbors [--raw] [--continuous]\n");
        return 2;
    }
    cJSON *cfg = cli_read_json("record", cfgpath);
    if (!cfg) return 1;
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(cfg, "streams");
    int n = cJSON_IsArray(streams) ? cJSON_GetArraySize(streams) : 0;
    if (!n) {
        fprintf(stderr, "weir record: %s: no \"streams\"\n", cfgpath);
        cJSON_Delete(cfg);
        return 1;
    }
    if (raw) {
        int rc = record_raw(streams, out, continuous);
        cJSON_Delete(cfg);
        return rc;
    }
    weir_stream_cfg *sc = calloc((size_t)n, sizeof *sc);
    for (int i = 0; sc && i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(streams, i);
        const char *sock = js(s, "socket");
        sc[i] = (weir_stream_cfg){js(s, "name"),
                                  js(s, "protocol"),
                                  js(s, "endpoint"),
                                  sock && !strcmp(sock, "sub"),
                                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "bind")),
                                  0,
                                  0,
                                  0};
    }
    char err[512];
    weir_live *live = NULL;
    weir_cbors_writer *w = NULL;
    int rc = 1;
    if (!sc || weir_live_open(sc, (size_t)n, 16, &live, err, sizeof err)) {
        fprintf(stderr, "weir record: %s\n", err);
        goto out;
    }
    if (weir_cbors_writer_open(out, 1, &w)) {
        fprintf(stderr, "weir record: cannot write %s\n", out);
        goto out;
    }
    rec_live = live;
    signal(SIGINT, on_sig_live);
    signal(SIGTERM, on_sig_live);
    uint64_t events = 0;
    rc = 0;
    do {
        weir_source src = weir_live_source(live);
        weir_event *ev;
        while (!rc && src.next(src.ud, &ev) == 0 && ev) {
            char now[40];
            rc = weir_cbors_write_event(w, ev, weir_cbors_now(now, sizeof now)) ? 1 : 0;
            weir_event_free(ev);
            events++;
        }
    } while (!rc && continuous && !weir_live_stopped(live));
    fprintf(stderr, "weir record: %" PRIu64 " events written to %s\n", events, out);
    weir_live_report(live, stderr);
    if (!rc && weir_live_rejected(live)) rc = 3;
out:
    rec_live = NULL;
    if (w && weir_cbors_writer_close(w)) rc = 1;
    weir_live_close(live);
    free(sc);
    cJSON_Delete(cfg);
    return rc;
}
