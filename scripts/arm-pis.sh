#!/usr/bin/env bash
# Sourced, not run: the ARM targets' emulation, shared by scripts/test-arm.sh (correctness under
# qemu) and scripts/arm-instruction-counts.sh (the instruction-count proxy), so both emulate the
# same Raspberry Pis the same way.

# qemu-user binary and the Debian cross sysroot it loads ARM libraries from, per target. The musl
# target links statically and needs none; armv7 links glibc statically too (.cargo/config.toml),
# and keeps the sysroot for a build whose RUSTFLAGS override that.
qemu_for() {
    case "$1" in
        aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
        aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
        armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
        *) echo "$(basename "$0"): unknown target $1" >&2; exit 1 ;;
    esac
}

# The Pi CPUs qemu emulates per target, one per line: "pi qemu-cpu tract-knob description".
# qemu-user shows the host's /proc/cpuinfo, so tract's own knobs point its kernel choice at what it
# would detect on that Pi: on aarch64 its f32 kernels by CPU part (Cortex-A53 has its own) and its
# SDOT int8 kernel where the CPU has dot-product instructions (the A76's; qemu reports them in
# AT_HWCAP); on armv7 NEON forced on, giving the generic NEON kernels a Pi 3, 4 or 5 on 32-bit
# Raspberry Pi OS gets (only Cortex-A7/A9 parts have their own). The first line is the Pi that
# test-arm.sh runs cxr-minimal on.
cpus_for() {
    case "$1" in
        aarch64-unknown-linux-musl | aarch64-unknown-linux-gnu)
            echo "pi4 cortex-a72 TRACT_CPU_AARCH64_OVERRIDE_CPU_PART=0xd08 Pi 4 (Cortex-A72)"
            echo "pi3 cortex-a53 TRACT_CPU_AARCH64_OVERRIDE_CPU_PART=0xd03 Pi 3 (Cortex-A53)"
            echo "pi5 cortex-a76 TRACT_CPU_AARCH64_OVERRIDE_CPU_PART=0xd0b Pi 5 (Cortex-A76, dot product)" ;;
        armv7-unknown-linux-gnueabihf)
            echo "pi-32bit cortex-a7 TRACT_CPU_ARM32_NEON=true Pi 3/4/5, 32-bit OS (generic NEON)" ;;
    esac
}
