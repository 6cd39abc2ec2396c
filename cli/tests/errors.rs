//! How the binary reports a failure to an operator: the error and its causes (the underlying
//! one included), no source locations, and no colour codes when stderr is not a terminal.

use std::{path::PathBuf, process::Command};

const BIN: &str = env!("CARGO_BIN_EXE_verinfer");

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("errors-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn a_missing_config_file_is_reported_with_its_cause_and_no_location() {
    let dir = scratch("missing");
    let output = Command::new(BIN)
        .args(["relayer", "--check", "--config"])
        .arg(dir.join("missing.toml"))
        .env("RUST_LOG", "info")
        .output()
        .expect("run verinfer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot load the relayer configuration"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.toml"), "names the file: {stderr}");
    assert!(!stderr.contains("Location:"), "{stderr}");
    assert!(!stderr.contains(".rs:"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// A relayer whose RPC endpoint refuses connections: the report says "Connection refused",
/// once, and the logs written to a pipe carry no ANSI colour codes.
#[test]
fn an_unreachable_rpc_endpoint_says_why_and_logs_without_colour() {
    let dir = scratch("refused");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let deployment = dir.join("31337.json");
    let zero = format!("0x{}", "00".repeat(19));
    std::fs::write(
        &deployment,
        format!(
            "{{\"chainId\":31337,\"verinfer\":\"{zero}01\",\"stakingToken\":\"{zero}02\",\
             \"mockToken\":true,\"owner\":\"{zero}03\",\"treasury\":\"{zero}04\",\
             \"deployBlock\":0}}"
        ),
    )
    .expect("write deployment");
    let config = dir.join("relayer.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nrpc_url = \"http://127.0.0.1:{port}\"\ndeployment = \
             {:?}\ndata_dir = {:?}\n",
            deployment.display().to_string(),
            dir.join("data").display().to_string(),
        ),
    )
    .expect("write config");
    let output = Command::new(BIN)
        .args(["relayer", "--check", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .expect("run verinfer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert_eq!(
        stderr.matches("error sending request").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("DEBUG"), "logs were written: {stderr}");
    assert!(!stderr.contains("Location:"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}
