//! Links libtorch for the trainer and its tests:
//!
//! * Records libtorch's library folder as an rpath, so they run without LD_LIBRARY_PATH. The
//!   folder comes from torch-sys when it reports one, else from LIBTORCH (set by the
//!   workspace's .cargo/config.toml to the project's venv).
//! * Keeps `libtorch_cuda` linked when the libtorch has it. Nothing in the program calls into
//!   it (CUDA registers itself with libtorch from its static initializers), so the linker's
//!   `--as-needed`, rustc's default, would drop it, and libtorch would then see no GPU.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("LIBTORCH").map(|t| std::path::PathBuf::from(t).join("lib")));
    if let Some(lib) = lib {
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        let cuda = lib.join("libtorch_cuda.so").exists();
        if cuda {
            println!("cargo:rustc-link-search=native={}", lib.display());
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
        // For the test that CUDA's half of libtorch is linked and registered.
        println!("cargo:rustc-env=LIBTORCH_HAS_CUDA={}", u8::from(cuda));
    }
}
