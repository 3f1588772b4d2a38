/* bufreader.h — what every reader of a whole buffer (a mapped file or
 * memory) shares: one reference to the buffer, its name for messages, the
 * read position and the count of items read. A format's reader struct has
 * a weir_bufreader as its FIRST member, so the helpers below can allocate
 * and free it. Internal to libweir. */
#ifndef WEIR_BUFREADER_H
#define WEIR_BUFREADER_H

#include "weir/buffer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    weir_buf *buf; /* own reference */
    char *name;    /* for messages; "<buffer>" when none was given */
    size_t pos;    /* byte offset of the next item */
    uint64_t index;
} weir_bufreader;

/* Allocates `size` zeroed bytes (a struct starting with a weir_bufreader)
 * over buf (a new reference) named name; WEIR_EINVAL, WEIR_ENOMEM. */
int weir_bufreader_new(size_t size, weir_buf *buf, const char *name, void **out);
/* The same over the file at path, mapped read-only; err names the file. */
int weir_bufreader_open(size_t size, const char *path, void **out, char *err, size_t errlen);
/* Drops the buffer and the name and frees r (NULL is fine). */
void weir_bufreader_free(void *r);

#endif
