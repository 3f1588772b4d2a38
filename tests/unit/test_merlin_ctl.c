/* test_merlin_ctl.c — the Merlin control port: the parser on the exact
 * bytes of libertem.md and Quantum Detectors' short forms, weir's client
 * against weir's server over loopback (GET/SET/CMD, return codes 0/1/2/3,
 * SOFTTRIGGER counted), the server through a raw socket, and the client
 * against a raw server that counts lengths as LiberTEM's simulator does.
 * Expected bytes are written out by hand: each length is the payload
 * length + 1, counted here, not taken from weir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "weir/error.h"
#include "weir/merlin_ctl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ parser */

static void test_exact_bytes(void **state)
{
    /* libertem.md: len = len("TYPE,NAME,VALUE") + 1 */
    assert_int_equal(strlen("GET,COUNTERDEPTH,0") + 1, 19);
    assert_int_equal(strlen("CMD,STARTACQUISITION,0") + 1, 23);
    assert_int_equal(strlen("SET,NUMFRAMESTOACQUIRE,16384") + 1, 29);
    char out[128];
    int n =
        weir_merlin_ctl_format_request(out, sizeof out, WEIR_MERLIN_CTL_GET, "COUNTERDEPTH", "0");
    assert_string_equal(out, "MPX,0000000019,GET,COUNTERDEPTH,0");
    assert_int_equal(n, 33);
    weir_merlin_ctl_format_request(out, sizeof out, WEIR_MERLIN_CTL_CMD, "STARTACQUISITION", "0");
    assert_string_equal(out, "MPX,0000000023,CMD,STARTACQUISITION,0");
    weir_merlin_ctl_format_request(out, sizeof out, WEIR_MERLIN_CTL_SET, "NUMFRAMESTOACQUIRE",
                                   "16384");
    assert_string_equal(out, "MPX,0000000029,SET,NUMFRAMESTOACQUIRE,16384");
    /* replies: "GET,COUNTERDEPTH,12,0" is 21 bytes -> 22 */
    weir_merlin_ctl_format_reply(out, sizeof out, WEIR_MERLIN_CTL_GET, "COUNTERDEPTH", "12", 0);
    assert_string_equal(out, "MPX,0000000022,GET,COUNTERDEPTH,12,0");
    weir_merlin_ctl_format_reply(out, sizeof out, WEIR_MERLIN_CTL_SET, "COUNTERDEPTH", "7", 3);
    assert_string_equal(out, "MPX,0000000019,SET,COUNTERDEPTH,3");

    weir_merlin_ctl_msg m;
    size_t used;
    char err[256] = "";
    const char *r1 = "MPX,0000000019,GET,COUNTERDEPTH,0";
    assert_int_equal(
        weir_merlin_ctl_parse_request((const uint8_t *)r1, strlen(r1), &m, &used, err, sizeof err),
        0);
    assert_int_equal(m.type, WEIR_MERLIN_CTL_GET);
    assert_string_equal(m.name, "COUNTERDEPTH");
    assert_true(m.has_value);
    assert_string_equal(m.value, "0");
    assert_int_equal(used, strlen(r1));
    const char *r2 = "MPX,0000000029,SET,NUMFRAMESTOACQUIRE,16384";
    assert_int_equal(
        weir_merlin_ctl_parse_request((const uint8_t *)r2, strlen(r2), &m, &used, err, sizeof err),
        0);
    assert_int_equal(m.type, WEIR_MERLIN_CTL_SET);
    assert_string_equal(m.name, "NUMFRAMESTOACQUIRE");
    assert_string_equal(m.value, "16384");
    /* every shorter prefix asks for more */
    for (size_t k = 0; k < strlen(r2); k++)
        assert_int_equal(
            weir_merlin_ctl_parse_request((const uint8_t *)r2, k, &m, &used, err, sizeof err),
            WEIR_ETRUNCATED);

    const char *p1 = "MPX,0000000022,GET,COUNTERDEPTH,12,0";
    assert_int_equal(
        weir_merlin_ctl_parse_reply((const uint8_t *)p1, strlen(p1), &m, &used, err, sizeof err),
        0);
    assert_string_equal(m.value, "12");
    assert_int_equal(m.rc, 0);
    assert_int_equal(used, strlen(p1));
    const char *p2 = "MPX,0000000019,SET,COUNTERDEPTH,3";
    assert_int_equal(
        weir_merlin_ctl_parse_reply((const uint8_t *)p2, strlen(p2), &m, &used, err, sizeof err),
        0);
    assert_int_equal(m.type, WEIR_MERLIN_CTL_SET);
    assert_false(m.has_value);
    assert_int_equal(m.rc, 3);
}

