/* weir/simplon_stub.h — an in-memory DECTRIS SIMPLON REST server
 * (libmicrohttpd), for weir's simulator and for tests.
 *
 * It answers what a DCU answers to the requests LiberTEM-live and weir's
 * client send, under /<module>/api/<version>/...:
 *   GET  /detector/api/version/                 {"value": "1.8.0", ...}
 *   GET  /detector|stream|filewriter/api/V/config/NAME
 *        {"value", "value_type", "access_mode", "min"/"max"/"allowed_values", "unit"}
 *   PUT  the same with {"value": v}: the type and range are checked (a
 *        wrong one: HTTP 400 with a message naming the parameter); the
 *        reply is the JSON list of parameters that changed
 *   GET  /detector|stream|filewriter/api/V/status/state
 *   PUT  /detector/api/V/command/arm|trigger|disarm|cancel|abort|initialize
 * and 404 for any other path, 405 for a wrong method, 413 for a body over
 * the limit. Detector parameters: nimages, ntrigger, trigger_mode,
 * x_pixels_in_detector, y_pixels_in_detector, count_time, frame_time,
 * bit_depth_image, bit_depth_readout, compression, roi_mode, roi_y_size,
 * roi_bit_depth, mask_to_zero, photon_energy, threshold_energy,
 * beam_center_x/y, detector_distance, x/y_pixel_size, sensor_material,
 * sensor_thickness, description, detector_number, countrate_correction_applied,
 * flatfield_correction_applied, pixel_mask_applied, number_of_excluded_pixels.
 * Stream: mode, header_detail, format. Filewriter: mode, name_pattern,
 * nimages_per_file.
 *
 * States: idle --arm--> ready --trigger--> acquire. A trigger needs ready
 * or acquire and one of the ntrigger triggers left; arm needs idle; disarm,
 * cancel and abort always go back to idle. Every arm gives the next
 * sequence id (1, 2, ...). The owner learns of them through callbacks,
 * called one at a time with no weir lock held (they may call the
 * weir_simplon_stub_* functions), on the server thread — or on the caller's
 * thread for weir_simplon_stub_handle.
 *
 * Thread-safe. Functions return 0 or a negative WEIR_E* code. */
#ifndef WEIR_SIMPLON_STUB_H
#define WEIR_SIMPLON_STUB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct weir_simplon_stub weir_simplon_stub;

typedef enum {
    WEIR_SIMPLON_IDLE = 0,
    WEIR_SIMPLON_READY = 1,  /* armed */
    WEIR_SIMPLON_ACQUIRE = 2 /* triggered */
} weir_simplon_state;

typedef struct {
    void *user;
    /* After arm. config: every detector parameter as {"name": value, ...}
     * (borrowed, valid during the call) — what a dheader's "basic" config
     * part carries. Non-zero refuses the arm: HTTP 500, state stays idle. */
    int (*on_arm)(void *user, int64_t series, const cJSON *config);
    /* After trigger number `trigger` (0-based) of the series. */
    void (*on_trigger)(void *user, int64_t series, int64_t trigger);
    /* After disarm, cancel, abort or initialize of an armed series;
     * command names which. */
    void (*on_disarm)(void *user, int64_t series, const char *command);
} weir_simplon_stub_callbacks;

typedef struct {
    const char *bind_addr;   /* NULL: "127.0.0.1" */
    int port;                /* 0: a free port (weir_simplon_stub_port) */
    const char *api_version; /* NULL: "1.8.0" */
    size_t max_body;         /* largest request body accepted; 0: 64 KiB */
    weir_simplon_stub_callbacks cb;
} weir_simplon_stub_config;

/* The state without a server (weir_simplon_stub_handle works). */
int weir_simplon_stub_new(const weir_simplon_stub_config *cfg, weir_simplon_stub **out);
/* Starts serving HTTP on cfg's address and port. */
int weir_simplon_stub_start(weir_simplon_stub *s, char *err, size_t errlen);
/* The bound port (after start), else 0. */
int weir_simplon_stub_port(const weir_simplon_stub *s);
/* Stops the server (waiting for a request in progress) and frees. */
void weir_simplon_stub_free(weir_simplon_stub *s);

/* Sets a parameter as the owner (e.g. the frame size and bit depth of the
 * data it serves): read-only ones included, the type still checked.
 * module NULL: "detector". value is borrowed. WEIR_ENOTFOUND, WEIR_EPARAM. */
int weir_simplon_stub_set(weir_simplon_stub *s, const char *module, const char *name,
                          const cJSON *value);
/* A copy of a parameter's value (caller deletes), NULL if unknown. */
cJSON *weir_simplon_stub_get(weir_simplon_stub *s, const char *module, const char *name);
weir_simplon_state weir_simplon_stub_state(weir_simplon_stub *s);
/* The owner finished what the current trigger asked for: acquire -> ready,
 * or -> idle after the last of ntrigger triggers (as a DCU does). */
void weir_simplon_stub_trigger_done(weir_simplon_stub *s);
/* The owner sent the whole series (e.g. exte/exts, where no REST trigger
 * comes, or after the series end message): back to idle, no callback. */
void weir_simplon_stub_series_done(weir_simplon_stub *s);
/* The sequence id of the last arm (0 before any). */
int64_t weir_simplon_stub_series(weir_simplon_stub *s);

/* Answers one request as the server does (callbacks included). method
 * "GET"/"PUT"/..., path the URL path, body may be NULL. *status gets the
 * HTTP status, *reply a malloc'd NUL-terminated body (caller frees).
 * Returns 0 (whatever the status) or WEIR_ENOMEM. For tests and fuzzing. */
int weir_simplon_stub_handle(weir_simplon_stub *s, const char *method, const char *path,
                             const char *body, size_t body_len, int *status, char **reply);

#endif
