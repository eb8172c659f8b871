/*
 * Start-up for the Cortex-M4F: the vector table, the reset handler (copy .data, clear .bss,
 * enable the FPU, run main, report its result to the debugger) and semihosting, which QEMU
 * (and a debug probe) turns into text on the host and the program's exit status.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern int main(void);

/* Semihosting: BKPT 0xAB with the operation in r0 and its argument in r1. */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's stdout: SYS_OPEN of ":tt" in mode "w" (4); mode "a" (8) would be stderr. */
static int host_stdout(void) {
    static int handle = -1;
    if (handle < 0) {
        const uintptr_t args[3] = {(uintptr_t)":tt", 4, 3};
        handle = semihost(0x01 /* SYS_OPEN */, args);
    }
    return handle;
}

void board_write(const char *text) {
    uintptr_t len = 0;
    while (text[len]) len++;
    const uintptr_t args[3] = {(uintptr_t)host_stdout(), (uintptr_t)text, len};
    semihost(0x05 /* SYS_WRITE */, args);
}

void board_exit(int status) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit is success, any other reason a failure. */
    semihost(0x18, (const void *)(uintptr_t)(status == 0 ? 0x20026 : 0x20023));
    for (;;) __asm__ volatile("wfi");
}

void reset_handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end; dst++) *dst = 0;
    /* CPACR: full access to CP10 and CP11, the FPU, before any floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n isb" ::: "memory");
    board_exit(main());
}

static void hard_fault(void) {
    board_write("HARDFAULT\n");
    board_exit(1);
}

static void ignore(void) {}

void systick_handler(void);

/* Core exceptions only: this example needs no device interrupt. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top),
    reset_handler,
    ignore,     /* NMI */
    hard_fault, /* HardFault */
    hard_fault, /* MemManage */
    hard_fault, /* BusFault */
    hard_fault, /* UsageFault */
    0, 0, 0, 0,
    ignore, /* SVCall */
    ignore, /* DebugMonitor */
    0,
    ignore,          /* PendSV */
    systick_handler, /* SysTick */
};