static void test_lenient(void **state)
{
    weir_merlin_ctl_msg m;
    size_t used;
    char err[256] = "";
    /* Quantum Detectors' example script: "MPX,21,CMD,STARTACQUISITION" (20 + 1) */
    const char *q1 = "MPX,21,CMD,STARTACQUISITION";
    assert_int_equal(
        weir_merlin_ctl_parse_request((const uint8_t *)q1, strlen(q1), &m, &used, err, sizeof err),
        0);
    assert_int_equal(m.type, WEIR_MERLIN_CTL_CMD);
    assert_string_equal(m.name, "STARTACQUISITION");
    assert_false(m.has_value);
    assert_int_equal(used, strlen(q1));
    /* "MPX,00<len>,GET,NAME": "GET,COUNTERDEPTH" is 16 + 1 */
    const char *q2 = "MPX,0017,get,CounterDepth";
    assert_int_equal(
        weir_merlin_ctl_parse_request((const uint8_t *)q2, strlen(q2), &m, &used, err, sizeof err),
        0);
    assert_int_equal(m.type, WEIR_MERLIN_CTL_GET);
    assert_string_equal(m.name, "CounterDepth");
    /* two requests in one read, with a newline between */
    const char *q3 = "MPX,21,CMD,STARTACQUISITION\r\nMPX,16,CMD,SOFTTRIGGER";
    assert_int_equal(
        weir_merlin_ctl_parse_request((const uint8_t *)q3, strlen(q3), &m, &used, err, sizeof err),
        0);
    size_t first = used;
    assert_int_equal(weir_merlin_ctl_parse_request((const uint8_t *)q3 + first, strlen(q3) - first,
                                                   &m, &used, err, sizeof err),
                     0);
    assert_string_equal(m.name, "SOFTTRIGGER");
    assert_int_equal(first + used, strlen(q3));
    /* LiberTEM's simulator leaves out the +1 in replies: 21 for 21 bytes */
    const char *s1 = "MPX,0000000021,GET,COUNTERDEPTH,12,0";
    assert_int_equal(
        weir_merlin_ctl_parse_reply((const uint8_t *)s1, strlen(s1), &m, &used, err, sizeof err),
        0);
    assert_string_equal(m.value, "12");
    assert_int_equal(m.rc, 0);
    assert_int_equal(used, strlen(s1));
    /* ... and waits for that last byte */
    assert_int_equal(weir_merlin_ctl_parse_reply((const uint8_t *)s1, strlen(s1) - 1, &m, &used,
                                                 err, sizeof err),
                     WEIR_ETRUNCATED);
    /* a value with commas (a directory) */
    const char *s2 = "MPX,0000000030,GET,FILEDIRECTORY,/a,b/c,0";
    assert_int_equal(strlen("GET,FILEDIRECTORY,/a,b/c,0") + 1, 27);
    const char *s2ok = "MPX,0000000027,GET,FILEDIRECTORY,/a,b/c,0";
    assert_int_equal(weir_merlin_ctl_parse_reply((const uint8_t *)s2ok, strlen(s2ok), &m, &used,
                                                 err, sizeof err),
                     0);
    assert_string_equal(m.value, "/a,b/c");
    assert_int_equal(
        weir_merlin_ctl_parse_reply((const uint8_t *)s2, strlen(s2), &m, &used, err, sizeof err),
        WEIR_ETRUNCATED);
    /* refused */
    const char *bad[] = {"HELLO,0000000019,GET,COUNTERDEPTH,0",
                         "MPX,,GET,X",
                         "MPX,00000000019,GET,COUNTERDEPTH,0",
                         "MPX,1,",
                         "MPX,0000000005,PUT,X",
                         "MPX,0000000004,GET"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = weir_merlin_ctl_parse_request((const uint8_t *)bad[i], strlen(bad[i]), &m, &used,
                                               err, sizeof err);
        if (rc != WEIR_EFORMAT) fail_msg("%s: rc %d", bad[i], rc);
        assert_true(err[0] != 0);
    }
    const char *badr = "MPX,0000000017,GET,COUNTERDEPTH";
    assert_int_equal(weir_merlin_ctl_parse_reply((const uint8_t *)badr, strlen(badr), &m, &used,
                                                 err, sizeof err),
                     WEIR_EFORMAT);
    assert_non_null(strstr(err, "return code"));
    char big[64];
    snprintf(big, sizeof big, "MPX,%010d,GET,X", WEIR_MERLIN_CTL_MAX_PAYLOAD + 10);
    assert_int_equal(weir_merlin_ctl_parse_request((const uint8_t *)big, strlen(big), &m, &used,
                                                   err, sizeof err),
                     WEIR_ERANGE);
}

