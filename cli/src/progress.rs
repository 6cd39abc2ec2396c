//! Progress reporting for long generations: an indicatif bar on a terminal, tracing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over `total` units of `what` (e.g. "step", "token"), drawn on stderr only
/// when it is a terminal; elsewhere every 10% is logged instead.
pub(crate) struct StepProgress {
    bar: ProgressBar,
    what: &'static str,
    terminal: bool,
    last_logged_decile: usize,
}

impl StepProgress {
    pub(crate) fn new(what: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{what}s"));
        Self {
            bar,
            what,
            terminal,
            last_logged_decile: 0,
        }
    }

    /// Reports `done` of `total`.
    pub(crate) fn update(&mut self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if !self.terminal && total > 0 {
            let decile = done * 10 / total;
            if decile > self.last_logged_decile || done == total {
                self.last_logged_decile = decile;
                tracing::info!(done, total, "{} progress", self.what);
            }
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
