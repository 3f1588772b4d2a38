/* merlin_ctl.c — the Merlin control port: parser, client and simulator
 * server (weir/merlin_ctl.h).
 *
 * One parser serves both directions: it finds "MPX,", 1 to 10 length
 * digits and a comma, takes len - 1 payload bytes and splits them on
 * commas (TYPE, NAME, then the value; in replies the last field is the rc,
 * so a value may itself hold commas). The +1 in the length is what Merlin
 * sends; LiberTEM's simulator forgets it in replies, which shows as a reply
 * whose payload ends in a comma, so the parser then takes one byte more.
 *
 * The client is a blocking exchange with poll() timeouts: send the request,
 * read until one reply for the same TYPE and NAME has arrived (stale
 * replies of an earlier timed-out request are skipped). The server is one
 * thread polling a wake-up pipe, the listening socket and its clients; the
 * parameter table lives in the server context behind a mutex, and the
 * owner's callbacks run on that thread without the mutex held. */
#include "weir/merlin_ctl.h"

#include "weir/error.h"
#include "weir/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define COMP "merlin-ctl"
#define PREFIX_MAX 15 /* "MPX," + 10 digits + "," */
#define BUF_MAX (PREFIX_MAX + WEIR_MERLIN_CTL_MAX_PAYLOAD + 8)
#define MAX_CLIENTS 16

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Printable excerpt of d[0..n) for messages (at most 24 bytes, escaped). */
static void excerpt(const uint8_t *d, size_t n, char out[104])
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n && i < 24; i++) {
        if (d[i] >= 0x20 && d[i] < 0x7f && d[i] != '"' && d[i] != '\\')
            out[o++] = (char)d[i];
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", d[i]);
    }
    if (n > 24) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
}

const char *weir_merlin_ctl_type_name(weir_merlin_ctl_type t)
{
    switch (t) {
    case WEIR_MERLIN_CTL_GET:
        return "GET";
    case WEIR_MERLIN_CTL_SET:
        return "SET";
    case WEIR_MERLIN_CTL_CMD:
        return "CMD";
    }
    return "?";
}

const char *weir_merlin_rc_name(int rc)
{
    switch (rc) {
    case WEIR_MERLIN_RC_OK:
        return "ok";
    case WEIR_MERLIN_RC_BUSY:
        return "busy";
    case WEIR_MERLIN_RC_UNRECOGNISED:
        return "not recognised";
    case WEIR_MERLIN_RC_OUT_OF_RANGE:
        return "parameter out of range";
    }
    return "unknown return code";
}

/* ------------------------------------------------------------------ parser */

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\r' || c == '\n' || c == '\t' || c == 0;
}

static int type_of(const uint8_t *p, size_t n, weir_merlin_ctl_type *t)
{
    if (n != 3) return -1;
    if (!strncasecmp((const char *)p, "GET", 3))
        *t = WEIR_MERLIN_CTL_GET;
    else if (!strncasecmp((const char *)p, "SET", 3))
        *t = WEIR_MERLIN_CTL_SET;
    else if (!strncasecmp((const char *)p, "CMD", 3))
        *t = WEIR_MERLIN_CTL_CMD;
    else
        return -1;
    return 0;
}

static const uint8_t *find_comma(const uint8_t *p, const uint8_t *end)
{
    return memchr(p, ',', (size_t)(end - p));
}

