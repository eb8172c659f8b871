//! Puts memory.x where the linker finds it, and checks that the host has made the assets this
//! firmware embeds (`tests/firmware_an385.rs`, run by `cargo xtask firmware`, makes them).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    for asset in ["micro-int8.blob", "images.bin"] {
        let path = PathBuf::from("assets").join(asset);
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.exists() {
            panic!("{} is missing: run `cargo xtask firmware` from the workspace root, which quantizes the micro net and exports test images", path.display());
        }
    }
}