/* ------------------------------------------------------------ loopback */

typedef struct {
    int starts, triggers, stops, aborts, sets;
    int trigger_rc;
    char last_set[64];
} counts;

static int on_start(void *u)
{
    __atomic_add_fetch(&((counts *)u)->starts, 1, __ATOMIC_SEQ_CST);
    return 0;
}
static int on_trigger(void *u)
{
    counts *c = u;
    __atomic_add_fetch(&c->triggers, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&c->trigger_rc, __ATOMIC_SEQ_CST);
}
static int on_stop(void *u)
{
    __atomic_add_fetch(&((counts *)u)->stops, 1, __ATOMIC_SEQ_CST);
    return 0;
}
static int on_abort(void *u)
{
    __atomic_add_fetch(&((counts *)u)->aborts, 1, __ATOMIC_SEQ_CST);
    return 0;
}
static void on_set(void *u, const char *name, const char *value)
{
    counts *c = u;
    c->sets++;
    snprintf(c->last_set, sizeof c->last_set, "%s=%s", name, value);
}

static weir_merlin_ctl_server *start_server(counts *c)
{
    weir_merlin_ctl_callbacks cb = {c, on_start, on_trigger, on_stop, on_abort, on_set};
    weir_merlin_ctl_server *s = NULL;
    char err[256] = "";
    assert_int_equal(weir_merlin_ctl_server_new(&cb, &s), 0);
    if (weir_merlin_ctl_server_start(s, NULL, 0, err, sizeof err)) fail_msg("%s", err);
    assert_true(weir_merlin_ctl_server_port(s) > 0);
    return s;
}

