//! How a long command shows where it is: on a terminal, a bar with the count, the rate and
//! the time left; otherwise (a log, a CI job, a pod) a plain line every few seconds, so the
//! output reads well in both.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Progress of a command that handles items (orders) towards a total it may know.
pub trait Report: Send {
    /// The work starts (or resumes with `done` items already done before).
    fn begin(&mut self, total: Option<u64>, done: u64);
    /// `done` items are done in all; the total, when known by now.
    fn advance(&mut self, done: u64, total: Option<u64>);
    /// Nothing moves for now, and why (the provider is throttling or down).
    fn waiting(&mut self, reason: &str);
    /// The work is over; `message` says how it ended.
    fn end(&mut self, message: &str);
}

/// The report fit for standard error: a bar on a terminal, lines otherwise.
pub fn for_stderr(what: &str) -> Box<dyn Report> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new(what))
    } else {
        Box::new(Lines::new(what, Duration::from_secs(5)))
    }
}

/// A progress bar on the terminal (standard error).
pub struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new(what: &str) -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_prefix(what.to_owned());
        Self { bar }
    }

    fn style(&self, known_total: bool) {
        let template = if known_total {
            "{prefix} [{bar:30}] {pos}/{len} orders  {per_sec}  ETA {eta}  {msg}"
        } else {
            "{prefix} {spinner} {pos} orders  {per_sec}  {elapsed}  {msg}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
    }
}

impl Report for Bar {
    fn begin(&mut self, total: Option<u64>, done: u64) {
        self.style(total.is_some());
        if let Some(total) = total {
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
        // The rate and ETA count from here: what a previous run did is not this run's speed.
        self.bar.reset_eta();
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&mut self, done: u64, total: Option<u64>) {
        if let Some(total) = total {
            if self.bar.length() != Some(total) {
                self.style(true);
                self.bar.set_length(total.max(done));
            }
        }
        self.bar.set_position(done);
        self.bar.set_message("");
    }

    fn waiting(&mut self, reason: &str) {
        self.bar.set_message(format!("waiting: {reason}"));
    }

    fn end(&mut self, message: &str) {
        self.bar.finish_with_message(message.to_owned());
    }
}

/// Plain lines, at most one per `every`.
pub struct Lines {
    what: String,
    every: Duration,
    started: Instant,
    first: u64,
    last_line: Option<Instant>,
    total: Option<u64>,
    done: u64,
}

impl Lines {
    /// Lines about `what`, at most one per `every`.
    pub fn new(what: &str, every: Duration) -> Self {
        Self {
            what: what.to_owned(),
            every,
            started: Instant::now(),
            first: 0,
            last_line: None,
            total: None,
            done: 0,
        }
    }

    /// The line for now: count, rate, time left.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let this_run = self.done.saturating_sub(self.first);
        let rate = if elapsed > 0.0 {
            this_run as f64 / elapsed
        } else {
            0.0
        };
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done);
                let eta = if rate > 0.0 {
                    format!("{}s", (left as f64 / rate).round() as u64)
                } else {
                    "unknown".to_owned()
                };
                format!(
                    "{}: {}/{total} orders, {rate:.1}/s, ETA {eta}",
                    self.what, self.done
                )
            }
            None => format!("{}: {} orders, {rate:.1}/s", self.what, self.done),
        }
    }
}

impl Report for Lines {
    fn begin(&mut self, total: Option<u64>, done: u64) {
        self.total = total;
        self.done = done;
        self.first = done;
        self.started = Instant::now();
        if done > 0 {
            eprintln!("{}: resuming after {done} orders", self.what);
        }
    }

    fn advance(&mut self, done: u64, total: Option<u64>) {
        self.done = done;
        self.total = total.or(self.total);
        if self.last_line.is_none_or(|at| at.elapsed() >= self.every) {
            self.last_line = Some(Instant::now());
            eprintln!("{}", self.line());
        }
    }

    fn waiting(&mut self, reason: &str) {
        eprintln!("{}: waiting: {reason}", self.what);
    }

    fn end(&mut self, message: &str) {
        eprintln!("{}", self.line());
        eprintln!("{}: {message}", self.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_count_rate_and_time_left() {
        let mut lines = Lines::new("backfill sumeru", Duration::from_secs(5));
        lines.begin(Some(2000), 500);
        lines.started = Instant::now() - Duration::from_secs(10);
        lines.done = 1500;
        // 1,000 this run in 10 s: 100/s, 500 left: 5 s.
        assert_eq!(
            lines.line(),
            "backfill sumeru: 1500/2000 orders, 100.0/s, ETA 5s"
        );
        lines.total = None;
        assert_eq!(lines.line(), "backfill sumeru: 1500 orders, 100.0/s");
    }
}
