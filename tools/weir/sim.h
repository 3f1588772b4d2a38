/* sim.h — pieces of `weir sim` shared by sim.c (passive senders) and
 * sim_active.c (detectors driven through their control APIs). */
#ifndef WEIR_SIM_H
#define WEIR_SIM_H

#include "weir/dectris.h"
#include "weir/message.h"

#include <stddef.h>
#include <stdint.h>

/* A list of messages to send, in order. */
typedef struct {
    weir_msg *m;
    size_t n, cap;
} msglist;

/* Moves *m to the end of l (m is left empty). */
int push(msglist *l, weir_msg *m);
void clear(msglist *l);
/* Sends every part of m (ZMQ multipart). */
int send_msg(void *sock, const weir_msg *m);

/* A synthetic DECTRIS series (v1 or v2) with series id `series`: start
 * (v1: with header_detail "none", "basic" (NULL) or "all"), n images of
 * synthetic uint16 frames in encoding enc, end. */
int dectris_series(int version, uint64_t n, size_t h, size_t w, uint64_t seed,
                   weir_dectris_encoding enc, int64_t series, const char *header_detail,
                   msglist *l);
/* The same from a NeXus master file and its data files. */
int dectris_from_h5(int version, const char *master, weir_dectris_encoding enc, int64_t series,
                    msglist *l, char *err, size_t el);

/* The DECTRIS simulator behind a SIMPLON REST stub on `http_port`: nothing
 * is sent until a client arms; then the series (from `from` or synthetic
 * frames, series id = the arm's sequence id) goes out on the ZeroMQ
 * endpoint: the header at arm, nimages frames per trigger (ints/inte), or
 * everything at once (exts/exte), and the end after the last. */
typedef struct {
    int version; /* 1 or 2 */
    int http_port;
    const char *endpoint, *from, *socket;
    int bind;
    uint64_t synthetic, seed;
    size_t h, w;
    weir_dectris_encoding enc;
    uint64_t series; /* series to serve before exiting; 0 = until killed */
} sim_simplon_opts;
int sim_dectris_simplon(const sim_simplon_opts *o);

#endif
