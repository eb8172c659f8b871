/*
 * AlexNet's micro net on a Cortex-M4F, in plain C through the C API: the blobs in flash as
 * `alexnet export-c` writes them, one static arena sized by the header's constants, test
 * images in flash. For each image it runs int8 and f32 and prints the logits (f32 as their
 * bits) and the instructions each inference took, in the same lines as the Rust firmware, so
 * that the host checks every logit the same way (tests/c_api.rs). Then the bad-input checks.
 */
#include <stddef.h>
#include <stdint.h>

#include "alexnet.h"
#include "board.h"
#include "checks.h"
#include "micro_f32.h"  /* alexnet export-c micro-f32.blob --name micro_f32 */
#include "micro_int8.h" /* alexnet export-c micro-int8.blob --name micro_int8 */
#include "small.h"      /* alexnet export-c of a small blob of another net, for the checks */
#include "test_images.h"

#define ARENA_BYTES                                                                  \
    (ALEXNET_MICRO_ARENA_BYTES_F32 > ALEXNET_MICRO_ARENA_BYTES_INT8 ? ALEXNET_MICRO_ARENA_BYTES_F32 \
                                                                  : ALEXNET_MICRO_ARENA_BYTES_INT8)

static uint8_t arena[ARENA_BYTES];
static uint8_t scratch[SMALL_LEN + 64];
static alexnet_model_t int8_model, f32_model;

/* A line of text, built piece by piece and written at its end. */
static char line[2048];
static size_t used;

static void put(const char *s) {
    while (*s && used + 2 < sizeof line) line[used++] = *s++;
}
static void put_u(uint64_t v) {
    char d[21];
    int n = 0;
    do d[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 20);
    while (n) {
        char c[2] = {d[--n], 0};
        put(c);
    }
}
static void put_i(int64_t v) {
    if (v < 0) put("-");
    put_u(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}
static void field(const char *name, uint64_t v) {
    put(" ");
    put(name);
    put("=");
    put_u(v);
}
static void end_line(void) {
    line[used++] = '\n';
    line[used] = 0;
    board_write(line);
    used = 0;
}
static void log_line(const char *text) {
    put(text);
    end_line();
}

/* Stops with the API's message if `status` is not ALEXNET_OK. */
static int ok(alexnet_status_t status, const char *what) {
    if (status == ALEXNET_OK) return 1;
    put("FAIL ");
    put(what);
    put(": ");
    put(alexnet_status_message((int32_t)status));
    end_line();
    return 0;
}

/* The class with the largest int8 logit, lowest index on ties (as the Rust firmware). */
static size_t argmax_i8(const int8_t *q, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (q[i] > q[best]) best = i;
    return best;
}

/* Flash and RAM in use, from the linker script's symbols. */
extern uint8_t __flash_end, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __stack_limit, __stack_top;

/* The stack's peak, by painting: every free word below the current frame gets a pattern at
 * start; the lowest word that lost it is as deep as the stack went. */
#define PAINT 0xa5a5a5a5u
static void paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &__stack_limit; p < sp - 16; p++) *p = PAINT;
}
static uintptr_t stack_peak(void) {
    const uint32_t *p = &__stack_limit;
    while (p < &__stack_top && *p == PAINT) p++;
    return (uintptr_t)&__stack_top - (uintptr_t)p;
}