static void test_client_server(void **state)
{
    counts c = {0};
    weir_merlin_ctl_server *s = start_server(&c);
    weir_merlin_ctl *cl = NULL;
    char err[256] = "";
    if (weir_merlin_ctl_connect("127.0.0.1", weir_merlin_ctl_server_port(s), 2000, &cl, err,
                                sizeof err))
        fail_msg("%s", err);
    char v[256];
    int rc = -1;
    assert_int_equal(weir_merlin_ctl_get(cl, "COUNTERDEPTH", v, sizeof v, &rc, err, sizeof err), 0);
    assert_string_equal(v, "12");
    assert_int_equal(rc, 0);
    /* SET round trips */
    assert_int_equal(weir_merlin_ctl_set_int(cl, "NUMFRAMESTOACQUIRE", 16384, &rc, err, sizeof err),
                     0);
    assert_string_equal(c.last_set, "NUMFRAMESTOACQUIRE=16384");
    long long iv = 0;
    assert_int_equal(weir_merlin_ctl_get_int(cl, "NUMFRAMESTOACQUIRE", &iv, NULL, err, sizeof err),
                     0);
    assert_int_equal(iv, 16384);
    assert_int_equal(weir_merlin_ctl_server_get_int(s, "NUMFRAMESTOACQUIRE", &iv), 0);
    assert_int_equal(iv, 16384);
    assert_int_equal(weir_merlin_ctl_set_int(cl, "COUNTERDEPTH", 6, NULL, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_set(cl, "SCANX", "128", NULL, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_set(cl, "scany", "64", NULL, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_server_get_int(s, "SCANY", &iv), 0);
    assert_int_equal(iv, 64);
    assert_int_equal(weir_merlin_ctl_set(cl, "FILEDIRECTORY", "/data/a,b", NULL, err, sizeof err),
                     0);
    assert_int_equal(weir_merlin_ctl_get(cl, "FILEDIRECTORY", v, sizeof v, NULL, err, sizeof err),
                     0);
    assert_string_equal(v, "/data/a,b");
    assert_int_equal(weir_merlin_ctl_set(cl, "ACQUISITIONTIME", "0.5", NULL, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_get(cl, "ACQUISITIONTIME", v, sizeof v, NULL, err, sizeof err),
                     0);
    assert_string_equal(v, "0.5");
    /* rc 3: out of range, named in the error */
    err[0] = 0;
    assert_int_equal(weir_merlin_ctl_set_int(cl, "COUNTERDEPTH", 7, &rc, err, sizeof err),
                     WEIR_ERANGE);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(err, "SET COUNTERDEPTH 7"));
    assert_non_null(strstr(err, "return code 3"));
    assert_int_equal(weir_merlin_ctl_server_get_int(s, "COUNTERDEPTH", &iv), 0);
    assert_int_equal(iv, 6); /* unchanged */
    assert_int_equal(weir_merlin_ctl_set(cl, "TRIGGERSTART", "seven", &rc, err, sizeof err),
                     WEIR_ERANGE);
    assert_int_equal(weir_merlin_ctl_set(cl, "TRIGGERSTART", "7", &rc, err, sizeof err),
                     WEIR_ERANGE);
    /* rc 2: not recognised */
    assert_int_equal(weir_merlin_ctl_get(cl, "NOSUCHTHING", v, sizeof v, &rc, err, sizeof err),
                     WEIR_ENOTFOUND);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "GET NOSUCHTHING"));
    assert_int_equal(weir_merlin_ctl_cmd(cl, "SELFDESTRUCT", &rc, err, sizeof err), WEIR_ENOTFOUND);
    assert_int_equal(rc, 2);
    assert_int_equal(weir_merlin_ctl_set(cl, "IMAGEX", "512", &rc, err, sizeof err),
                     WEIR_ENOTFOUND); /* read-only */
    /* the owner may set it */
    assert_int_equal(weir_merlin_ctl_server_set(s, "IMAGEX", "512"), 0);
    assert_int_equal(weir_merlin_ctl_get_int(cl, "IMAGEX", &iv, NULL, err, sizeof err), 0);
    assert_int_equal(iv, 512);
    assert_int_equal(weir_merlin_ctl_server_set(s, "COUNTERDEPTH", "5"), WEIR_ERANGE);
    assert_int_equal(weir_merlin_ctl_server_set(s, "NOPE", "5"), WEIR_ENOTFOUND);
    /* commands reach the owner */
    assert_int_equal(weir_merlin_ctl_cmd(cl, "STARTACQUISITION", &rc, err, sizeof err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(weir_merlin_ctl_cmd(cl, "SOFTTRIGGER", &rc, err, sizeof err), 0);
    assert_int_equal(__atomic_load_n(&c.starts, __ATOMIC_SEQ_CST), 1);
    assert_int_equal(__atomic_load_n(&c.triggers, __ATOMIC_SEQ_CST), 5);
    /* rc 1: the owner is busy */
    __atomic_store_n(&c.trigger_rc, 1, __ATOMIC_SEQ_CST);
    assert_int_equal(weir_merlin_ctl_cmd(cl, "SOFTTRIGGER", &rc, err, sizeof err), WEIR_EIO);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "busy"));
    assert_int_equal(weir_merlin_ctl_cmd(cl, "STOPACQUISITION", &rc, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_cmd(cl, "abort", &rc, err, sizeof err), 0);
    assert_int_equal(c.stops, 1);
    assert_int_equal(c.aborts, 1);
    /* a second client at the same time */
    weir_merlin_ctl *cl2 = NULL;
    assert_int_equal(weir_merlin_ctl_connect("localhost", weir_merlin_ctl_server_port(s), 2000,
                                             &cl2, err, sizeof err),
                     0);
    assert_int_equal(weir_merlin_ctl_get_int(cl2, "SCANX", &iv, NULL, err, sizeof err), 0);
    assert_int_equal(iv, 128);
    weir_merlin_ctl_close(cl2);
    weir_merlin_ctl_close(cl);
    weir_merlin_ctl_server_free(s);
}

/* ------------------------------------------------------------ raw sockets */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads exactly strlen(want) bytes (5 s at most) and compares. */
static void raw_expect(int fd, const char *want)
{
    char got[512];
    size_t n = strlen(want), have = 0;
    assert_true(n < sizeof got);
    while (have < n) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) fail_msg("no reply; have \"%.*s\"", (int)have, got);
        ssize_t r = recv(fd, got + have, n - have, 0);
        if (r <= 0) fail_msg("connection closed after \"%.*s\"", (int)have, got);
        have += (size_t)r;
    }
    got[have] = 0;
    assert_string_equal(got, want);
}

