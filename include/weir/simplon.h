/* weir/simplon.h — client of the DECTRIS SIMPLON REST API (libcurl).
 *
 * SIMPLON is HTTP/1.1 with JSON bodies under
 * http://host:port/<module>/api/<version>/<task>/<name>: module "detector",
 * "stream", "filewriter" or "monitor"; task "config", "status" or
 * "command". A GET answers {"value": v, "value_type": ..., ...}; a config
 * PUT sends {"value": v} and answers the list of parameters the detector
 * changed as a consequence; PUT command/arm answers {"sequence id": N}.
 *
 * Errors: 0 or a negative WEIR_E* code. With err/errlen the message names
 * the method and URL, then the HTTP status and the body the detector sent
 * ("PUT http://h:80/detector/api/1.8.0/config/nimages: HTTP 400: ...").
 * Codes: WEIR_EIO for a transport failure or timeout and for 5xx,
 * WEIR_EPARAM for 400 (a value the detector refused), WEIR_ENOTFOUND for
 * 404, WEIR_EJSON for a reply that is not the expected JSON.
 *
 * A handle is thread-safe (its requests are serialised); cJSON values
 * returned are the caller's (cJSON_Delete). No function prints. */
#ifndef WEIR_SIMPLON_H
#define WEIR_SIMPLON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define WEIR_SIMPLON_API_VERSION "1.8.0"

typedef struct weir_simplon weir_simplon;

typedef struct {
    const char *host;        /* name or address of the DCU */
    int port;                /* 0: 80 */
    const char *api_version; /* NULL: WEIR_SIMPLON_API_VERSION */
    long timeout_ms;         /* whole request, 0: 10000 (arm can take seconds on a DCU) */
    long connect_timeout_ms; /* 0: 3000 */
} weir_simplon_config;

/* Makes a client; nothing is sent yet. Copies what it needs from cfg. */
int weir_simplon_new(const weir_simplon_config *cfg, weir_simplon **out, char *err, size_t errlen);
void weir_simplon_free(weir_simplon *c);
/* "http://host:port" (borrowed). */
const char *weir_simplon_base_url(const weir_simplon *c);

/* GET /<module>/api/<ver>/<task>/<name>: *value is the "value" member,
 * detached (caller deletes); *full (may be NULL) the whole reply object. */
int weir_simplon_get(weir_simplon *c, const char *module, const char *task, const char *name,
                     cJSON **value, cJSON **full, char *err, size_t errlen);
/* PUT /<module>/api/<ver>/<task>/<name> with body {"value": value}
 * (value NULL: an empty body, as commands are sent). *reply (may be NULL)
 * gets the parsed reply, or NULL when the body was empty. value is
 * borrowed. */
int weir_simplon_put(weir_simplon *c, const char *module, const char *task, const char *name,
                     const cJSON *value, cJSON **reply, char *err, size_t errlen);

/* GET /detector/api/version/: writes the version string ("1.8.0"). */
int weir_simplon_version(weir_simplon *c, char *version, size_t len, char *err, size_t errlen);

/* Detector configuration: get one value (caller deletes); set one value and
 * get the changed parameters as a JSON array of names (caller deletes; an
 * empty array when the detector reported none; changed may be NULL). */
int weir_simplon_config_get(weir_simplon *c, const char *name, cJSON **value, char *err,
                            size_t errlen);
int weir_simplon_config_set(weir_simplon *c, const char *name, const cJSON *value, cJSON **changed,
                            char *err, size_t errlen);
/* Typed shortcuts. get_int refuses a non-integral number (WEIR_EJSON),
 * get_string a non-string; get_string copies into buf (WEIR_ERANGE if it
 * does not fit). */
int weir_simplon_config_get_int(weir_simplon *c, const char *name, int64_t *v, char *err,
                                size_t errlen);
int weir_simplon_config_get_double(weir_simplon *c, const char *name, double *v, char *err,
                                   size_t errlen);
int weir_simplon_config_get_string(weir_simplon *c, const char *name, char *buf, size_t len,
                                   char *err, size_t errlen);
int weir_simplon_config_set_int(weir_simplon *c, const char *name, int64_t v, char *err,
                                size_t errlen);
int weir_simplon_config_set_double(weir_simplon *c, const char *name, double v, char *err,
                                   size_t errlen);
int weir_simplon_config_set_string(weir_simplon *c, const char *name, const char *v, char *err,
                                   size_t errlen);
int weir_simplon_config_set_bool(weir_simplon *c, const char *name, int v, char *err,
                                 size_t errlen);

/* Detector commands (PUT /detector/api/<ver>/command/<name>). arm writes
 * the sequence (series) id the stream will carry; disarm also answers one
 * on a DCU (sequence_id may be NULL). */
int weir_simplon_arm(weir_simplon *c, int64_t *sequence_id, char *err, size_t errlen);
int weir_simplon_trigger(weir_simplon *c, char *err, size_t errlen);
int weir_simplon_disarm(weir_simplon *c, int64_t *sequence_id, char *err, size_t errlen);
int weir_simplon_cancel(weir_simplon *c, char *err, size_t errlen);
int weir_simplon_abort(weir_simplon *c, char *err, size_t errlen);
int weir_simplon_initialize(weir_simplon *c, char *err, size_t errlen);

/* Stream interface: mode "enabled"/"disabled" and header_detail
 * "none"/"basic"/"all" (others: WEIR_EINVAL before anything is sent). */
int weir_simplon_stream_set_enabled(weir_simplon *c, int enabled, char *err, size_t errlen);
int weir_simplon_stream_set_header_detail(weir_simplon *c, const char *detail, char *err,
                                          size_t errlen);

/* GET /<module>/api/<ver>/status/state ("idle", "ready", "acquire", "na",
 * "error", ...) into buf. module NULL: "detector". */
int weir_simplon_status_state(weir_simplon *c, const char *module, char *buf, size_t len, char *err,
                              size_t errlen);

/* Frames one armed series will carry, from nimages, ntrigger and
 * trigger_mode as LiberTEM-live counts them: ntrigger for exte and inte,
 * nimages * ntrigger for exts and ints. */
int weir_simplon_frame_count(weir_simplon *c, uint64_t *frames, char *err, size_t errlen);

#endif
