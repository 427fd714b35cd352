//! Which instruction sets this CPU has, for the kernels `cxr` compiles more than once (the patch
//! opening, the depthwise and 1 × 1 convolutions) and picks between at run time. std caches the detection,
//! so each check is a few loads: cheap enough for every run.

/// AVX2 with FMA: the 8-lane fused multiply-add the kernels' x86-64 builds are compiled for.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// A kernel over `f32` slices written once in plain Rust and compiled per instruction set:
/// `FUSED` asks for multiply-adds with one rounding, for CPUs that have the instruction.
pub trait FloatKernel {
    fn run_with<const FUSED: bool>(&self, input: &[f32], output: &mut [f32]);
}

/// Runs `kernel` in its AVX2 + FMA build where the CPU has them, else in the baseline one.
pub fn run<K: FloatKernel>(kernel: &K, input: &[f32], output: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, the features `run_avx2` is compiled for.
        return unsafe { run_avx2(kernel, input, output) };
    }
    // aarch64's baseline has NEON's fused multiply-add; elsewhere `mul_add` would be a call.
    kernel.run_with::<{ cfg!(target_arch = "aarch64") }>(input, output)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: FloatKernel>(kernel: &K, input: &[f32], output: &mut [f32]) {
    kernel.run_with::<true>(input, output)
}
