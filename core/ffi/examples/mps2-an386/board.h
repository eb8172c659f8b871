/* What main.c needs from the board: text out, exit, and an instruction clock. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

/* Writes NUL-terminated text to the host (semihosting). */
void board_write(const char *text);
/* Ends the program: 0 is success. */
void board_exit(int status);

/* SysTick as a 64-bit count of core clock ticks (under QEMU -icount, of instructions). */
void clock_start(void);
uint64_t clock_now(void);
/* Ticks a loop of 2 * CALIBRATION_TURNS instructions takes. */
#define CALIBRATION_TURNS 4000000u
uint64_t clock_calibrate(void);

#endif