static void test_server_raw(void **state)
{
    counts c = {0};
    weir_merlin_ctl_server *s = start_server(&c);
    int fd = raw_connect(weir_merlin_ctl_server_port(s));
    /* libertem.md's bytes; the reply length is len("GET,COUNTERDEPTH,12,0") + 1 = 22 */
    raw_send(fd, "MPX,0000000019,GET,COUNTERDEPTH,0");
    raw_expect(fd, "MPX,0000000022,GET,COUNTERDEPTH,12,0");
    raw_send(fd, "MPX,0000000029,SET,NUMFRAMESTOACQUIRE,16384");
    raw_expect(fd, "MPX,0000000025,SET,NUMFRAMESTOACQUIRE,0");
    /* the short forms */
    raw_send(fd, "MPX,21,CMD,STARTACQUISITION");
    raw_expect(fd, "MPX,0000000023,CMD,STARTACQUISITION,0");
    raw_send(fd, "MPX,0017,GET,COUNTERDEPTH");
    raw_expect(fd, "MPX,0000000022,GET,COUNTERDEPTH,12,0");
    /* split over two writes, then two requests in one */
    raw_send(fd, "MPX,00000000");
    usleep(20000); /* only to make the split reach the server as two reads */
    raw_send(fd, "16,CMD,SOFTTRIGGER");
    raw_expect(fd, "MPX,0000000018,CMD,SOFTTRIGGER,0");
    raw_send(fd, "MPX,0000000016,CMD,SOFTTRIGGER\nMPX,0000000016,CMD,SOFTTRIGGER");
    raw_expect(fd, "MPX,0000000018,CMD,SOFTTRIGGER,0MPX,0000000018,CMD,SOFTTRIGGER,0");
    /* rc 2 and 3 */
    raw_send(fd, "MPX,0000000012,GET,BOGUS,0");
    raw_expect(fd, "MPX,0000000013,GET,BOGUS,,2");
    raw_send(fd, "MPX,0000000020,SET,COUNTERDEPTH,99");
    raw_expect(fd, "MPX,0000000019,SET,COUNTERDEPTH,3");
    raw_send(fd, "MPX,0000000012,CMD,DANCE,0");
    raw_expect(fd, "MPX,0000000012,CMD,DANCE,2");
    assert_int_equal(c.triggers, 3);
    assert_int_equal(c.starts, 1);
    /* garbage closes that connection, not the server */
    raw_send(fd, "GARBAGEGARBAGEGARBAGE");
    char b[8];
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(recv(fd, b, sizeof b, 0), 0);
    close(fd);
    fd = raw_connect(weir_merlin_ctl_server_port(s));
    raw_send(fd, "MPX,0000000019,GET,COUNTERDEPTH,0");
    raw_expect(fd, "MPX,0000000022,GET,COUNTERDEPTH,12,0");
    close(fd);
    weir_merlin_ctl_server_free(s);
}

