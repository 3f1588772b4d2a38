/* buffer.c — reference-counted byte buffers (include/weir/buffer.h).
 *
 * Three flavours share one struct: heap buffers (data allocated together with
 * the header, 64-byte aligned for SIMD codecs), wrapped foreign memory with a
 * release callback (mmap'd files, later ZMQ messages), and views holding a
 * reference to a parent. The count is atomic so events can be shared between
 * worker threads (the broadcast first event) without locks. */
#include "weir/buffer.h"

#include "weir/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct weir_buf {
    atomic_long refs;
    uint8_t *data;
    size_t size;
    weir_buf *parent;            /* views */
    weir_buf_release_fn release; /* wrapped */
    void *opaque;
    int owns_heap;
};

weir_buf *weir_buf_new(size_t size)
{
    weir_buf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    size_t alloc = size ? (size + 63) & ~(size_t)63 : 64;
    if (alloc < size) goto fail; /* overflow */
    b->data = aligned_alloc(64, alloc);
    if (!b->data) goto fail;
    b->size = size;
    b->owns_heap = 1;
    atomic_init(&b->refs, 1);
    return b;
fail:
    free(b);
    return NULL;
}

weir_buf *weir_buf_copy(const void *data, size_t size)
{
    weir_buf *b = weir_buf_new(size);
    if (b && size) memcpy(b->data, data, size);
    return b;
}

weir_buf *weir_buf_wrap(void *data, size_t size, weir_buf_release_fn release, void *opaque)
{
    weir_buf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->data = data;
    b->size = size;
    b->release = release;
    b->opaque = opaque;
    atomic_init(&b->refs, 1);
    return b;
}

weir_buf *weir_buf_view(weir_buf *parent, size_t off, size_t len)
{
    if (!parent || off > parent->size || len > parent->size - off) return NULL;
    weir_buf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->data = parent->data + off;
    b->size = len;
    b->parent = weir_buf_ref(parent);
    atomic_init(&b->refs, 1);
    return b;
}

static void unmap_release(void *opaque, void *data, size_t size)
{
    (void)opaque;
    if (size) munmap(data, size);
}

int weir_buf_map_file(const char *path, weir_buf **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? WEIR_ENOENT : WEIR_EIO;
    struct stat st;
    int rc = WEIR_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto close_fd;
    size_t size = (size_t)st.st_size;
    void *p = NULL;
    if (size) {
        /* MAP_POPULATE maps the whole (page-cached) file up front: faulting it in
         * 4 KiB at a time while replaying costs more than reading the pixels. */
        p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) goto close_fd;
        madvise(p, size, MADV_SEQUENTIAL);
    }
    *out = weir_buf_wrap(p, size, unmap_release, NULL);
    if (!*out) {
        if (size) munmap(p, size);
        rc = WEIR_ENOMEM;
        goto close_fd;
    }
    rc = WEIR_OK;
close_fd:
    close(fd);
    return rc;
}

weir_buf *weir_buf_ref(weir_buf *b)
{
    if (b) atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void weir_buf_unref(weir_buf *b)
{
    while (b) {
        if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
        weir_buf *parent = b->parent;
        if (b->owns_heap)
            free(b->data);
        else if (b->release)
            b->release(b->opaque, b->data, b->size);
        free(b);
        b = parent; /* drop the view's reference without recursion */
    }
}

const uint8_t *weir_buf_data(const weir_buf *b)
{
    return b->data;
}

uint8_t *weir_buf_mutable(weir_buf *b)
{
    return b->owns_heap ? b->data : NULL;
}

size_t weir_buf_size(const weir_buf *b)
{
    return b->size;
}

long weir_buf_refcount(const weir_buf *b)
{
    return atomic_load(&b->refs);
}
