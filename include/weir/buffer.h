/* weir/buffer.h — reference-counted byte buffers.
 *
 * A weir_buf is an immutable run of bytes with an atomic reference count.
 * It either owns heap memory, wraps foreign memory with a release callback
 * (an mmap'd file, later a ZMQ message), or is a view into a parent buffer
 * (holding one reference to the parent). Views make zero-copy decoding
 * possible: a frame inside an mmap'd capture is a view, never a copy.
 *
 * Ownership: every function returning a weir_buf* gives the caller one
 * reference ("transfer full"); weir_buf_unref() drops it. ref/unref are
 * thread-safe; the bytes are only writable by whoever created a buffer with
 * weir_buf_new() while they hold the sole reference. */
#ifndef WEIR_BUFFER_H
#define WEIR_BUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct weir_buf weir_buf;

typedef void (*weir_buf_release_fn)(void *opaque, void *data, size_t size);

/* New heap buffer of size bytes (uninitialised, 64-byte aligned). NULL on OOM. */
weir_buf *weir_buf_new(size_t size);
/* New heap buffer holding a copy of data. NULL on OOM. */
weir_buf *weir_buf_copy(const void *data, size_t size);
/* Wraps foreign memory; release(opaque, data, size) runs when the last
 * reference goes (release may be NULL for static memory). NULL on OOM. */
weir_buf *weir_buf_wrap(void *data, size_t size, weir_buf_release_fn release, void *opaque);
/* A view of [off, off+len) of parent; takes its own reference to parent.
 * NULL if the range is outside parent or on OOM. */
weir_buf *weir_buf_view(weir_buf *parent, size_t off, size_t len);
/* Maps a whole file read-only. Returns 0 or WEIR_ENOENT / WEIR_EIO. An empty
 * file gives an empty buffer. */
int weir_buf_map_file(const char *path, weir_buf **out);

weir_buf *weir_buf_ref(weir_buf *b);
void weir_buf_unref(weir_buf *b);

const uint8_t *weir_buf_data(const weir_buf *b);
/* Writable pointer: only valid on buffers from weir_buf_new() or copy(). */
uint8_t *weir_buf_mutable(weir_buf *b);
size_t weir_buf_size(const weir_buf *b);
/* Current reference count (for tests and diagnostics). */
long weir_buf_refcount(const weir_buf *b);

#endif