/* Splits payload p[0..n) into m. */
static int parse_payload(const uint8_t *p, size_t n, int reply, weir_merlin_ctl_msg *m, char *err,
                         size_t errlen)
{
    char ex[104];
    const uint8_t *end = p + n;
    if (memchr(p, 0, n)) {
        excerpt(p, n, ex);
        return fail(err, errlen, WEIR_EFORMAT, "Merlin control message %s holds a NUL byte", ex);
    }
    const uint8_t *c1 = find_comma(p, end);
    if (!c1 || type_of(p, (size_t)(c1 - p), &m->type)) {
        excerpt(p, n, ex);
        return fail(err, errlen, WEIR_EFORMAT,
                    "Merlin control message %s: expected GET, SET or CMD then a comma", ex);
    }
    const uint8_t *name = c1 + 1;
    const uint8_t *c2 = find_comma(name, end);
    const uint8_t *name_end = c2 ? c2 : end;
    size_t nl = (size_t)(name_end - name);
    if (nl == 0 || nl >= WEIR_MERLIN_CTL_NAME_MAX) {
        excerpt(p, n, ex);
        return fail(err, errlen, WEIR_EFORMAT,
                    "Merlin control message %s: the name must have 1 to %d characters", ex,
                    WEIR_MERLIN_CTL_NAME_MAX - 1);
    }
    memcpy(m->name, name, nl);
    m->name[nl] = 0;
    const uint8_t *val = NULL, *val_end = NULL;
    if (!reply) {
        if (c2) {
            val = c2 + 1;
            val_end = end;
        }
    } else {
        if (!c2) {
            excerpt(p, n, ex);
            return fail(err, errlen, WEIR_EFORMAT,
                        "Merlin control reply %s: no return code after the name", ex);
        }
        const uint8_t *last = c2;
        for (const uint8_t *q = c2 + 1; q < end; q++)
            if (*q == ',') last = q;
        size_t rl = (size_t)(end - (last + 1));
        int rc = 0;
        if (rl == 0 || rl > 3) rc = -1;
        for (size_t i = 0; rc >= 0 && i < rl; i++) {
            uint8_t d = last[1 + i];
            if (d < '0' || d > '9')
                rc = -1;
            else
                rc = rc * 10 + (d - '0');
        }
        if (rc < 0) {
            excerpt(p, n, ex);
            return fail(err, errlen, WEIR_EFORMAT,
                        "Merlin control reply %s: the last field must be the return code", ex);
        }
        m->rc = rc;
        if (last != c2) {
            val = c2 + 1;
            val_end = last;
        }
    }
    if (val) {
        size_t vl = (size_t)(val_end - val);
        if (vl > WEIR_MERLIN_CTL_VALUE_MAX)
            return fail(err, errlen, WEIR_ERANGE,
                        "Merlin control message %s: value of %zu bytes (at most %d)", m->name, vl,
                        WEIR_MERLIN_CTL_VALUE_MAX);
        memcpy(m->value, val, vl);
        m->value[vl] = 0;
        m->has_value = 1;
    }
    return WEIR_OK;
}

static int parse_msg(const uint8_t *d, size_t len, int reply, weir_merlin_ctl_msg *m,
                     size_t *consumed, char *err, size_t errlen)
{
    static const char magic[4] = {'M', 'P', 'X', ','};
    char ex[104];
    if (!m || !consumed || (!d && len)) return WEIR_EINVAL;
    memset(m, 0, sizeof *m);
    m->value[0] = 0;
    *consumed = 0;
    size_t i = 0;
    while (i < len && is_space(d[i]))
        i++;
    for (size_t k = 0; k < 4; k++) {
        if (i + k >= len) return WEIR_ETRUNCATED;
        uint8_t c = d[i + k];
        if (c >= 'a' && c <= 'z') c = (uint8_t)(c - 32);
        if (c != (uint8_t)magic[k]) {
            excerpt(d + i, len - i, ex);
            return fail(err, errlen, WEIR_EFORMAT,
                        "expected a Merlin control message (\"MPX,\"), found %s", ex);
        }
    }
    size_t p = i + 4;
    uint64_t n = 0;
    size_t nd = 0;
    while (p < len && d[p] >= '0' && d[p] <= '9' && nd <= 10) {
        n = n * 10 + (uint64_t)(d[p] - '0');
        nd++;
        p++;
    }
    if (p == len && nd <= 10) return WEIR_ETRUNCATED;
    if (nd == 0 || nd > 10 || d[p] != ',') {
        excerpt(d + i, len - i, ex);
        return fail(err, errlen, WEIR_EFORMAT,
                    "Merlin control message %s: expected 1 to 10 length digits and a comma", ex);
    }
    if (n < 2) {
        excerpt(d + i, len - i, ex);
        return fail(err, errlen, WEIR_EFORMAT,
                    "Merlin control message %s: length %llu leaves no payload", ex,
                    (unsigned long long)n);
    }
    if (n - 1 > WEIR_MERLIN_CTL_MAX_PAYLOAD)
        return fail(err, errlen, WEIR_ERANGE,
                    "Merlin control message announces %llu bytes (at most %d)",
                    (unsigned long long)n, WEIR_MERLIN_CTL_MAX_PAYLOAD);
    size_t ps = p + 1;
    size_t pl = (size_t)n - 1;
    if (len - ps < pl) return WEIR_ETRUNCATED;
    if (reply) {
        /* a reply ends in its rc: a trailing comma means the length left out the +1 */
        if (d[ps + pl - 1] == ',') {
            if (len - ps < pl + 1) return WEIR_ETRUNCATED;
            pl++;
        }
    } else if (len - ps > pl) {
        uint8_t c = d[ps + pl];
        if (c != 'M' && c != 'm' && !is_space(c) && pl < WEIR_MERLIN_CTL_MAX_PAYLOAD) pl++;
    }
    int rc = parse_payload(d + ps, pl, reply, m, err, errlen);
    if (rc) return rc;
    *consumed = ps + pl;
    return WEIR_OK;
}

