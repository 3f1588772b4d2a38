/* cbor_guard.h (internal) — a cheap pre-check before handing untrusted bytes
 * to libcbor's cbor_load. */
#ifndef WEIR_CORE_CBOR_GUARD_H
#define WEIR_CORE_CBOR_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Walks every head of data with libcbor's streaming decoder and checks that
 * no array or map declares more elements than bytes remain (each element
 * needs at least one). cbor_load allocates a declared container size up
 * front, so a 9-byte head could otherwise ask for tens of gigabytes.
 * Returns 0, or WEIR_ECBOR / WEIR_ETRUNCATED with *bad_offset set. */
int weir_cbor_guard(const uint8_t *data, size_t len, size_t *bad_offset);

#endif
