/*
 * classify: runs a model blob on images through the C API, on a desktop or server.
 *
 *   classify MODEL.blob [--logits] IMAGE.pgm|IMAGE.ppm...
 *
 * Images are binary PGM (grey) or PPM (RGB) already at the network's input size. For each
 * it prints the top 5 classes; with --logits also a line "logits <image> <bits>..." with
 * the logits' IEEE-754 bits in hex (int8 models: dequantized), which tests/c_api.rs compares
 * with `alexnet infer --logits-out`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet.h"

/* Reads a whole file into 64-byte-aligned memory (the blob is parsed in place). */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        size_t rounded = ((size_t)size + 63) / 64 * 64;
        data = aligned_alloc(64, rounded ? rounded : 64);
        if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* Skips whitespace and comments of a PNM header, then reads a decimal number. */
static long pnm_number(const uint8_t *p, size_t len, size_t *at) {
    while (*at < len && (p[*at] == ' ' || p[*at] == '\n' || p[*at] == '\r' || p[*at] == '\t' ||
                         p[*at] == '#')) {
        if (p[*at] == '#')
            while (*at < len && p[*at] != '\n') (*at)++;
        else
            (*at)++;
    }
    long v = -1;
    while (*at < len && p[*at] >= '0' && p[*at] <= '9' && v < 100000)
        v = (v < 0 ? 0 : v * 10) + (p[(*at)++] - '0');
    return v;
}

/* The pixels of a binary PGM (P5) or PPM (P6) file with 8-bit samples, or NULL. */
static const uint8_t *pnm_pixels(const uint8_t *p, size_t len, size_t *channels, size_t *w,
                                 size_t *h) {
    if (len < 3 || p[0] != 'P' || (p[1] != '5' && p[1] != '6')) return NULL;
    size_t at = 2;
    long width = pnm_number(p, len, &at), height = pnm_number(p, len, &at),
         max = pnm_number(p, len, &at);
    if (width <= 0 || height <= 0 || max != 255 || at >= len) return NULL;
    at++; /* the single whitespace byte before the samples */
    *channels = p[1] == '5' ? 1 : 3;
    *w = (size_t)width;
    *h = (size_t)height;
    if (len - at < *channels * *w * *h) return NULL;
    return p + at;
}

static int fail(const char *what, alexnet_status_t status) {
    fprintf(stderr, "classify: %s: %s (status %d)\n", what, alexnet_status_message(status),
            (int)status);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: classify MODEL.blob [--logits] IMAGE.pgm|IMAGE.ppm...\n");
        return 2;
    }
    size_t blob_len = 0;
    uint8_t *blob = read_file(argv[1], &blob_len);
    if (!blob) {
        fprintf(stderr, "classify: cannot read %s\n", argv[1]);
        return 1;
    }
    static alexnet_model_t model; /* zeroed: static storage */
    alexnet_status_t s = alexnet_model_parse(blob, blob_len, &model);
    if (s != ALEXNET_OK) return fail(argv[1], s);
    alexnet_model_info_t info;
    if ((s = alexnet_model_info(&model, &info)) != ALEXNET_OK) return fail("info", s);
    printf("%s: %s, %s, input %zux%zux%zu, %zu classes, arena %zu bytes\n", argv[1], info.name,
           info.precision == ALEXNET_PRECISION_INT8 ? "int8" : "f32", info.input_channels,
           info.input_height, info.input_width, info.classes, info.arena_bytes);

    uint8_t *arena = malloc(info.arena_bytes);
    float *input = malloc(info.input_len * sizeof *input);
    int8_t *codes = malloc(info.input_len);
    float *logits = malloc(info.classes * sizeof *logits);
    float *probs = malloc(info.classes * sizeof *probs);
    int8_t *q_logits = malloc(info.classes);
    if (!arena || !input || !codes || !logits || !probs || !q_logits) {
        fprintf(stderr, "classify: out of memory\n");
        return 1;
    }
    int print_logits = 0, status = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--logits") == 0) {
            print_logits = 1;
            continue;
        }
        size_t len = 0, channels = 0, w = 0, h = 0;
        uint8_t *file = read_file(argv[i], &len);
        const uint8_t *pixels = file ? pnm_pixels(file, len, &channels, &w, &h) : NULL;
        if (!pixels || channels != info.input_channels || w != info.input_width ||
            h != info.input_height) {
            fprintf(stderr, "classify: %s is not a binary PGM/PPM of %zux%zu with %zu channel(s)\n",
                    argv[i], info.input_width, info.input_height, info.input_channels);
            free(file);
            status = 1;
            continue;
        }
        s = alexnet_preprocess(&model, pixels, channels * w * h, input, info.input_len);
        if (s == ALEXNET_OK && info.precision == ALEXNET_PRECISION_INT8) {
            s = alexnet_quantize_input(&model, input, info.input_len, codes, info.input_len);
            if (s == ALEXNET_OK)
                s = alexnet_forward_int8(&model, codes, info.input_len, arena, info.arena_bytes,
                                         q_logits, info.classes);
            if (s == ALEXNET_OK)
                s = alexnet_dequantize_logits(&model, q_logits, info.classes, logits, info.classes);
        } else if (s == ALEXNET_OK) {
            s = alexnet_forward_f32(&model, input, info.input_len, arena, info.arena_bytes, logits,
                                    info.classes);
        }
        size_t best[5], n = 0;
        if (s == ALEXNET_OK) s = alexnet_softmax(logits, probs, info.classes);
        if (s == ALEXNET_OK) s = alexnet_top_k(probs, info.classes, best, 5, &n);
        free(file);
        if (s != ALEXNET_OK) {
            status = fail(argv[i], s);
            continue;
        }
        printf("%s\n", argv[i]);
        for (size_t r = 0; r < n; r++) {
            char label[128];
            if (alexnet_class_label(&model, best[r], label, sizeof label) != ALEXNET_OK)
                label[0] = 0;
            printf("  %zu. %6.2f%%  %4zu  %s\n", r + 1, probs[best[r]] * 100.0, best[r], label);
        }
        if (print_logits) {
            printf("logits %s", argv[i]);
            for (size_t c = 0; c < info.classes; c++) {
                uint32_t bits;
                memcpy(&bits, &logits[c], sizeof bits);
                printf(" %08x", (unsigned)bits);
            }
            printf("\n");
        }
    }
    free(arena);
    free(input);
    free(codes);
    free(logits);
    free(probs);
    free(q_logits);
    free(blob);
    return status;
}
