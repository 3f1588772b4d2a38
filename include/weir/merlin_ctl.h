/* weir/merlin_ctl.h — the Merlin control port (TCP 6341): client and server.
 *
 * A tiny text protocol. Requests are "MPX," + 10 decimal digits + "," +
 * "TYPE,NAME[,VALUE]" with TYPE GET, SET or CMD; the number counts the
 * payload plus the comma before it (len(payload) + 1), so
 * "MPX,0000000019,GET,COUNTERDEPTH,0". Replies are
 * "MPX,<len>,GET,NAME,VALUE,RC" and "MPX,<len>,SET|CMD,NAME,RC" where RC is
 * 0 ok, 1 busy, 2 not recognised, 3 parameter out of range.
 *
 * On receive the parsers are lenient as Merlin is: 1 to 10 length digits
 * ("MPX,21,CMD,STARTACQUISITION"), leading CR/LF/space/NUL skipped, and a
 * length that forgot the +1 (LiberTEM's simulator) is accepted when the
 * message shows it (a reply cut right after its last comma; a request whose
 * next byte is neither "MPX" nor whitespace). Names are matched without
 * regard to case and kept as sent.
 *
 * The client is used by one thread at a time. The server runs one thread
 * (poll over its clients); its callbacks run on that thread, one at a time,
 * with no weir lock held, so they may call weir_merlin_ctl_server_get/set.
 * All functions return 0 or a negative WEIR_E* code; with err/errlen they
 * also write a message. No function prints. */
#ifndef WEIR_MERLIN_CTL_H
#define WEIR_MERLIN_CTL_H

#include <stddef.h>
#include <stdint.h>

#define WEIR_MERLIN_CTL_PORT 6341
/* Longest payload accepted or sent (a FILEDIRECTORY path fits). */
#define WEIR_MERLIN_CTL_MAX_PAYLOAD 4200
#define WEIR_MERLIN_CTL_NAME_MAX 64
#define WEIR_MERLIN_CTL_VALUE_MAX 4096

typedef enum {
    WEIR_MERLIN_CTL_GET = 1,
    WEIR_MERLIN_CTL_SET = 2,
    WEIR_MERLIN_CTL_CMD = 3
} weir_merlin_ctl_type;

/* Merlin's return codes (the last field of a reply). */
typedef enum {
    WEIR_MERLIN_RC_OK = 0,
    WEIR_MERLIN_RC_BUSY = 1,
    WEIR_MERLIN_RC_UNRECOGNISED = 2,
    WEIR_MERLIN_RC_OUT_OF_RANGE = 3
} weir_merlin_rc;

/* One parsed request or reply. */
typedef struct {
    weir_merlin_ctl_type type;
    char name[WEIR_MERLIN_CTL_NAME_MAX];
    char value[WEIR_MERLIN_CTL_VALUE_MAX + 1];
    int has_value; /* requests: a VALUE field was sent; replies: GET carries one */
    int rc;        /* replies only */
} weir_merlin_ctl_msg;

/* "GET", "SET", "CMD" (static; "?" for others). */
const char *weir_merlin_ctl_type_name(weir_merlin_ctl_type t);
/* "ok", "busy", "not recognised", "parameter out of range" (static). */
const char *weir_merlin_rc_name(int rc);

/* Parses the message at the start of data[0..len). 0: *m filled and
 * *consumed = bytes used (leading whitespace included); WEIR_ETRUNCATED:
 * more bytes are needed; WEIR_EFORMAT: not a control message (err says
 * why); WEIR_ERANGE: longer than WEIR_MERLIN_CTL_MAX_PAYLOAD. Stateless:
 * call again after each read. */
int weir_merlin_ctl_parse_request(const uint8_t *data, size_t len, weir_merlin_ctl_msg *m,
                                  size_t *consumed, char *err, size_t errlen);
int weir_merlin_ctl_parse_reply(const uint8_t *data, size_t len, weir_merlin_ctl_msg *m,
                                size_t *consumed, char *err, size_t errlen);

/* Writes "MPX,<10 digits>,TYPE,NAME[,VALUE]" (value NULL: no value field)
 * or a reply (value used for GET only) into out with a NUL. Returns the
 * length (without the NUL) or WEIR_ERANGE if it does not fit / is too long,
 * WEIR_EINVAL for a name with a comma or an empty name. */
int weir_merlin_ctl_format_request(char *out, size_t outlen, weir_merlin_ctl_type t,
                                   const char *name, const char *value);
int weir_merlin_ctl_format_reply(char *out, size_t outlen, weir_merlin_ctl_type t, const char *name,
                                 const char *value, int rc);

/* ---------------------------------------------------------------- client */

typedef struct weir_merlin_ctl weir_merlin_ctl;

