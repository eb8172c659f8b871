//! Records libtorch's library folder as an rpath of the bench binaries, so `cargo bench` runs
//! without LD_LIBRARY_PATH (as host-train's build script does for the trainer). The folder
//! comes from LIBTORCH, which the workspace's .cargo/config.toml sets to the project's venv.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("LIBTORCH").map(|t| std::path::PathBuf::from(t).join("lib")));
    if let Some(lib) = lib {
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg-benches=-Wl,-rpath,{}", lib.display());
    }
}
