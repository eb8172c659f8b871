/*
 * check: the bad-input checks of ../common/checks.c on this machine (tests/c_api.rs runs it
 * under AddressSanitizer and UBSan).
 *
 *   check MICRO_F32.blob MICRO_INT8.blob SMALL.blob
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "alexnet.h"
#include "checks.h"

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (f && size > 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = aligned_alloc(64, ((size_t)size + 63) / 64 * 64);
        if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    if (f) fclose(f);
    *len = (size_t)size;
    return data;
}

static void say(const char *line) { printf("%s\n", line); }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: check MICRO_F32.blob MICRO_INT8.blob SMALL.blob\n");
        return 2;
    }
    size_t len[3];
    uint8_t *blob[3];
    for (int i = 0; i < 3; i++) {
        blob[i] = read_file(argv[i + 1], &len[i]);
        if (!blob[i]) {
            fprintf(stderr, "check: cannot read %s\n", argv[i + 1]);
            return 2;
        }
    }
    size_t scratch_len = len[2] + 64;
    /* Exactly the sizes the checks are given, so that the sanitizer sees any overrun. */
    uint8_t *scratch = malloc(scratch_len);
    size_t arena_len = ALEXNET_MICRO_ARENA_BYTES_F32 > ALEXNET_MICRO_ARENA_BYTES_INT8
                           ? ALEXNET_MICRO_ARENA_BYTES_F32
                           : ALEXNET_MICRO_ARENA_BYTES_INT8;
    uint8_t *arena = malloc(arena_len);
    if (!scratch || !arena) return 2;
    int failed = checks_bad_input(blob[0], len[0], blob[1], len[1], blob[2], len[2], scratch,
                                  scratch_len, arena, arena_len, say);
    printf("DONE checks_failed=%d (library %s)\n", failed, alexnet_version());
    for (int i = 0; i < 3; i++) free(blob[i]);
    free(scratch);
    free(arena);
    return failed != 0;
}
