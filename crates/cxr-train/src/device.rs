//! Where training runs: CUDA when libtorch has it and a GPU is present, else CPU.

/// Makes libtorch's CUDA backend available to a binary that did not link it.
///
/// rustc links with `--as-needed`, so a binary that never names a `libtorch_cuda.so` symbol
/// drops the library and libtorch reports no GPU. Loading it explicitly registers the backend.
/// Without a CUDA libtorch (the light CPU install) this does nothing, and training uses the CPU.
pub fn load_cuda_backend() {
    // SAFETY: dlopen with a constant, NUL-terminated name; the handle is intentionally kept open for
    // the life of the process, as libtorch's registrations point into the library.
    unsafe {
        libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
    }
}

/// The device training would use, in words, e.g. `CUDA (1 GPU)` or `CPU (2 threads)`.
pub fn describe() -> String {
    if tch::Cuda::is_available() {
        format!("CUDA ({} GPU)", tch::Cuda::device_count())
    } else {
        format!("CPU ({} threads)", tch::get_num_threads())
    }
}
