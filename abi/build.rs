//! Keeps `abi/contracts/*.json` in step with the Solidity sources.
//!
//! When the sources hash recorded in `abi/contracts/SOURCES.sha256` no longer matches the working
//! tree and forge is installed, the contracts are recompiled (into OUT_DIR, never the project's
//! `out/`) and the changed JSON files rewritten. Without forge, or when forge fails, the committed
//! JSON is used as is with a warning: the bindings must build on machines without the Solidity
//! toolchain. `scripts/check-abi.sh` is the strict gate.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use verinfer_abi_gen::{CONTRACTS, CONTRACTS_DIR, Repo, manifest_changes};

fn main() -> ExitCode {
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        eprintln!("CARGO_MANIFEST_DIR is not set: run this through cargo");
        return ExitCode::FAILURE;
    };
    // The crate lives at <root>/abi.
    let root = manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir);
    let repo = Repo::new(root);
    for path in repo.watched_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let missing: Vec<String> = CONTRACTS
        .iter()
        .map(|spec| spec.file_name())
        .filter(|name| !repo.contracts_dir().join(name).is_file())
        .collect();

    refresh(&repo);

    // Without the artifacts sol! cannot generate the bindings: say why instead of a macro error.
    let still_missing: Vec<&String> = missing
        .iter()
        .filter(|name| !repo.contracts_dir().join(name).is_file())
        .collect();
    if !still_missing.is_empty() {
        eprintln!(
            "{CONTRACTS_DIR} lacks {still_missing:?} and they could not be generated: \
             restore them from git, or run `npm ci` so forge can build them"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Regenerates the artifacts when their sources changed; only ever warns.
fn refresh(repo: &Repo) {
    let current = match repo.sources_manifest() {
        Ok(manifest) => manifest,
        Err(error) => {
            // E.g. the crate was packaged without the contracts: nothing to compare against.
            warn(&format!(
                "cannot hash the contract sources ({error}); using {CONTRACTS_DIR} as committed"
            ));
            return;
        }
    };
    let recorded = match repo.recorded_manifest() {
        Ok(recorded) => recorded,
        Err(error) => {
            warn(&format!("{error}; regenerating {CONTRACTS_DIR}"));
            None
        }
    };
    if recorded.as_deref() == Some(current.as_str()) {
        return;
    }
    let changed = match &recorded {
        Some(recorded) => manifest_changes(recorded, &current).join(", "),
        None => "no SOURCES.sha256 yet".to_owned(),
    };

    let forge = match repo.find_forge() {
        Ok(forge) => forge,
        Err(error) => {
            warn(&format!(
                "contract sources changed since {CONTRACTS_DIR} was generated ({changed}), and {error}. \
                 Using the committed JSON, which may be stale; after `npm ci`, run \
                 `cargo run -p verinfer-abi-gen` to regenerate"
            ));
            return;
        }
    };
    let Some(scratch) = std::env::var_os("OUT_DIR").map(|dir| PathBuf::from(dir).join("forge"))
    else {
        warn("OUT_DIR is not set; cannot regenerate the contract JSON");
        return;
    };
    match repo
        .generate(&forge, &scratch)
        .and_then(|generated| repo.write(&generated))
    {
        Ok(written) if written.is_empty() => {}
        Ok(written) => warn(&format!(
            "regenerated {CONTRACTS_DIR}/{{{}}} from the contract sources ({changed}): commit them",
            written.join(",")
        )),
        Err(error) => {
            let error = error.to_string();
            // Keep the warning readable: forge's last lines carry the compile error.
            let tail: Vec<&str> = error.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            warn(&format!(
                "could not regenerate {CONTRACTS_DIR} ({changed} changed); using the committed JSON, \
                 which may be stale:"
            ));
            for line in tail {
                warn(line);
            }
        }
    }
}

fn warn(message: &str) {
    // One warning per line: cargo does not accept newlines inside one.
    for line in message.lines() {
        println!("cargo:warning={line}");
    }
}
