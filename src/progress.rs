//! Progress on long work (`add-targets`, `init`, `validate`, `tuf-bench`'s fill): a bar when
//! stderr is a terminal, else (or with `--quiet`) a plain line at most every
//! [`Progress::EVERY`] while the work moves, and always the last one. Nothing of it goes to
//! stdout, which stays for what a command prints as its result.
//!
//! One word for it everywhere: a long step has a [`Progress`], made with what it counts
//! (`hashed`, `signed`, `checked`, `done`) and how many there are; the step calls
//! [`Progress::set`] or [`Progress::inc`] as it goes and [`Progress::finish`] when it is done.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress shows: a bar (a terminal, not `--quiet`) or plain lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// A bar on stderr, redrawn in place.
    Bar,
    /// A line on stderr at most every [`Progress::EVERY`], and the last one.
    Lines,
    /// Nothing (a library caller, or work too small to follow).
    Hidden,
}

impl Show {
    /// A bar when stderr is a terminal and `quiet` is not set; plain lines otherwise.
    pub fn for_stderr(quiet: bool) -> Show {
        if !quiet && std::io::stderr().is_terminal() {
            Show::Bar
        } else {
            Show::Lines
        }
    }
}

/// One long step's progress: `done` of `total` things, said as `WHAT DONE/TOTAL[ UNIT]`.
#[derive(Debug)]
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    shown: Shown,
}

#[derive(Debug)]
enum Shown {
    Bar(ProgressBar),
    Lines { said: Instant, said_done: u64 },
    Hidden,
}

impl Progress {
    /// The most often a plain line is said while the work moves.
    pub const EVERY: Duration = Duration::from_secs(2);

    /// Progress of `total` things, each `what` (`hashed`, `signed`) when done; `unit` follows
    /// the count (`" bins"`, or `""`).
    pub fn new(what: &str, unit: &'static str, total: u64, show: Show) -> Progress {
        let shown = match show {
            Show::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                let template =
                    format!("{what} {{bar:40}} {{pos}}/{{len}}{unit} {{per_sec}}, {{eta}} left");
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style);
                }
                Shown::Bar(bar)
            }
            Show::Lines => Shown::Lines {
                said: Instant::now(),
                said_done: 0,
            },
            Show::Hidden => Shown::Hidden,
        };
        Progress {
            what: what.to_string(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
            shown,
        }
    }

    /// `n` more done.
    pub fn inc(&mut self, n: u64) {
        self.set(self.done + n);
    }

    /// `done` done so far.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        let due = match &mut self.shown {
            Shown::Bar(bar) => {
                bar.set_position(done);
                false
            }
            Shown::Hidden => false,
            Shown::Lines { said, said_done } => {
                let due = done > *said_done && said.elapsed() >= Self::EVERY && done < self.total;
                if due {
                    *said = Instant::now();
                    *said_done = done;
                }
                due
            }
        };
        if due {
            eprintln!("{}", self.line());
        }
    }

    /// How many are done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// The work is over: the bar is cleared, and the last line says how far it got and how
    /// long it took.
    pub fn finish(self) {
        match &self.shown {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines { .. } => {}
            Shown::Hidden => return,
        }
        eprintln!(
            "{} in {:.1} s",
            self.line(),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// `WHAT DONE/TOTAL[ UNIT]`.
    fn line(&self) -> String {
        format!("{} {}/{}{}", self.what, self.done, self.total, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_what_is_done_of_how_many() {
        let mut progress = Progress::new("hashed", " files", 10, Show::Lines);
        progress.inc(3);
        progress.set(7);
        assert_eq!(progress.done(), 7);
        assert_eq!(progress.line(), "hashed 7/10 files");
    }
}
