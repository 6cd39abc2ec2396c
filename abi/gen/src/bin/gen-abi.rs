//! `gen-abi`: regenerates `abi/contracts/*.json` from the Solidity sources with forge, or with
//! `--check` proves the committed files are what the sources produce (for CI).
//!
//! Usage: `cargo run -p verinfer-abi-gen -- [--check] [--root <repo>]`
//! Exit status: 0 up to date / regenerated, 1 stale (`--check`), 2 error.

use std::{path::PathBuf, process::ExitCode};

use verinfer_abi_gen::{CONTRACTS_DIR, GenError, Repo, STALE_HINT};

const USAGE: &str = "usage: gen-abi [--check] [--root <repo root>]";

struct Args {
    check: bool,
    root: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    // This crate lives at <root>/abi/gen.
    let mut args = Args {
        check: false,
        root: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")),
    };
    let mut iter = std::env::args_os().skip(1);
    while let Some(arg) = iter.next() {
        match arg.to_str() {
            Some("--check") => args.check = true,
            Some("--root") => {
                args.root = iter
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--root needs a directory")?;
            }
            Some("-h" | "--help") => return Err(USAGE.to_owned()),
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> Result<bool, GenError> {
    let root = args.root.canonicalize().map_err(|source| GenError::Io {
        action: "resolving the repository root",
        path: args.root.clone(),
        source,
    })?;
    let repo = Repo::new(root);
    let forge = repo.find_forge()?;
    let scratch = tempfile::tempdir().map_err(|source| GenError::Io {
        action: "creating a scratch directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let generated = repo.generate(&forge, scratch.path())?;
    if args.check {
        let stale = repo.stale_files(&generated)?;
        for name in &stale {
            eprintln!("{CONTRACTS_DIR}/{name} differs from what the contract sources produce");
        }
        if stale.is_empty() {
            eprintln!("{CONTRACTS_DIR} is up to date with the contract sources");
        }
        return Ok(stale.is_empty());
    }
    let written = repo.write(&generated)?;
    if written.is_empty() {
        eprintln!("{CONTRACTS_DIR} was already up to date");
    }
    for name in written {
        eprintln!("wrote {CONTRACTS_DIR}/{name}");
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{STALE_HINT}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("gen-abi: {error}");
            ExitCode::from(2)
        }
    }
}
