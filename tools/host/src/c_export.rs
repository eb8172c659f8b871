//! A model blob as a C header (`alexnet export-c`): a 64-byte-aligned `const uint8_t` array
//! with its length, architecture and precision as macros, for C firmware that links the
//! core's C API (`docs/c-api.md`).

use alexnet_core::{Model, Precision};
use anyhow::{ensure, Context, Result};
use std::fmt::Write;

/// Whether `name` can be a C identifier (and the stem of its macros).
pub fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The array name for a file stem: every character a C identifier cannot hold becomes `_`,
/// and a leading digit gets a `_` in front (`micro-int8` -> `micro_int8`).
pub fn c_name_for(stem: &str) -> String {
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// The header for `blob`, an array called `name`. The blob is parsed first, so that only a
/// valid model is written; `source` (its file name) goes into the header's comment.
pub fn c_header(blob: &[u8], name: &str, source: &str) -> Result<String> {
    ensure!(
        is_c_identifier(name),
        "{name:?} is not a C identifier (letters, digits and _, not starting with a digit)"
    );
    let model = Model::parse(blob)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{source} is not a valid model blob"))?;
    let arch_name = model.arch().name;
    ensure!(
        arch_name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'),
        "the architecture name {arch_name:?} cannot be a C string literal as it is"
    );
    let (precision, precision_name) = match model.precision() {
        Precision::F32 => (0, "ALEXNET_PRECISION_F32"),
        Precision::Int8 => (1, "ALEXNET_PRECISION_INT8"),
    };
    let upper = name.to_ascii_uppercase();
    let source = source.replace("*/", "* /");
    let mut h = String::with_capacity(blob.len() * 5 + 2048);
    let _ = write!(
        h,
        "/*
 * {name}: the model blob {source} as a C array, written by `alexnet export-c`.
 * Architecture \"{arch_name}\", {precision_label}, {len} bytes; parse it in place with
 * alexnet_model_parse({name}, {upper}_LEN, &model). It defines the array: include this
 * header in one .c file only.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#define {upper}_LEN {len}u
#define {upper}_ARCH \"{arch_name}\"
#define {upper}_PRECISION {precision} /* {precision_name} */

/* Aligned to 64 bytes: the core reads its tensors in place (it needs at least 4). For
 * compilers other than GCC and Clang (armclang included), docs/c-api.md gives the spelling. */
#if defined(__GNUC__) || defined(__clang__)
#define {upper}_ALIGNED __attribute__((aligned(64)))
#else
#error \"{name}.h: align the array below to 64 bytes for this compiler (docs/c-api.md), then remove this line\"
#endif

static const uint8_t {name}[{upper}_LEN] {upper}_ALIGNED = {{
",
        precision_label = match model.precision() {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        },
        len = blob.len(),
    );
    for row in blob.chunks(16) {
        h.push(' ');
        for b in row {
            let _ = write!(h, " 0x{b:02x},");
        }
        h.push('\n');
    }
    let _ = write!(h, "}};\n\n#endif /* {upper}_H */\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_c_identifiers() {
        assert_eq!(c_name_for("micro-int8"), "micro_int8");
        assert_eq!(c_name_for("8bit.model"), "_8bit_model");
        assert!(is_c_identifier("micro_int8") && is_c_identifier("_x1"));
        assert!(!is_c_identifier("1x") && !is_c_identifier("a-b") && !is_c_identifier(""));
    }

    #[test]
    fn refuses_what_is_not_a_model_or_not_a_name() {
        let err = c_header(b"not a blob", "x", "x.bin").unwrap_err();
        assert!(
            format!("{err:#}").contains("not a valid model blob"),
            "{err:#}"
        );
        let err = c_header(b"", "a-b", "x.bin").unwrap_err();
        assert!(err.to_string().contains("not a C identifier"), "{err}");
    }
}
