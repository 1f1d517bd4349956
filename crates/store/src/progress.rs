//! Byte progress reporting for pulls: a trait, a silent implementation, and an `indicatif`
//! bar on stderr that hides itself when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives progress of one pull, which may fetch several files in turn.
pub trait Progress {
    /// A new file starts: `label` names it, `total` is its size when known.
    fn begin(&self, label: &str, total: Option<u64>);
    /// `n` more bytes arrived.
    fn advance(&self, n: u64);
    /// The current file is done.
    fn end(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _label: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn end(&self) {}
}

/// An `indicatif` byte bar on stderr, hidden when stderr is not a terminal.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar drawing to stderr (hidden when stderr is redirected).
    pub fn stderr() -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, label: &str, total: Option<u64>) {
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            None => ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}"),
        }
        .expect("the templates above are valid indicatif templates")
        .progress_chars("=> ");
        self.bar.reset();
        self.bar.set_style(style);
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_message(label.to_string());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn end(&self) {
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}
