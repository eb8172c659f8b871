/*
 * Bad input through the C API: every refusal the API promises, checked from C. Shared by the
 * host test (under AddressSanitizer and UBSan) and the Cortex-M4F firmware, so the same
 * checks pass on both.
 */
#ifndef ALEXNET_EXAMPLE_CHECKS_H
#define ALEXNET_EXAMPLE_CHECKS_H

#include <stddef.h>
#include <stdint.h>

/* Writes one line of text (no newline at its end). */
typedef void (*checks_log_fn)(const char *line);

/*
 * Runs the checks; returns how many failed. `f32_blob` and `int8_blob` are the micro net in
 * both precisions (64-byte aligned, as `alexnet export-c` writes them); `small_blob` is a
 * small valid blob of any net, which the checks copy into `scratch` (at least
 * `small_len + 64` bytes) to misalign, truncate and corrupt it; `arena` has `arena_len`
 * bytes, at least the int8 and the f32 micro net's arena.
 */
int checks_bad_input(const uint8_t *f32_blob, size_t f32_len,
                     const uint8_t *int8_blob, size_t int8_len,
                     const uint8_t *small_blob, size_t small_len,
                     uint8_t *scratch, size_t scratch_len,
                     uint8_t *arena, size_t arena_len,
                     checks_log_fn log);

#endif