int weir_merlin_ctl_parse_request(const uint8_t *data, size_t len, weir_merlin_ctl_msg *m,
                                  size_t *consumed, char *err, size_t errlen)
{
    return parse_msg(data, len, 0, m, consumed, err, errlen);
}

int weir_merlin_ctl_parse_reply(const uint8_t *data, size_t len, weir_merlin_ctl_msg *m,
                                size_t *consumed, char *err, size_t errlen)
{
    return parse_msg(data, len, 1, m, consumed, err, errlen);
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= WEIR_MERLIN_CTL_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == ',' || (unsigned char)name[i] < 0x20) return 0;
    return 1;
}

/* Frames payload (already in out + PREFIX_MAX) by writing the prefix. */
static int frame(char *out, size_t outlen, size_t pl)
{
    char pre[PREFIX_MAX + 1];
    snprintf(pre, sizeof pre, "MPX,%010zu,", pl + 1);
    memcpy(out, pre, PREFIX_MAX);
    return (int)(PREFIX_MAX + pl);
}

static int format_msg(char *out, size_t outlen, weir_merlin_ctl_type t, const char *name,
                      const char *value, int rc)
{
    if (!out || !name_ok(name) || t < WEIR_MERLIN_CTL_GET || t > WEIR_MERLIN_CTL_CMD)
        return WEIR_EINVAL;
    if (value && strlen(value) > WEIR_MERLIN_CTL_VALUE_MAX) return WEIR_ERANGE;
    if (outlen <= PREFIX_MAX) return WEIR_ERANGE;
    int pl;
    const char *tn = weir_merlin_ctl_type_name(t);
    if (rc < 0)
        pl = value ? snprintf(out + PREFIX_MAX, outlen - PREFIX_MAX, "%s,%s,%s", tn, name, value)
                   : snprintf(out + PREFIX_MAX, outlen - PREFIX_MAX, "%s,%s", tn, name);
    else if (value)
        pl = snprintf(out + PREFIX_MAX, outlen - PREFIX_MAX, "%s,%s,%s,%d", tn, name, value, rc);
    else
        pl = snprintf(out + PREFIX_MAX, outlen - PREFIX_MAX, "%s,%s,%d", tn, name, rc);
    if (pl < 0 || (size_t)pl >= outlen - PREFIX_MAX || pl > WEIR_MERLIN_CTL_MAX_PAYLOAD)
        return WEIR_ERANGE;
    return frame(out, outlen, (size_t)pl);
}

int weir_merlin_ctl_format_request(char *out, size_t outlen, weir_merlin_ctl_type t,
                                   const char *name, const char *value)
{
    return format_msg(out, outlen, t, name, value, -1);
}

int weir_merlin_ctl_format_reply(char *out, size_t outlen, weir_merlin_ctl_type t, const char *name,
                                 const char *value, int rc)
{
    if (rc < 0 || rc > 999) return WEIR_EINVAL;
    return format_msg(out, outlen, t, name, t == WEIR_MERLIN_CTL_GET ? (value ? value : "") : NULL,
                      rc);
}

/* ------------------------------------------------------------------ client */

struct weir_merlin_ctl {
    int fd;
    int timeout_ms;
    char peer[300];
    uint8_t buf[BUF_MAX];
    size_t have;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r > 0) return 1;
    }
}

