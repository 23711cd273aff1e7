//! The README's Quick start, as a user pastes it: its code is `examples/quick_start.rs` (kept
//! equal here), and with exactly the dependencies the README lists it builds as a crate of its
//! own (checked with `cargo check`, offline, against this checkout).

use std::path::Path;
use std::process::Command;

/// The README's Quick start: its TOML and its Rust.
fn quick_start() -> (String, String) {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("## Quick start").expect("a Quick start")..];
    let block = |fence: &str| {
        let start = section.find(fence).expect("the block") + fence.len();
        let end = start + section[start..].find("\n```").expect("its end");
        section[start..end].trim_start_matches('\n').to_string() + "\n"
    };
    (block("```toml"), block("```rust,no_run"))
}

#[test]
fn the_example_is_the_readme_code() {
    let (_, code) = quick_start();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quick_start.rs"))
            .unwrap();
    assert_eq!(
        code, example,
        "examples/quick_start.rs must be the README's Quick start"
    );
}

#[test]
fn the_quick_start_builds_as_a_crate_of_its_own() {
    let (toml, code) = quick_start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The published crate's name, taken from this checkout instead of crates.io.
    let deps = toml.replace(
        "tower-llm-log = \"0.1\"",
        &format!("tower-llm-log = {{ path = {:?} }}", root.display().to_string()),
    );
    let dir = root.join("target").join("quick-start-crate");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"quick-start\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n{deps}"),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), code).unwrap();
    // Its own lock file from this checkout's, so the versions are ones already fetched.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target").join("quick-start-check"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
