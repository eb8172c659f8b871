/* See checks.h. Plain C99 with no library calls, so that the firmware can run it too. */
#include "checks.h"

#include "alexnet.h"

static checks_log_fn say;
static int failures;

/* Appends `text` to `line` at `*at`, leaving room for the NUL. */
static void append(char *line, size_t cap, size_t *at, const char *text) {
    while (*text && *at + 1 < cap) line[(*at)++] = *text++;
    line[*at] = 0;
}

static void append_int(char *line, size_t cap, size_t *at, long v) {
    char digits[24];
    size_t n = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < sizeof digits);
    if (v < 0) append(line, cap, at, "-");
    while (n) {
        char d[2] = {digits[--n], 0};
        append(line, cap, at, d);
    }
}

/* One check: `got` must be `want`. Logs the outcome with the API's message. */
static void expect(const char *what, alexnet_status_t got, alexnet_status_t want) {
    char line[256];
    size_t at = 0;
    line[0] = 0;
    if (got == want) {
        append(line, sizeof line, &at, "CHECK ok ");
        append(line, sizeof line, &at, what);
        append(line, sizeof line, &at, ": ");
        append(line, sizeof line, &at, alexnet_status_message((int32_t)got));
    } else {
        failures++;
        append(line, sizeof line, &at, "FAIL ");
        append(line, sizeof line, &at, what);
        append(line, sizeof line, &at, ": status ");
        append_int(line, sizeof line, &at, (long)got);
        append(line, sizeof line, &at, " (");
        append(line, sizeof line, &at, alexnet_status_message((int32_t)got));
        append(line, sizeof line, &at, "), expected ");
        append_int(line, sizeof line, &at, (long)want);
    }
    say(line);
}

static void expect_true(const char *what, int ok) {
    expect(what, ok ? ALEXNET_OK : ALEXNET_ERR_WRONG_LENGTH, ALEXNET_OK);
}

static void copy(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* Whether `n` bytes at `p` all still hold `value`. */
static int untouched(const uint8_t *p, size_t n, uint8_t value) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != value) return 0;
    return 1;
}