int weir_merlin_ctl_connect(const char *host, int port, int timeout_ms, weir_merlin_ctl **out,
                            char *err, size_t errlen)
{
    if (!out || !host || port <= 0 || port > 65535) return WEIR_EINVAL;
    *out = NULL;
    if (timeout_ms <= 0) timeout_ms = 5000;
    int64_t deadline = now_ms() + timeout_ms;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, ports, &hints, &ai);
    if (g)
        return fail(err, errlen, WEIR_EIO, "Merlin control %s:%d: cannot resolve: %s", host, port,
                    gai_strerror(g));
    int rc = WEIR_EIO, fd = -1, last_errno = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = 0;
            else
                errno = w == 0 ? ETIMEDOUT : (soerr ? soerr : errno);
        }
        if (r == 0) break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return fail(err, errlen, WEIR_EIO, "Merlin control %s:%d: cannot connect: %s", host, port,
                    strerror(last_errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    weir_merlin_ctl *c = calloc(1, sizeof *c);
    if (!c) {
        rc = WEIR_ENOMEM;
        goto close_fd;
    }
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    *out = c;
    return WEIR_OK;
close_fd:
    close(fd);
    return rc;
}

void weir_merlin_ctl_close(weir_merlin_ctl *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c);
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(fd, POLLOUT, deadline);
            if (r == 0) errno = ETIMEDOUT;
            if (r <= 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

int weir_merlin_ctl_request(weir_merlin_ctl *c, weir_merlin_ctl_type t, const char *name,
                            const char *value, weir_merlin_ctl_msg *reply, char *err, size_t errlen)
{
    char req[BUF_MAX];
    weir_merlin_ctl_msg tmp;
    weir_merlin_ctl_msg *m = reply ? reply : &tmp;
    if (!c) return WEIR_EINVAL;
    const char *tn = weir_merlin_ctl_type_name(t);
    if (!value && t != WEIR_MERLIN_CTL_SET) value = "0"; /* LiberTEM's dummy value */
    int n = weir_merlin_ctl_format_request(req, sizeof req, t, name, value);
    if (n < 0)
        return fail(err, errlen, n, "Merlin control %s %s: cannot build the request: %s", tn,
                    name ? name : "(null)", weir_strerror(n));
    if (c->fd < 0)
        return fail(err, errlen, WEIR_EIO, "Merlin control %s %s: %s: connection lost earlier", tn,
                    name, c->peer);
    int64_t deadline = now_ms() + c->timeout_ms;
    /* drop what is left of replies nobody waited for */
    for (;;) {
        ssize_t r = recv(c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT);
        if (r <= 0) break;
    }
    c->have = 0;
    if (send_all(c->fd, req, (size_t)n, deadline))
        return fail(err, errlen, WEIR_EIO, "Merlin control %s %s: %s: send failed: %s", tn, name,
                    c->peer, strerror(errno));
    for (;;) {
        size_t used = 0;
        char perr[256] = "";
        int rc = weir_merlin_ctl_parse_reply(c->buf, c->have, m, &used, perr, sizeof perr);
        if (rc == 0) {
            memmove(c->buf, c->buf + used, c->have - used);
            c->have -= used;
            if (m->type == t && !strcasecmp(m->name, name)) return WEIR_OK;
            WEIR_LOGD(COMP, "%s: skipping a stale reply %s %s", c->peer,
                      weir_merlin_ctl_type_name(m->type), m->name);
            continue;
        }
        if (rc != WEIR_ETRUNCATED)
            return fail(err, errlen, rc, "Merlin control %s %s: %s: bad reply: %s", tn, name,
                        c->peer, perr);
        if (c->have == sizeof c->buf)
            return fail(err, errlen, WEIR_EFORMAT,
                        "Merlin control %s %s: %s: reply longer than %zu bytes", tn, name, c->peer,
                        sizeof c->buf);
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w == 0)
            return fail(err, errlen, WEIR_EIO, "Merlin control %s %s: %s: no reply within %d ms",
                        tn, name, c->peer, c->timeout_ms);
        if (w < 0)
            return fail(err, errlen, WEIR_EIO, "Merlin control %s %s: %s: poll: %s", tn, name,
                        c->peer, strerror(errno));
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(c->fd);
            c->fd = -1;
            return fail(err, errlen, WEIR_EIO, "Merlin control %s %s: %s: %s", tn, name, c->peer,
                        e ? strerror(e) : "connection closed by the detector");
        }
        c->have += (size_t)r;
    }
}

static int rc_error(int rc)
{
    switch (rc) {
    case WEIR_MERLIN_RC_UNRECOGNISED:
        return WEIR_ENOTFOUND;
    case WEIR_MERLIN_RC_OUT_OF_RANGE:
        return WEIR_ERANGE;
    default:
        return WEIR_EIO;
    }
}

static int exchange(weir_merlin_ctl *c, weir_merlin_ctl_type t, const char *name, const char *value,
                    weir_merlin_ctl_msg *m, int *rcp, char *err, size_t errlen)
{
    if (rcp) *rcp = -1;
    int rc = weir_merlin_ctl_request(c, t, name, value, m, err, errlen);
    if (rc) return rc;
    if (rcp) *rcp = m->rc;
    if (m->rc == WEIR_MERLIN_RC_OK) return WEIR_OK;
    const char *tn = weir_merlin_ctl_type_name(t);
    if (t == WEIR_MERLIN_CTL_SET)
        return fail(err, errlen, rc_error(m->rc), "Merlin SET %s %s: return code %d (%s)", name,
                    value, m->rc, weir_merlin_rc_name(m->rc));
    return fail(err, errlen, rc_error(m->rc), "Merlin %s %s: return code %d (%s)", tn, name, m->rc,
                weir_merlin_rc_name(m->rc));
}