/* A raw server answering as LiberTEM's simulator: length without the +1. */
typedef struct {
    int lfd;
    int requests;
} simq;

static void *simq_main(void *arg)
{
    simq *q = arg;
    int fd = accept(q->lfd, NULL, NULL);
    char buf[512];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
        if (r <= 0) break;
        buf[r] = 0;
        q->requests++;
        const char *rep = strstr(buf, "GET,COUNTERDEPTH") ? "MPX,0000000021,GET,COUNTERDEPTH,12,0"
                          : strstr(buf, "SOFTTRIGGER")    ? "MPX,0000000017,CMD,SOFTTRIGGER,0"
                                                          : "MPX,0000000012,GET,OTHER,3";
        /* in two pieces, cut right before the rc */
        size_t n = strlen(rep);
        send(fd, rep, n - 1, MSG_NOSIGNAL);
        usleep(10000);
        send(fd, rep + n - 1, 1, MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void test_client_lenient(void **state)
{
    simq q = {0};
    q.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(q.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(q.lfd, 1), 0);
    assert_int_equal(getsockname(q.lfd, (struct sockaddr *)&a, &al), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, simq_main, &q), 0);
    weir_merlin_ctl *cl = NULL;
    char err[256] = "", v[64];
    assert_int_equal(
        weir_merlin_ctl_connect("127.0.0.1", ntohs(a.sin_port), 2000, &cl, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_get(cl, "COUNTERDEPTH", v, sizeof v, NULL, err, sizeof err),
                     0);
    assert_string_equal(v, "12");
    assert_int_equal(weir_merlin_ctl_cmd(cl, "SOFTTRIGGER", NULL, err, sizeof err), 0);
    /* a reply for another name never satisfies the request: it times out */
    weir_merlin_ctl_close(cl);
    pthread_join(t, NULL);
    close(q.lfd);
    assert_int_equal(q.requests, 2);
}

static void test_client_errors(void **state)
{
    weir_merlin_ctl *cl = NULL;
    char err[256] = "";
    int port = tu_free_port(); /* nobody listens there */
    assert_int_equal(weir_merlin_ctl_connect("127.0.0.1", port, 1000, &cl, err, sizeof err),
                     WEIR_EIO);
    assert_null(cl);
    assert_non_null(strstr(err, "cannot connect"));
    /* a server that never answers: a timeout naming the command */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    assert_int_equal(
        weir_merlin_ctl_connect("127.0.0.1", ntohs(a.sin_port), 200, &cl, err, sizeof err), 0);
    assert_int_equal(weir_merlin_ctl_cmd(cl, "SOFTTRIGGER", NULL, err, sizeof err), WEIR_EIO);
    assert_non_null(strstr(err, "CMD SOFTTRIGGER"));
    assert_non_null(strstr(err, "no reply within 200 ms"));
    weir_merlin_ctl_close(cl);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_bytes),    cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_client_server),  cmocka_unit_test(test_server_raw),
        cmocka_unit_test(test_client_lenient), cmocka_unit_test(test_client_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
