#!/usr/bin/python3
"""An independent STINS sender for weir's tests (pyzmq + json, not weir code).

Sends on a PUSH socket: one image message before the series start (a
receiver must discard it), the header, N uint16 images of HxW whose pixel
(i, j) of frame f is (7*i + 3*j + 5*f) % 23, and series_end -- JSON written
with Python's default separators, as dranspose's test sender does.

usage: stins_sender.py ENDPOINT FRAMES H W [--bind] [--filename F]
"""
import json
import struct
import sys

import zmq


def main():
    endpoint, frames, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    bind = "--bind" in sys.argv
    filename = "live/scan.h5"
    if "--filename" in sys.argv:
        filename = sys.argv[sys.argv.index("--filename") + 1]
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 10000)
    (s.bind if bind else s.connect)(endpoint)

    def image(f, msg_number):
        hdr = {"htype": "image", "frame": f, "shape": [h, w], "type": "uint16",
               "compression": "none", "msg_number": msg_number}
        px = [(7 * i + 3 * j + 5 * f) % 23 for i in range(h) for j in range(w)]
        return [json.dumps(hdr).encode(), struct.pack("<%dH" % (h * w), *px)]

    s.send_multipart(image(99, 99))  # before the series start: must be discarded
    s.send_multipart([json.dumps({"htype": "header", "filename": filename,
                                  "msg_number": 0}).encode()])
    for f in range(frames):
        s.send_multipart(image(f, f + 1))
    s.send_multipart([json.dumps({"htype": "series_end", "msg_number": frames + 1}).encode()])
    s.close()
    ctx.term()


if __name__ == "__main__":
    main()
