//! rustc links with `--as-needed`, and nothing in our code names a symbol of `libtorch_cuda.so`, so the
//! linker drops it and libtorch silently runs on CPU even with a GPU present. When the libtorch in use
//! has CUDA, keep the library linked into this crate's test and example binaries. (The `cxr` binary
//! gets the same effect at run time: see `device::load_cuda_backend`.)

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    let lib_dir = std::env::var_os("LIBTORCH_LIB")
        .or_else(|| std::env::var_os("LIBTORCH"))
        .map(|root| PathBuf::from(root).join("lib"));
    if let Some(lib_dir) = lib_dir
        && lib_dir.join("libtorch_cuda.so").exists()
    {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
