//! Records libtorch's library folder as an rpath, so the trainer and its tests run without
//! LD_LIBRARY_PATH. The folder comes from torch-sys when it reports one, else from LIBTORCH
//! (set by the workspace's .cargo/config.toml to the project's venv).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("LIBTORCH").map(|t| std::path::PathBuf::from(t).join("lib")));
    if let Some(lib) = lib {
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
