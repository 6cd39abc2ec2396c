//! `verinfer phash`: perceptual hashes of image files, as peers compute them in Python.

use std::{io::Write, path::PathBuf};

use clap::Args;
use eyre::{WrapErr, bail};

/// Print `FILE<TAB>HASH` for each image: the 64-bit pHash as 16 hex digits, identical to
/// Python's `str(imagehash.phash(PIL.Image.open(FILE)))`. Files that cannot be read or
/// decoded are reported on stderr; the others are still hashed.
#[derive(Debug, Args)]
pub(crate) struct PhashArgs {
    /// Image files (PNG or JPEG).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(crate) fn run(args: PhashArgs) -> eyre::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0usize;
    for path in &args.files {
        match verinfer_phash::phash_file(path) {
            Ok(hash) => {
                writeln!(out, "{}\t{hash}", path.display()).wrap_err("cannot write to stdout")?;
                // One line per file as soon as it is known, even when piped.
                out.flush().wrap_err("cannot write to stdout")?;
            }
            Err(err) => {
                failed += 1;
                eprintln!("verinfer phash: {err}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be hashed", args.files.len());
    }
    Ok(())
}