int weir_merlin_ctl_get(weir_merlin_ctl *c, const char *name, char *value, size_t valuelen,
                        int *rcp, char *err, size_t errlen)
{
    weir_merlin_ctl_msg *m = malloc(sizeof *m);
    if (!m) return WEIR_ENOMEM;
    int rc = exchange(c, WEIR_MERLIN_CTL_GET, name, NULL, m, rcp, err, errlen);
    if (rc) goto free_msg;
    if (!m->has_value) {
        rc = fail(err, errlen, WEIR_EFORMAT, "Merlin GET %s: the reply has no value", name);
        goto free_msg;
    }
    if (value) {
        size_t n = strlen(m->value);
        if (n >= valuelen) {
            rc = fail(err, errlen, WEIR_ERANGE, "Merlin GET %s: value of %zu bytes does not fit",
                      name, n);
            goto free_msg;
        }
        memcpy(value, m->value, n + 1);
    }
free_msg:
    free(m);
    return rc;
}

static int parse_ll(const char *s, long long *v)
{
    char *end;
    errno = 0;
    while (*s == ' ')
        s++;
    if (!*s) return -1;
    long long x = strtoll(s, &end, 10);
    if (errno) return -1;
    if (*end == '.') { /* "12.000" from a float-typed field */
        const char *q = end + 1;
        while (*q == '0')
            q++;
        if (q == end + 1 && *q) return -1;
        end = (char *)q;
    }
    while (*end == ' ' || *end == '\r' || *end == '\n')
        end++;
    if (*end) return -1;
    *v = x;
    return 0;
}

int weir_merlin_ctl_get_int(weir_merlin_ctl *c, const char *name, long long *value, int *rcp,
                            char *err, size_t errlen)
{
    char v[WEIR_MERLIN_CTL_VALUE_MAX + 1];
    int rc = weir_merlin_ctl_get(c, name, v, sizeof v, rcp, err, errlen);
    if (rc) return rc;
    if (parse_ll(v, value))
        return fail(err, errlen, WEIR_EFORMAT, "Merlin GET %s: \"%.64s\" is not an integer", name,
                    v);
    return WEIR_OK;
}

int weir_merlin_ctl_set(weir_merlin_ctl *c, const char *name, const char *value, int *rcp,
                        char *err, size_t errlen)
{
    if (!value) return WEIR_EINVAL;
    weir_merlin_ctl_msg *m = malloc(sizeof *m);
    if (!m) return WEIR_ENOMEM;
    int rc = exchange(c, WEIR_MERLIN_CTL_SET, name, value, m, rcp, err, errlen);
    free(m);
    return rc;
}

int weir_merlin_ctl_set_int(weir_merlin_ctl *c, const char *name, long long value, int *rcp,
                            char *err, size_t errlen)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", value);
    return weir_merlin_ctl_set(c, name, v, rcp, err, errlen);
}

int weir_merlin_ctl_cmd(weir_merlin_ctl *c, const char *name, int *rcp, char *err, size_t errlen)
{
    weir_merlin_ctl_msg *m = malloc(sizeof *m);
    if (!m) return WEIR_ENOMEM;
    int rc = exchange(c, WEIR_MERLIN_CTL_CMD, name, NULL, m, rcp, err, errlen);
    free(m);
    return rc;
}

/* ------------------------------------------------------------------ server */

typedef enum { P_INT, P_FLOAT, P_STR } pkind;

typedef struct {
    const char *name;
    pkind kind;
    const char *def;
    double min, max;
    int readonly;       /* only the owner sets it; SET answers rc 2 */
    const int *allowed; /* P_INT: the only values allowed, if given */
    int nallowed;
} param_def;

static const int depths[] = {1, 6, 12, 24};

