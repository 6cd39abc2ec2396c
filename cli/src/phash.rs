//! `verinfer phash`: perceptual hashes of image files, as peers compute them in Python.

use std::{
    io::Write,
    num::NonZeroUsize,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
};

use clap::Args;
use eyre::{WrapErr, bail};
use verinfer_phash::{PHash, PhashError};

/// Print `FILE<TAB>HASH` for each image: the 64-bit pHash as 16 hex digits, identical to
/// Python's `str(imagehash.phash(PIL.Image.open(FILE)))`. Files are hashed in parallel and
/// printed in argument order. Files that cannot be read or decoded are reported on stderr;
/// the others are still hashed.
#[derive(Debug, Args)]
pub(crate) struct PhashArgs {
    /// Image files (PNG or JPEG).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Files hashed at once (default: the available CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,
}

pub(crate) fn run(args: PhashArgs) -> eyre::Result<()> {
    let jobs = args
        .jobs
        .or_else(|| thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
        .min(args.files.len());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let failed = hash_files(&args.files, jobs, |path, result| {
        match result {
            Ok(hash) => {
                writeln!(out, "{}\t{hash}", path.display()).wrap_err("cannot write to stdout")?;
                // One line per file as soon as it is known, even when piped.
                out.flush().wrap_err("cannot write to stdout")?;
            }
            // The error names the file.
            Err(err) => eprintln!("verinfer phash: {err}"),
        }
        Ok(())
    })?;
    if failed > 0 {
        bail!("{failed} of {} files could not be hashed", args.files.len());
    }
    Ok(())
}

/// Hashes `files` on `jobs` threads and hands each result to `emit` in the order of `files`,
/// each as soon as it and all before it are done. Returns how many files failed.
fn hash_files(
    files: &[PathBuf],
    jobs: usize,
    mut emit: impl FnMut(&PathBuf, Result<PHash, PhashError>) -> eyre::Result<()>,
) -> eyre::Result<usize> {
    let next = AtomicUsize::new(0);
    let (sender, results) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let (next, sender) = (&next, sender.clone());
            scope.spawn(move || {
                // Each worker takes the next unhashed file: slow files do not hold up a fixed share.
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(index) else { break };
                    // The receiver is gone only when emitting failed; nothing is left to do then.
                    if sender
                        .send((index, verinfer_phash::phash_file(path)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Results arrive in completion order; hold the early ones until their turn.
        let mut pending: Vec<Option<Result<PHash, PhashError>>> =
            std::iter::repeat_with(|| None).take(files.len()).collect();
        let (mut printed, mut failed) = (0, 0);
        // Taken by value: an early return drops the receiver, so workers stop sending.
        for (index, result) in results {
            pending[index] = Some(result);
            while let Some(result) = pending.get_mut(printed).and_then(Option::take) {
                failed += usize::from(result.is_err());
                emit(&files[printed], result)?;
                printed += 1;
            }
        }
        Ok(failed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/phash/testdata/images")
            .join(name)
    }

    /// Every job count gives the same results in argument order, failures included.
    #[test]
    fn parallel_results_keep_argument_order() {
        let mut files = Vec::new();
        for _ in 0..3 {
            files.push(image("scene_0_512x512.png"));
            files.push(image("does-not-exist.png"));
            files.push(image("flat_gray_128.png"));
            files.push(image("tiny_1x1.png"));
        }
        let collect = |jobs| {
            let mut seen = Vec::new();
            let failed = hash_files(&files, jobs, |path, result| {
                seen.push((path.clone(), result.map_err(|err| err.to_string())));
                Ok(())
            })
            .expect("emit never fails");
            (failed, seen)
        };
        let (failed, serial) = collect(1);
        assert_eq!(failed, 3);
        assert_eq!(serial.len(), files.len());
        for (index, (path, result)) in serial.iter().enumerate() {
            assert_eq!(path, &files[index]);
            match index % 4 {
                0 => assert_eq!(
                    result.as_ref().map(PHash::to_hex).as_deref(),
                    Ok("b8b13c4ec638b3c5")
                ),
                1 => assert!(
                    result
                        .as_ref()
                        .is_err_and(|err| err.contains("does-not-exist.png"))
                ),
                2 => assert_eq!(
                    result.as_ref().map(PHash::to_hex).as_deref(),
                    Ok("8000000000000000")
                ),
                _ => assert!(result.is_ok()),
            }
        }
        for jobs in [2, 4, 64] {
            assert_eq!(collect(jobs), (3, serial.clone()), "{jobs} jobs");
        }
    }

    /// An error from `emit` stops the command and is returned, with workers still running.
    #[test]
    fn emit_error_stops() {
        let files = vec![image("tiny_1x1.png"); 32];
        let mut calls = 0;
        let result = hash_files(&files, 4, |_, _| {
            calls += 1;
            bail!("stdout closed")
        });
        assert_eq!(
            result.map_err(|err| err.to_string()).unwrap_err(),
            "stdout closed"
        );
        assert_eq!(calls, 1);
    }
}