int checks_bad_input(const uint8_t *f32_blob, size_t f32_len,
                     const uint8_t *int8_blob, size_t int8_len,
                     const uint8_t *small_blob, size_t small_len,
                     uint8_t *scratch, size_t scratch_len,
                     uint8_t *arena, size_t arena_len,
                     checks_log_fn log) {
    static alexnet_model_t f32m, int8m, other;
    static float input[ALEXNET_MICRO_INPUT_LEN];
    static int8_t codes[ALEXNET_MICRO_INPUT_LEN];
    /* The logits, with guard bytes after them that no refused call may touch. */
    static union {
        float f[ALEXNET_MICRO_CLASSES + 4];
        int8_t q[4 * (ALEXNET_MICRO_CLASSES + 4)];
    } out;
    const size_t classes = ALEXNET_MICRO_CLASSES;
    say = log;
    failures = 0;

    if (scratch_len < small_len + 64) {
        say("FAIL checks: the scratch buffer is too small");
        return 1;
    }
    expect("parse the f32 blob", alexnet_model_parse(f32_blob, f32_len, &f32m), ALEXNET_OK);
    expect("parse the int8 blob", alexnet_model_parse(int8_blob, int8_len, &int8m), ALEXNET_OK);
    for (size_t i = 0; i < ALEXNET_MICRO_INPUT_LEN; i++) {
        input[i] = 0.25f;
        codes[i] = 0;
    }

    /* NULL pointers. */
    expect("NULL blob", alexnet_model_parse(NULL, f32_len, &other), ALEXNET_ERR_NULL_POINTER);
    expect("NULL handle to parse into", alexnet_model_parse(f32_blob, f32_len, NULL),
           ALEXNET_ERR_NULL_POINTER);
    expect("NULL model", alexnet_forward_f32(NULL, input, ALEXNET_MICRO_INPUT_LEN, arena, arena_len,
                                             out.f, classes),
           ALEXNET_ERR_NULL_POINTER);
    expect("NULL input", alexnet_forward_f32(&f32m, NULL, ALEXNET_MICRO_INPUT_LEN, arena, arena_len,
                                             out.f, classes),
           ALEXNET_ERR_NULL_POINTER);
    expect("NULL arena", alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN, NULL, arena_len,
                                             out.f, classes),
           ALEXNET_ERR_NULL_POINTER);
    expect("NULL logits", alexnet_forward_int8(&int8m, codes, ALEXNET_MICRO_INPUT_LEN, arena,
                                               arena_len, NULL, classes),
           ALEXNET_ERR_NULL_POINTER);
    expect("NULL info", alexnet_model_info(&f32m, NULL), ALEXNET_ERR_NULL_POINTER);
    expect("NULL scores", alexnet_top_k(NULL, classes, NULL, 1, NULL), ALEXNET_ERR_NULL_POINTER);
    expect_true("a NULL model has no arena", alexnet_model_arena_bytes(NULL) == 0);

    /* A handle no parse filled, and one whose parse failed. */
    for (size_t i = 0; i < sizeof other; i++) ((uint8_t *)&other)[i] = 0;
    expect("a zeroed handle", alexnet_forward_f32(&other, input, ALEXNET_MICRO_INPUT_LEN, arena,
                                                  arena_len, out.f, classes),
           ALEXNET_ERR_NOT_A_MODEL);

    /* A misaligned blob: a valid blob copied one byte past an aligned address. */
    uint8_t *aligned = scratch + (64 - (uintptr_t)scratch % 64) % 64;
    copy(aligned + 1, small_blob, small_len);
    expect("a misaligned blob", alexnet_model_parse(aligned + 1, small_len, &other),
           ALEXNET_ERR_MISALIGNED);
    expect("after a failed parse the handle holds no model",
           alexnet_model_info(&other, &(alexnet_model_info_t){0}), ALEXNET_ERR_NOT_A_MODEL);

    /* Truncated and corrupt blobs (aligned, so that these are the only faults). */
    copy(aligned, small_blob, small_len);
    expect("the aligned copy parses", alexnet_model_parse(aligned, small_len, &other), ALEXNET_OK);
    expect("a blob cut inside its header", alexnet_model_parse(aligned, 20, &other),
           ALEXNET_ERR_TRUNCATED);
    expect("a blob missing its last byte", alexnet_model_parse(aligned, small_len - 1, &other),
           ALEXNET_ERR_LENGTH_MISMATCH);
    aligned[small_len - 1] ^= 0x5a;
    expect("a blob with one byte changed", alexnet_model_parse(aligned, small_len, &other),
           ALEXNET_ERR_CHECKSUM);
    aligned[0] = 'X';
    expect("not a blob at all", alexnet_model_parse(aligned, small_len, &other),
           ALEXNET_ERR_BAD_MAGIC);

    /* An arena too small: refused, and nothing written past the logits. The size the API
     * gives includes 63 bytes of slack for aligning the arena's start to 64, so 64 bytes
     * less is too small wherever the arena starts. */
    size_t need = alexnet_model_arena_bytes(&f32m);
    expect_true("the f32 model's arena fits the test's arena", need > 64 && need <= arena_len);
    for (size_t i = 0; i < sizeof out; i++) ((uint8_t *)&out)[i] = 0xa5;
    expect("an arena 64 bytes short", alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN,
                                                          arena, need - 64, out.f, classes),
           ALEXNET_ERR_BUFFER_TOO_SMALL);
    expect_true("the refused call wrote no logit and no guard byte",
                untouched((const uint8_t *)&out, sizeof out, 0xa5));

    /* The wrong precision's forward pass. */
    expect("f32 forward on the int8 model",
           alexnet_forward_f32(&int8m, input, ALEXNET_MICRO_INPUT_LEN, arena, arena_len, out.f,
                               classes),
           ALEXNET_ERR_WRONG_PRECISION);
    expect("int8 forward on the f32 model",
           alexnet_forward_int8(&f32m, codes, ALEXNET_MICRO_INPUT_LEN, arena, arena_len, out.q,
                                classes),
           ALEXNET_ERR_WRONG_PRECISION);

    /* Wrong lengths, misaligned arrays, overlapping buffers. */
    expect("an input one element short",
           alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN - 1, arena, arena_len, out.f,
                               classes),
           ALEXNET_ERR_WRONG_LENGTH);
    expect("room for one logit too few",
           alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN, arena, arena_len, out.f,
                               classes - 1),
           ALEXNET_ERR_WRONG_LENGTH);
    expect("a misaligned float array",
           alexnet_forward_f32(&f32m, (const float *)((const uint8_t *)input + 1),
                               ALEXNET_MICRO_INPUT_LEN - 1, arena, arena_len, out.f, classes),
           ALEXNET_ERR_MISALIGNED);
    expect("logits inside the arena",
           alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN, arena, arena_len,
                               (float *)(void *)(arena + 64), classes),
           ALEXNET_ERR_OVERLAPPING_BUFFERS);
    expect("softmax in place", alexnet_softmax(out.f, out.f, classes),
           ALEXNET_ERR_OVERLAPPING_BUFFERS);
    expect("an array longer than the address space",
           alexnet_forward_int8(&int8m, codes, SIZE_MAX, arena, arena_len, out.q, classes),
           ALEXNET_ERR_WRONG_LENGTH);

    /* Labels: a buffer too small, a class that does not exist. */
    alexnet_model_info_t info;
    expect("model info", alexnet_model_info(&f32m, &info), ALEXNET_OK);
    if (info.has_labels) {
        char small[2];
        expect("a label buffer of 2 bytes", alexnet_class_label(&f32m, 0, small, sizeof small),
               ALEXNET_ERR_BUFFER_TOO_SMALL);
        expect_true("... leaves an empty string", small[0] == 0);
    }
    char label[64];
    expect("a class past the last", alexnet_class_label(&f32m, classes, label, sizeof label),
           ALEXNET_ERR_NO_LABEL);

    /* Every code has a message; unknown codes too. */
    expect_true("a message for an unknown code",
                alexnet_status_message(-7) != NULL && alexnet_status_message(-7)[0] == 'u');

    /* After all that, the models still run. */
    expect("the f32 model runs", alexnet_forward_f32(&f32m, input, ALEXNET_MICRO_INPUT_LEN, arena,
                                                     arena_len, out.f, classes),
           ALEXNET_OK);
    expect("the int8 model runs", alexnet_forward_int8(&int8m, codes, ALEXNET_MICRO_INPUT_LEN,
                                                       arena, arena_len, out.q, classes),
           ALEXNET_OK);
    return failures;
}