int main(void) {
    paint_stack();
    clock_start();
    uint64_t cal_ticks = clock_calibrate();
    if (!ok(alexnet_model_parse(micro_int8, MICRO_INT8_LEN, &int8_model), "int8 blob") ||
        !ok(alexnet_model_parse(micro_f32, MICRO_F32_LEN, &f32_model), "f32 blob"))
        return 1;
    alexnet_model_info_t i8, f32;
    if (!ok(alexnet_model_info(&int8_model, &i8), "info") ||
        !ok(alexnet_model_info(&f32_model, &f32), "info"))
        return 1;
    if (i8.precision != ALEXNET_PRECISION_INT8 || f32.precision != ALEXNET_PRECISION_F32 ||
        i8.input_len != ALEXNET_MICRO_INPUT_LEN || i8.classes != ALEXNET_MICRO_CLASSES ||
        f32.input_len != ALEXNET_MICRO_INPUT_LEN || f32.classes != ALEXNET_MICRO_CLASSES) {
        log_line("FAIL the blobs are not the micro net in int8 and f32");
        return 1;
    }
    put("FW");
    field("arena", ARENA_BYTES);
    field("arena_f32", alexnet_model_arena_bytes(&f32_model));
    field("arena_int8", alexnet_model_arena_bytes(&int8_model));
    field("flash", (uintptr_t)&__flash_end + (uintptr_t)(&__data_end - &__data_start));
    field("ram_static", (uintptr_t)(&__bss_end - &__data_start));
    field("cal_instructions", 2 * (uint64_t)CALIBRATION_TURNS);
    field("cal_ticks", cal_ticks);
    field("int8_blob", MICRO_INT8_LEN);
    field("f32_blob", MICRO_F32_LEN);
    field("macs", f32.macs);
    end_line();

    static float input[ALEXNET_MICRO_INPUT_LEN], logits[ALEXNET_MICRO_CLASSES];
    static int8_t codes[ALEXNET_MICRO_INPUT_LEN], q_logits[ALEXNET_MICRO_CLASSES];
    unsigned right8 = 0, right32 = 0;
    for (size_t i = 0; i < TEST_IMAGE_COUNT; i++) {
        const uint8_t *pixels = test_pixels[i];
        if (!ok(alexnet_preprocess(&int8_model, pixels, TEST_IMAGE_BYTES, input,
                                   ALEXNET_MICRO_INPUT_LEN),
                "preprocess") ||
            !ok(alexnet_quantize_input(&int8_model, input, ALEXNET_MICRO_INPUT_LEN, codes,
                                       ALEXNET_MICRO_INPUT_LEN),
                "quantize"))
            return 1;
        uint64_t t0 = clock_now();
        alexnet_status_t s = alexnet_forward_int8(&int8_model, codes, ALEXNET_MICRO_INPUT_LEN,
                                                  arena, sizeof arena, q_logits,
                                                  ALEXNET_MICRO_CLASSES);
        uint64_t int8_ticks = clock_now() - t0;
        if (!ok(s, "int8 forward")) return 1;
        size_t class8 = argmax_i8(q_logits, ALEXNET_MICRO_CLASSES);

        if (!ok(alexnet_preprocess(&f32_model, pixels, TEST_IMAGE_BYTES, input,
                                   ALEXNET_MICRO_INPUT_LEN),
                "preprocess"))
            return 1;
        t0 = clock_now();
        s = alexnet_forward_f32(&f32_model, input, ALEXNET_MICRO_INPUT_LEN, arena, sizeof arena,
                                logits, ALEXNET_MICRO_CLASSES);
        uint64_t f32_ticks = clock_now() - t0;
        size_t best[1];
        if (!ok(s, "f32 forward") || !ok(alexnet_top_k(logits, ALEXNET_MICRO_CLASSES, best, 1, NULL), "top-k"))
            return 1;

        right8 += class8 == test_labels[i];
        right32 += best[0] == test_labels[i];
        put("IMG ");
        put_u(i);
        field("label", test_labels[i]);
        field("int8_class", class8);
        field("f32_class", best[0]);
        field("int8_ticks", int8_ticks);
        field("f32_ticks", f32_ticks);
        put(" int8=[");
        for (size_t c = 0; c < ALEXNET_MICRO_CLASSES; c++) {
            if (c) put(", ");
            put_i(q_logits[c]);
        }
        put("] f32=[");
        for (size_t c = 0; c < ALEXNET_MICRO_CLASSES; c++) {
            union { float f; uint32_t u; } bits = {logits[c]};
            if (c) put(", ");
            put_u(bits.u);
        }
        put("]");
        end_line();
    }
    int failed = checks_bad_input(micro_f32, MICRO_F32_LEN, micro_int8, MICRO_INT8_LEN, small,
                                  SMALL_LEN, scratch, sizeof scratch, arena, sizeof arena,
                                  log_line);
    put("DONE");
    field("images", TEST_IMAGE_COUNT);
    field("int8_correct", right8);
    field("f32_correct", right32);
    field("checks_failed", (uint64_t)failed);
    field("stack_peak", stack_peak());
    end_line();
    return failed != 0;
}