/* Connects to host:port (numeric or name). timeout_ms bounds the connect
 * and every later exchange (0: 5000). */
int weir_merlin_ctl_connect(const char *host, int port, int timeout_ms, weir_merlin_ctl **out,
                            char *err, size_t errlen);
void weir_merlin_ctl_close(weir_merlin_ctl *c);

/* Sends one request and reads its reply into *reply (which may be NULL).
 * GET and CMD send LiberTEM's dummy value "0" when value is NULL. Returns 0
 * when the detector answered, whatever its rc (in reply->rc); WEIR_EIO for
 * a socket error or timeout, WEIR_EFORMAT for a reply that is not one or
 * does not match the request. */
int weir_merlin_ctl_request(weir_merlin_ctl *c, weir_merlin_ctl_type t, const char *name,
                            const char *value, weir_merlin_ctl_msg *reply, char *err,
                            size_t errlen);

/* The usual calls. A reply rc other than 0 becomes an error naming the
 * command and the rc: 1 busy -> WEIR_EIO, 2 -> WEIR_ENOTFOUND,
 * 3 -> WEIR_ERANGE (others WEIR_EIO); *rc (may be NULL) gets the rc. */
int weir_merlin_ctl_get(weir_merlin_ctl *c, const char *name, char *value, size_t valuelen, int *rc,
                        char *err, size_t errlen);
int weir_merlin_ctl_get_int(weir_merlin_ctl *c, const char *name, long long *value, int *rc,
                            char *err, size_t errlen);
int weir_merlin_ctl_set(weir_merlin_ctl *c, const char *name, const char *value, int *rc, char *err,
                        size_t errlen);
int weir_merlin_ctl_set_int(weir_merlin_ctl *c, const char *name, long long value, int *rc,
                            char *err, size_t errlen);
int weir_merlin_ctl_cmd(weir_merlin_ctl *c, const char *name, int *rc, char *err, size_t errlen);

/* ---------------------------------------------------------------- server */

typedef struct weir_merlin_ctl_server weir_merlin_ctl_server;

/* Commands reach the owner through these (each may be NULL: then the
 * command just answers 0). Return the rc to send: 0 ok or 1 busy (values
 * outside 0..3 are sent as 1). */
typedef struct {
    void *user;
    int (*on_start_acquisition)(void *user); /* CMD STARTACQUISITION: arm */
    int (*on_soft_trigger)(void *user);      /* CMD SOFTTRIGGER */
    int (*on_stop_acquisition)(void *user);  /* CMD STOPACQUISITION */
    int (*on_abort)(void *user);             /* CMD ABORT */
    /* after a successful SET (value as stored); may be NULL */
    void (*on_set)(void *user, const char *name, const char *value);
} weir_merlin_ctl_callbacks;

/* A server with Merlin's parameter table at its defaults (IMAGEX/IMAGEY
 * 256, COUNTERDEPTH 12, NUMFRAMESTOACQUIRE 1, TRIGGERSTART 0, SCANX/SCANY
 * 0, ...), not yet listening. cb may be NULL. */
int weir_merlin_ctl_server_new(const weir_merlin_ctl_callbacks *cb, weir_merlin_ctl_server **out);
/* Listens on 127.0.0.1:port (bind_addr NULL) or bind_addr:port; port 0
 * picks a free port (see weir_merlin_ctl_server_port) and starts the
 * thread. */
int weir_merlin_ctl_server_start(weir_merlin_ctl_server *s, const char *bind_addr, int port,
                                 char *err, size_t errlen);
int weir_merlin_ctl_server_port(const weir_merlin_ctl_server *s);
/* Stops the thread, closes every connection and frees. NULL is fine. */
void weir_merlin_ctl_server_free(weir_merlin_ctl_server *s);

/* The owner's view of the table (thread-safe). get copies the value (NUL
 * terminated; WEIR_ENOTFOUND for an unknown name, WEIR_ERANGE if value is
 * too small); get_int parses it. set stores a value as the owner (read-only
 * names such as IMAGEX and DETECTORSTATUS included; range still checked:
 * WEIR_ERANGE). */
int weir_merlin_ctl_server_get(weir_merlin_ctl_server *s, const char *name, char *value,
                               size_t valuelen);
int weir_merlin_ctl_server_get_int(weir_merlin_ctl_server *s, const char *name, long long *value);
int weir_merlin_ctl_server_set(weir_merlin_ctl_server *s, const char *name, const char *value);

/* Answers one parsed request (from weir_merlin_ctl_parse_request) as the
 * server thread does, callbacks included, and writes the framed reply into
 * out. Returns the reply length or a negative code. For tests and fuzzing;
 * thread-safe. */
int weir_merlin_ctl_server_handle(weir_merlin_ctl_server *s, const weir_merlin_ctl_msg *req,
                                  char *out, size_t outlen);

#endif
