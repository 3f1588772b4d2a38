/* sardana_http.h — the HTTP side of a Sardana stream (internal to src/io). */
#ifndef WEIR_SARDANA_HTTP_H
#define WEIR_SARDANA_HTTP_H

#include <stddef.h>

typedef struct weir_sardana_http weir_sardana_http;

/* Serves the Sardana recorder's POSTs on `endpoint` ("http://HOST:PORT")
 * and forwards every JSON body as a one-part ZeroMQ message to `inproc`
 * (an inproc:// endpoint already bound by the reader, in context zctx). A
 * slow reader holds the HTTP answer back (back-pressure on the recorder). */
int weir_sardana_http_start(void *zctx, const char *endpoint, const char *inproc,
                            weir_sardana_http **out, char *err, size_t errlen);
/* Requests refused (wrong path or method, body too large, not JSON-sized). */
unsigned long weir_sardana_http_refused(weir_sardana_http *h);
void weir_sardana_http_stop(weir_sardana_http *h);

#endif
