/* message.c — multipart messages and events (include/weir/message.h).
 *
 * Plain growable arrays; an event's streams keep the order they were added
 * in (the order of the capture's map, which dranspose preserves too). */
#include "weir/message.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>

void weir_msg_init(weir_msg *m)
{
    memset(m, 0, sizeof *m);
}

int weir_msg_append(weir_msg *m, weir_buf *part)
{
    if (!part) return WEIR_EINVAL;
    if (m->nparts == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        weir_buf **p = realloc(m->parts, cap * sizeof *p);
        if (!p) {
            weir_buf_unref(part);
            return WEIR_ENOMEM;
        }
        m->parts = p;
        m->cap = cap;
    }
    m->parts[m->nparts++] = part;
    return WEIR_OK;
}

void weir_msg_clear(weir_msg *m)
{
    for (size_t i = 0; i < m->nparts; i++)
        weir_buf_unref(m->parts[i]);
    free(m->parts);
    weir_msg_init(m);
}

size_t weir_msg_nbytes(const weir_msg *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nparts; i++)
        n += weir_buf_size(m->parts[i]);
    return n;
}

weir_event *weir_event_new(uint64_t number)
{
    weir_event *ev = calloc(1, sizeof *ev);
    if (ev) ev->number = number;
    return ev;
}

const weir_stream_packet *weir_event_stream(const weir_event *ev, const char *name)
{
    for (size_t i = 0; i < ev->nstreams; i++)
        if (strcmp(ev->streams[i].name, name) == 0) return &ev->streams[i];
    return NULL;
}

static int reserve(weir_event *ev, size_t n)
{
    if (n <= ev->cap) return WEIR_OK;
    size_t cap = ev->cap ? ev->cap * 2 : 2;
    while (cap < n)
        cap *= 2;
    weir_stream_packet *s = realloc(ev->streams, cap * sizeof *s);
    if (!s) return WEIR_ENOMEM;
    ev->streams = s;
    ev->cap = cap;
    return WEIR_OK;
}

int weir_event_add_stream(weir_event *ev, const char *name, const char *typ, weir_msg *msg)
{
    if (weir_event_stream(ev, name)) return WEIR_EDUPLICATE;
    if (reserve(ev, ev->nstreams + 1)) return WEIR_ENOMEM;
    weir_stream_packet *s = &ev->streams[ev->nstreams];
    s->name = strdup(name);
    s->typ = strdup(typ ? typ : "");
    if (!s->name || !s->typ) {
        free(s->name);
        free(s->typ);
        return WEIR_ENOMEM;
    }
    s->msg = *msg;
    weir_msg_init(msg);
    ev->nstreams++;
    return WEIR_OK;
}

int weir_event_merge(weir_event *dst, weir_event *src)
{
    int rc = WEIR_OK;
    size_t keep = 0;
    for (size_t i = 0; i < src->nstreams; i++) {
        weir_stream_packet *s = &src->streams[i];
        if (weir_event_stream(dst, s->name) || reserve(dst, dst->nstreams + 1)) {
            rc = weir_event_stream(dst, s->name) ? WEIR_EDUPLICATE : WEIR_ENOMEM;
            src->streams[keep++] = *s;
            continue;
        }
        dst->streams[dst->nstreams++] = *s;
    }
    src->nstreams = keep;
    return rc;
}

size_t weir_event_nbytes(const weir_event *ev)
{
    size_t n = 0;
    for (size_t i = 0; i < ev->nstreams; i++)
        n += weir_msg_nbytes(&ev->streams[i].msg);
    return n;
}

void weir_event_free(weir_event *ev)
{
    if (!ev) return;
    for (size_t i = 0; i < ev->nstreams; i++) {
        free(ev->streams[i].name);
        free(ev->streams[i].typ);
        weir_msg_clear(&ev->streams[i].msg);
    }
    free(ev->streams);
    free(ev->created_at);
    free(ev);
}
