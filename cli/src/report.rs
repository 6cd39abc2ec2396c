//! How the binary prints its errors and logs: a cause chain without source locations, and
//! colour only on a terminal.
//!
//! eyre's default handler ends every report with `Location: cli/src/task.rs:212:10`, which
//! tells an operator nothing; this one prints the error and its causes (`Caused by:`), each
//! cause once: a cause whose message an earlier line already holds (errors that repeat their
//! source's message in their own) is left out.

use std::{error::Error as StdError, fmt, io::IsTerminal as _};

/// Whether stderr may carry ANSI colour: it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn stderr_color() -> bool {
    color_allowed(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn color_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Installs [`Handler`] as eyre's report handler (once; a second call changes nothing).
pub fn install() {
    // An error means a hook is installed already (tests), which is all that is asked.
    let _ = eyre::set_hook(Box::new(|_| Box::new(Handler)));
}

/// eyre's report handler: the message, then `Caused by:` and the causes not already said.
#[derive(Debug)]
pub struct Handler;

impl eyre::EyreHandler for Handler {
    fn debug(&self, error: &(dyn StdError + 'static), f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return fmt::Debug::fmt(error, f);
        }
        write_chain(error, f)
    }
}

/// `error`'s message, then its causes under `Caused by:` (numbered, each once).
fn write_chain(error: &(dyn StdError + 'static), f: &mut impl fmt::Write) -> fmt::Result {
    let top = error.to_string();
    write!(f, "{top}")?;
    let mut said = vec![top];
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        let message = cause.to_string();
        if !message.is_empty() && !said.iter().any(|line| line.contains(&message)) {
            causes.push(message.clone());
            said.push(message);
        }
        next = cause.source();
    }
    if causes.is_empty() {
        return Ok(());
    }
    write!(f, "\n\nCaused by:")?;
    for (index, cause) in causes.iter().enumerate() {
        write!(f, "\n   {index}: {cause}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chained(&'static str, Option<Box<Chained>>);

    impl fmt::Display for Chained {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Chained {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_are_listed_once_without_locations() {
        let error = Chained(
            "cannot load the relayer configuration",
            Some(Box::new(Chained(
                "rpc error: tcp connect error: Connection refused",
                Some(Box::new(Chained("Connection refused", None))),
            ))),
        );
        let mut text = String::new();
        write_chain(&error, &mut text).unwrap();
        assert_eq!(
            text,
            "cannot load the relayer configuration\n\nCaused by:\n   0: rpc error: tcp connect \
             error: Connection refused"
        );
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(color_allowed(true, None));
        assert!(color_allowed(true, Some(OsStr::new(""))));
        assert!(!color_allowed(true, Some(OsStr::new("1"))));
        assert!(!color_allowed(false, None));
    }
}
