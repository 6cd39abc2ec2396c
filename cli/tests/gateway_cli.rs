//! `verinfer gateway`'s own commands: a new API key and its hash, the example configuration, and
//! configuration errors that name the problem (before anything connects).

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

fn verinfer(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verinfer"))
        .args(args)
        .env_remove("VERINFER_GATEWAY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verinfer runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("verinfer exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_new_api_key_hashes_to_the_entry_it_prints() {
    let output = verinfer(&["gateway", "--new-api-key"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let key = stdout
        .split_whitespace()
        .find(|word| word.starts_with("vk-"))
        .expect("a vk- key");
    assert_eq!(key.len(), 3 + 64, "{key}");
    let entry_hash = stdout
        .lines()
        .find_map(|line| line.strip_prefix("sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("an sha256 line");
    let hashed = verinfer(&["gateway", "--hash-api-key"], Some(&format!("{key}\n")));
    assert!(hashed.status.success(), "{}", text(&hashed.stderr));
    assert_eq!(text(&hashed.stdout).trim(), entry_hash);
    assert_ne!(entry_hash, key);

    let example = verinfer(&["gateway", "--print-example-config"], None);
    assert!(text(&example.stdout).contains("[[api_keys]]"));
}

#[test]
fn configuration_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let output = verinfer(&["gateway", "--config", missing.to_str().unwrap()], None);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("missing.toml"),
        "{}",
        text(&output.stderr)
    );

    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        r#"
[[models]]
id = "tiny-sd"
kind = "image"
name = "tiny-sd"
digest = "sha256:00"

[[api_keys]]
name = "alice"
sha256 = "vk-this-is-a-key-not-its-hash"
budget = { per_day = "10" }
"#,
    )
    .unwrap();
    let output = verinfer(&["gateway", "--config", config.to_str().unwrap()], None);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("64 hex digits"), "{stderr}");
    assert!(
        !stderr.contains("vk-this-is-a-key"),
        "the message echoes the value: {stderr}"
    );

    // A valid file without the creator key in the environment: named, nothing started.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("vk-this-is-a-key-not-its-hash", &"ab".repeat(32)),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_verinfer"))
        .args(["gateway", "--config", config.to_str().unwrap()])
        .env_remove("VERINFER_KEY")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("VERINFER_KEY"), "{stderr}");
}
