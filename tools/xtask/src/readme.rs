//! The README's Rust snippets, kept compiling: each must appear verbatim in a source file that
//! `cargo xtask test` builds and runs (today one: the firmware snippet, which is
//! `firmware-example/examples/readme.rs` up to its `board` module).

use std::path::Path;

/// The files that hold the README's snippets, relative to the workspace root.
pub const SNIPPET_FILES: &[&str] = &["firmware-example/examples/readme.rs"];

/// The bodies of the ```` ```rust ```` blocks of a Markdown text, in order.
pub fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == "```rust" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    blocks
}

/// Fails, naming the snippet, unless every Rust block of `root/README.md` appears verbatim in
/// one of [`SNIPPET_FILES`].
pub fn check(root: &Path) -> Result<(), String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let readme = read(&root.join("README.md"))?;
    let sources = SNIPPET_FILES
        .iter()
        .map(|f| read(&root.join(f)))
        .collect::<Result<Vec<_>, _>>()?;
    let blocks = rust_blocks(&readme);
    if blocks.is_empty() {
        return Err("README.md has no ```rust block: was the firmware snippet moved?".into());
    }
    for block in blocks {
        if !sources.iter().any(|s| s.contains(&block)) {
            let first = block.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(format!(
                "README.md's Rust snippet starting {first:?} is in none of {SNIPPET_FILES:?}: \
                 copy it there verbatim, so that it is compiled and run"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rust_blocks_only() {
        let md = "text\n```sh\nls\n```\n```rust\nfn a() {}\n\nlet b = 1;\n```\n```rust\n```\n";
        assert_eq!(rust_blocks(md), ["fn a() {}\n\nlet b = 1;\n", ""]);
    }

    #[test]
    fn the_readme_snippets_are_in_the_checked_files() {
        check(&crate::process::root()).unwrap();
    }

    #[test]
    fn a_changed_snippet_is_caught() {
        let dir = std::env::temp_dir().join(format!("xtask-readme-{}", std::process::id()));
        let example = dir.join(SNIPPET_FILES[0]);
        std::fs::create_dir_all(example.parent().unwrap()).unwrap();
        std::fs::write(&example, "fn main() {\n    run();\n}\n").unwrap();
        std::fs::write(
            dir.join("README.md"),
            "```rust\nfn main() {\n    run();\n}\n```\n",
        )
        .unwrap();
        assert_eq!(check(&dir), Ok(()));
        std::fs::write(
            dir.join("README.md"),
            "```rust\nfn main() {\n    run(1);\n}\n```\n",
        )
        .unwrap();
        assert!(check(&dir).unwrap_err().contains("\"fn main() {\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