/* Merlin's parameters (MerlinEM manual names; units as Merlin: ms, keV, V). */
static const param_def param_defs[] = {
    {"IMAGEX", P_INT, "256", 1, 65535, 1, NULL, 0},
    {"IMAGEY", P_INT, "256", 1, 65535, 1, NULL, 0},
    {"COUNTERDEPTH", P_INT, "12", 1, 24, 0, depths, 4},
    {"NUMFRAMESTOACQUIRE", P_INT, "1", 0, 2147483647, 0, NULL, 0},
    {"NUMFRAMESPERTRIGGER", P_INT, "1", 1, 2147483647, 0, NULL, 0},
    {"ACQUISITIONTIME", P_FLOAT, "1", 0, 1e7, 0, NULL, 0},
    {"ACQUISITIONPERIOD", P_FLOAT, "1", 0, 1e7, 0, NULL, 0},
    {"TRIGGERSTART", P_INT, "0", 0, 6, 0, NULL, 0},
    {"TRIGGERSTOP", P_INT, "0", 0, 6, 0, NULL, 0},
    {"SCANX", P_INT, "0", 0, 1048576, 0, NULL, 0},
    {"SCANY", P_INT, "0", 0, 1048576, 0, NULL, 0},
    {"FILEDIRECTORY", P_STR, "", 0, 0, 0, NULL, 0},
    {"FILENAME", P_STR, "", 0, 0, 0, NULL, 0},
    {"FILEENABLE", P_INT, "0", 0, 1, 0, NULL, 0},
    {"FILEFORMAT", P_INT, "0", 0, 2, 0, NULL, 0},
    {"IMAGESPERFILE", P_INT, "0", 0, 2147483647, 0, NULL, 0},
    {"RUNHEADLESS", P_INT, "0", 0, 1, 0, NULL, 0},
    {"CONTINUOUSRW", P_INT, "0", 0, 1, 0, NULL, 0},
    {"USETIMESTAMPING", P_INT, "0", 0, 1, 0, NULL, 0},
    {"COLOURMODE", P_INT, "0", 0, 1, 0, NULL, 0},
    {"CHARGESUMMING", P_INT, "0", 0, 1, 0, NULL, 0},
    {"GAIN", P_INT, "0", 0, 3, 0, NULL, 0},
    {"THRESHOLD0", P_FLOAT, "10", 0, 1000, 0, NULL, 0},
    {"THRESHOLD1", P_FLOAT, "511", 0, 1000, 0, NULL, 0},
    {"HVBIAS", P_FLOAT, "120", 0, 500, 0, NULL, 0},
    {"DETECTORSTATUS", P_INT, "0", 0, 9, 1, NULL, 0},
    {"SOFTWAREVERSION", P_STR, "weir-sim 1.0", 0, 0, 1, NULL, 0},
};
#define NPARAMS (sizeof param_defs / sizeof param_defs[0])

typedef struct {
    int fd;
    uint8_t buf[BUF_MAX];
    size_t have;
} client;

struct weir_merlin_ctl_server {
    weir_merlin_ctl_callbacks cb;
    pthread_mutex_t lock;        /* the table */
    pthread_mutex_t handle_lock; /* one request at a time, callbacks included */
    char values[NPARAMS][WEIR_MERLIN_CTL_VALUE_MAX + 1];
    int listen_fd;
    int wake[2];
    int port;
    int running;
    pthread_t thread;
    client *clients[MAX_CLIENTS];
};

static int find_param(const char *name)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (!strcasecmp(param_defs[i].name, name)) return (int)i;
    return -1;
}

/* Checks value for parameter i; on success writes the normalised value. */
static int check_value(int i, const char *value, char *norm, size_t normlen)
{
    const param_def *d = &param_defs[i];
    if (d->kind == P_STR) {
        if (strlen(value) >= normlen) return -1;
        snprintf(norm, normlen, "%s", value);
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || errno || !isfinite(v)) return -1;
    while (*end == ' ')
        end++;
    if (*end) return -1;
    if (v < d->min || v > d->max) return -1;
    if (d->kind == P_INT) {
        if (v != floor(v)) return -1;
        long long iv = (long long)v;
        if (d->nallowed) {
            int ok = 0;
            for (int k = 0; k < d->nallowed; k++)
                ok |= d->allowed[k] == iv;
            if (!ok) return -1;
        }
        snprintf(norm, normlen, "%lld", iv);
    } else {
        /* kept as written: the number checked is the number stored */
        snprintf(norm, normlen, "%s", value);
    }
    return 0;
}

int weir_merlin_ctl_server_new(const weir_merlin_ctl_callbacks *cb, weir_merlin_ctl_server **out)
{
    if (!out) return WEIR_EINVAL;
    *out = NULL;
    weir_merlin_ctl_server *s = calloc(1, sizeof *s);
    if (!s) return WEIR_ENOMEM;
    if (cb) s->cb = *cb;
    s->listen_fd = -1;
    s->wake[0] = s->wake[1] = -1;
    for (size_t i = 0; i < NPARAMS; i++)
        snprintf(s->values[i], sizeof s->values[i], "%s", param_defs[i].def);
    if (pthread_mutex_init(&s->lock, NULL)) goto free_s;
    if (pthread_mutex_init(&s->handle_lock, NULL)) goto destroy_lock;
    *out = s;
    return WEIR_OK;
destroy_lock:
    pthread_mutex_destroy(&s->lock);
free_s:
    free(s);
    return WEIR_ETHREAD;
}

