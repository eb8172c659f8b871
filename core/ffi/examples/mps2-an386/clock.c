/* SysTick as a 64-bit tick counter, the same scheme as the Rust firmware's measure.rs. */
#include "board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04)
#define RELOAD 0x00ffffffu

static volatile uint32_t wraps;

void systick_handler(void) { wraps++; }

void clock_start(void) {
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* core clock, interrupt, enabled */
    /* After clearing, the counter reads 0 until its first reload. */
    while (SYST_CVR == 0) {
    }
}

uint64_t clock_now(void) {
    for (;;) {
        uint32_t w = wraps, v = SYST_CVR;
        /* QEMU takes interrupts between translated blocks: a pending SysTick with a freshly
         * reloaded counter is a wrap not yet counted. */
        int pending = (SCB_ICSR >> 26) & 1;
        if (w != wraps) continue;
        uint64_t n = (uint64_t)w + (pending && v > RELOAD / 2);
        return n * ((uint64_t)RELOAD + 1) + (RELOAD - v);
    }
}

uint64_t clock_calibrate(void) {
    uint64_t t0 = clock_now();
    uint32_t n = CALIBRATION_TURNS;
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
    return clock_now() - t0;
}
