/* result.h (internal) — results a worker hands the reducer, as CBOR.
 *
 * Wire form (one CBOR map, shortest heads):
 *   {"event": uint, "worker": int, "params": tstr (hash), "values": {key: value}}
 * values are int, float64, text, bytes, or arrays as RFC 8746 tag 40
 * [[dims...], <typed-array tag 64..86>(bstr)] — the same convention DECTRIS
 * stream v2 uses, so the bytes can cross threads, processes and MPI ranks
 * unchanged. Integers use the shortest head. An array keeps its dtype, byte
 * order and shape — except bool, which comes back as uint8 (RFC 8746 has no
 * boolean typed array). */
#ifndef WEIR_CORE_RESULT_H
#define WEIR_CORE_RESULT_H

#include "weir/array.h"
#include "weir/buffer.h"
#include "weir/plugin.h"

weir_result *weir_result_new(uint64_t event, int worker, const char *params_hash);
void weir_result_free(weir_result *r);
int weir_result_set_i64(weir_result *r, const char *key, int64_t v);
int weir_result_set_f64(weir_result *r, const char *key, double v);
int weir_result_set_str(weir_result *r, const char *key, const char *v);
int weir_result_set_bytes(weir_result *r, const char *key, const void *data, size_t len);
int weir_result_set_array(weir_result *r, const char *key, const weir_array *a);
size_t weir_result_nvalues(const weir_result *r);
/* Encodes to a new buffer (transfer full). */
int weir_result_encode(const weir_result *r, weir_buf **out);
/* Decodes a buffer produced by weir_result_encode (keeps a ref to buf). */
int weir_result_decode(weir_buf *buf, weir_result **out, char *err, size_t errlen);

uint64_t weir_result_event(const weir_result *r);
int weir_result_worker(const weir_result *r);
const char *weir_result_params_hash(const weir_result *r);
int weir_result_has(const weir_result *r, const char *key);
int weir_result_get_i64(const weir_result *r, const char *key, int64_t *out);
int weir_result_get_f64(const weir_result *r, const char *key, double *out);
int weir_result_get_str(const weir_result *r, const char *key, const char **out);
int weir_result_get_bytes(const weir_result *r, const char *key, const void **data, size_t *len);
int weir_result_get_array(const weir_result *r, const char *key, weir_array *out);

/* An array as RFC 8746 CBOR: tag 40 [[dims...], typed-array tag(bytes)]
 * (non-contiguous arrays are packed); NULL for a dtype without a typed-array
 * tag or on OOM. The caller owns the item (cbor_decref). */
struct cbor_item_t;
struct cbor_item_t *weir_cbor_typed_array(const weir_array *a);
/* RFC 8746 typed-array tag for a dtype (0 if none) and back. */
uint64_t weir_typed_array_tag(weir_dtype dt);
int weir_typed_array_dtype(uint64_t tag, weir_dtype *out);

#endif
