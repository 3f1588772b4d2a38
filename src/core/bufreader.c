/* bufreader.c — allocation and release of buffer readers (bufreader.h),
 * shared by the Merlin .mib and ASI TPX3 recording readers. */
#include "bufreader.h"

#include "weir/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int weir_bufreader_new(size_t size, weir_buf *buf, const char *name, void **out)
{
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    if (!buf || size < sizeof(weir_bufreader)) return WEIR_EINVAL;
    weir_bufreader *r = calloc(1, size);
    if (!r) return WEIR_ENOMEM;
    r->name = strdup(name ? name : "<buffer>");
    if (!r->name) {
        free(r);
        return WEIR_ENOMEM;
    }
    r->buf = weir_buf_ref(buf);
    *out = r;
    return WEIR_OK;
}

int weir_bufreader_open(size_t size, const char *path, void **out, char *err, size_t errlen)
{
    weir_buf *b = NULL;
    if (!path || !out) return WEIR_EINVAL;
    *out = NULL;
    int rc = weir_buf_map_file(path, &b);
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read: %s", path, weir_strerror(rc));
        return rc;
    }
    rc = weir_bufreader_new(size, b, path, out);
    weir_buf_unref(b);
    return rc;
}

void weir_bufreader_free(void *p)
{
    weir_bufreader *r = p;
    if (!r) return;
    weir_buf_unref(r->buf);
    free(r->name);
    free(r);
}