int weir_merlin_ctl_server_get(weir_merlin_ctl_server *s, const char *name, char *value,
                               size_t valuelen)
{
    if (!s || !name || !value) return WEIR_EINVAL;
    int i = find_param(name);
    if (i < 0) return WEIR_ENOTFOUND;
    int rc = WEIR_OK;
    pthread_mutex_lock(&s->lock);
    size_t n = strlen(s->values[i]);
    if (n >= valuelen)
        rc = WEIR_ERANGE;
    else
        memcpy(value, s->values[i], n + 1);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int weir_merlin_ctl_server_get_int(weir_merlin_ctl_server *s, const char *name, long long *value)
{
    char v[WEIR_MERLIN_CTL_VALUE_MAX + 1];
    int rc = weir_merlin_ctl_server_get(s, name, v, sizeof v);
    if (rc) return rc;
    if (!value || parse_ll(v, value)) return WEIR_EFORMAT;
    return WEIR_OK;
}

int weir_merlin_ctl_server_set(weir_merlin_ctl_server *s, const char *name, const char *value)
{
    if (!s || !name || !value) return WEIR_EINVAL;
    int i = find_param(name);
    if (i < 0) return WEIR_ENOTFOUND;
    char norm[WEIR_MERLIN_CTL_VALUE_MAX + 1];
    if (check_value(i, value, norm, sizeof norm)) return WEIR_ERANGE;
    pthread_mutex_lock(&s->lock);
    memcpy(s->values[i], norm, strlen(norm) + 1);
    pthread_mutex_unlock(&s->lock);
    return WEIR_OK;
}

static int clamp_rc(int rc)
{
    return rc >= 0 && rc <= 3 ? rc : WEIR_MERLIN_RC_BUSY;
}

int weir_merlin_ctl_server_handle(weir_merlin_ctl_server *s, const weir_merlin_ctl_msg *req,
                                  char *out, size_t outlen)
{
    if (!s || !req || !out) return WEIR_EINVAL;
    char *value = malloc(WEIR_MERLIN_CTL_VALUE_MAX + 1);
    if (!value) return WEIR_ENOMEM;
    value[0] = 0;
    int rc = WEIR_MERLIN_RC_OK;
    pthread_mutex_lock(&s->handle_lock);
    int i = find_param(req->name);
    switch (req->type) {
    case WEIR_MERLIN_CTL_GET:
        if (i < 0) {
            rc = WEIR_MERLIN_RC_UNRECOGNISED;
            break;
        }
        pthread_mutex_lock(&s->lock);
        memcpy(value, s->values[i], strlen(s->values[i]) + 1);
        pthread_mutex_unlock(&s->lock);
        break;
    case WEIR_MERLIN_CTL_SET:
        if (i < 0 || param_defs[i].readonly) {
            rc = WEIR_MERLIN_RC_UNRECOGNISED;
            break;
        }
        if (!req->has_value || check_value(i, req->value, value, WEIR_MERLIN_CTL_VALUE_MAX + 1)) {
            rc = WEIR_MERLIN_RC_OUT_OF_RANGE;
            break;
        }
        pthread_mutex_lock(&s->lock);
        memcpy(s->values[i], value, strlen(value) + 1);
        pthread_mutex_unlock(&s->lock);
        if (s->cb.on_set) s->cb.on_set(s->cb.user, param_defs[i].name, value);
        break;
    case WEIR_MERLIN_CTL_CMD: {
        int (*fn)(void *) = NULL;
        if (!strcasecmp(req->name, "STARTACQUISITION"))
            fn = s->cb.on_start_acquisition;
        else if (!strcasecmp(req->name, "SOFTTRIGGER"))
            fn = s->cb.on_soft_trigger;
        else if (!strcasecmp(req->name, "STOPACQUISITION"))
            fn = s->cb.on_stop_acquisition;
        else if (!strcasecmp(req->name, "ABORT"))
            fn = s->cb.on_abort;
        else {
            rc = WEIR_MERLIN_RC_UNRECOGNISED;
            break;
        }
        if (fn) rc = clamp_rc(fn(s->cb.user));
        break;
    }
    default:
        rc = WEIR_MERLIN_RC_UNRECOGNISED;
        break;
    }
    pthread_mutex_unlock(&s->handle_lock);
    WEIR_LOGD(COMP, "%s %s%s%s -> rc %d", weir_merlin_ctl_type_name(req->type), req->name,
              req->has_value ? " " : "", req->has_value ? req->value : "", rc);
    int n = weir_merlin_ctl_format_reply(out, outlen, req->type, req->name, value, rc);
    free(value);
    return n;
}

static void drop_client(weir_merlin_ctl_server *s, int k)
{
    close(s->clients[k]->fd);
    free(s->clients[k]);
    s->clients[k] = NULL;
}

/* Answers every complete request in client k's buffer; -1: drop it. */
static int serve_client(weir_merlin_ctl_server *s, int k)
{
    client *cl = s->clients[k];
    ssize_t r = recv(cl->fd, cl->buf + cl->have, sizeof cl->buf - cl->have, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    if (r <= 0) return -1;
    cl->have += (size_t)r;
    for (;;) {
        weir_merlin_ctl_msg req;
        size_t used = 0;
        char err[256] = "";
        int rc = weir_merlin_ctl_parse_request(cl->buf, cl->have, &req, &used, err, sizeof err);
        if (rc == WEIR_ETRUNCATED) {
            if (cl->have == sizeof cl->buf) {
                WEIR_LOGW(COMP, "client sent %zu bytes without a complete request; closing",
                          cl->have);
                return -1;
            }
            if (cl->have && used == 0) {
                /* only whitespace so far: forget it */
                size_t i = 0;
                while (i < cl->have && is_space(cl->buf[i]))
                    i++;
                if (i == cl->have) cl->have = 0;
            }
            return 0;
        }
        if (rc) {
            WEIR_LOGW(COMP, "closing a client: %s", err);
            return -1;
        }
        char out[BUF_MAX];
        int n = weir_merlin_ctl_server_handle(s, &req, out, sizeof out);
        memmove(cl->buf, cl->buf + used, cl->have - used);
        cl->have -= used;
        if (n < 0) return -1;
        if (send(cl->fd, out, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    }
}

static void *server_main(void *arg)
{
    weir_merlin_ctl_server *s = arg;
    struct pollfd pfd[2 + MAX_CLIENTS];
    int idx[2 + MAX_CLIENTS];
    for (;;) {
        int np = 0;
        pfd[np++] = (struct pollfd){s->wake[0], POLLIN, 0};
        pfd[np++] = (struct pollfd){s->listen_fd, POLLIN, 0};
        for (int k = 0; k < MAX_CLIENTS; k++)
            if (s->clients[k]) {
                idx[np] = k;
                pfd[np++] = (struct pollfd){s->clients[k]->fd, POLLIN, 0};
            }
        int r = poll(pfd, (nfds_t)np, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            WEIR_LOGE(COMP, "poll: %s", strerror(errno));
            break;
        }
        if (pfd[0].revents) break;
        for (int p = 2; p < np; p++)
            if (pfd[p].revents && serve_client(s, idx[p])) drop_client(s, idx[p]);
        if (pfd[1].revents & POLLIN) {
            int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) continue;
            int k = 0;
            while (k < MAX_CLIENTS && s->clients[k])
                k++;
            client *cl = k < MAX_CLIENTS ? calloc(1, sizeof *cl) : NULL;
            if (!cl) {
                WEIR_LOGW(COMP, "refusing a client: %d connections already", MAX_CLIENTS);
                close(fd);
                continue;
            }
            struct timeval tv = {1, 0}; /* a client that stops reading cannot stall us */
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            cl->fd = fd;
            s->clients[k] = cl;
        }
    }
    return NULL;
}

int weir_merlin_ctl_server_start(weir_merlin_ctl_server *s, const char *bind_addr, int port,
                                 char *err, size_t errlen)
{
    if (!s || port < 0 || port > 65535 || s->running) return WEIR_EINVAL;
    const char *addr = bind_addr ? bind_addr : "127.0.0.1";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return fail(err, errlen, WEIR_EINVAL, "Merlin control server: bad address %s", addr);
    int rc = WEIR_EIO;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, errlen, WEIR_EIO, "Merlin control server: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        rc = fail(err, errlen, WEIR_EIO, "Merlin control server: cannot listen on %s:%d: %s", addr,
                  port, strerror(errno));
        goto close_fd;
    }
    if (pipe2(s->wake, O_CLOEXEC)) {
        rc = fail(err, errlen, WEIR_EIO, "Merlin control server: pipe: %s", strerror(errno));
        goto close_fd;
    }
    s->listen_fd = fd;
    s->port = ntohs(sa.sin_port);
    if (pthread_create(&s->thread, NULL, server_main, s)) {
        rc = fail(err, errlen, WEIR_ETHREAD, "Merlin control server: cannot start its thread");
        goto close_pipe;
    }
    s->running = 1;
    return WEIR_OK;
close_pipe:
    close(s->wake[0]);
    close(s->wake[1]);
    s->wake[0] = s->wake[1] = -1;
    s->listen_fd = -1;
close_fd:
    close(fd);
    return rc;
}

int weir_merlin_ctl_server_port(const weir_merlin_ctl_server *s)
{
    return s ? s->port : 0;
}

void weir_merlin_ctl_server_free(weir_merlin_ctl_server *s)
{
    if (!s) return;
    if (s->running) {
        char b = 1;
        while (write(s->wake[1], &b, 1) < 0 && errno == EINTR)
            ;
        pthread_join(s->thread, NULL);
    }
    for (int k = 0; k < MAX_CLIENTS; k++)
        if (s->clients[k]) drop_client(s, k);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    pthread_mutex_destroy(&s->handle_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
