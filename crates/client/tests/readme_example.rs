//! The README shows `examples/create_and_fetch.rs` verbatim; this keeps the two the same (the
//! example itself is compiled by `cargo test` and run by `tests/tests/example.rs`).

use std::path::Path;

#[test]
fn the_readme_shows_the_example_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(root.join("examples/create_and_fetch.rs")).expect("the example");
    let blocks: Vec<String> = readme
        .split("```rust\n")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("\n```\n")
                .map(|(block, _)| format!("{block}\n"))
        })
        .collect();
    assert!(
        blocks.contains(&example),
        "README.md has no ```rust block equal to crates/client/examples/create_and_fetch.rs: copy the file into it"
    );
}
