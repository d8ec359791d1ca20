//! Where the watch draws: on a terminal the progress tree is redrawn in place, each line clipped
//! to the terminal's width as it is at that draw (read with `terminal_size`), and redrawn at
//! once when the terminal is resized; elsewhere only changed rows are printed, one per line, with
//! no escape codes.

use std::io::{IsTerminal as _, Write as _};

use crate::args::Format;
use crate::progress::{self, Row};

/// The width assumed when neither the terminal nor `COLUMNS` tells one.
const DEFAULT_WIDTH: usize = 80;

/// Where and how progress is drawn.
pub(super) struct Screen {
    /// Redraw in place (the output is a terminal and the format is text).
    redraw: bool,
    /// Progress goes to stderr (stdout is kept for the final JSON/YAML document).
    to_stderr: bool,
    /// Length in characters of each line drawn last time (terminal mode), to count the terminal
    /// lines they take at the width of the next draw.
    drawn: Vec<usize>,
    /// Rows shown last time.
    shown: Vec<Row>,
    /// Window-size changes (terminal mode on Unix).
    #[cfg(unix)]
    resizes: Option<tokio::signal::unix::Signal>,
}

impl Screen {
    /// The screen for `format`: progress on stdout for text, else on stderr.
    pub(super) fn new(format: Format) -> Screen {
        let to_stderr = format != Format::Text;
        let terminal = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let redraw = terminal && std::env::var_os("TERM").is_some_and(|t| t != "dumb");
        let mut screen = Screen::with(redraw, to_stderr);
        if redraw {
            screen.listen_for_resizes();
        }
        screen
    }

    fn with(redraw: bool, to_stderr: bool) -> Screen {
        Screen {
            redraw,
            to_stderr,
            drawn: Vec::new(),
            shown: Vec::new(),
            #[cfg(unix)]
            resizes: None,
        }
    }

    /// Makes [`Screen::resized`] resolve on window-size changes (SIGWINCH, on Unix).
    fn listen_for_resizes(&mut self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            self.resizes = signal(SignalKind::window_change()).ok();
        }
    }

    /// Writes `text` where progress goes.
    pub(super) fn write(&self, text: &str) {
        if self.to_stderr {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// Prints the rows and `notes` (on a terminal the notes stay above the redrawn picture).
    pub(super) fn draw(&mut self, notes: &[String], rows: Vec<Row>) {
        let width = if self.redraw {
            self.width()
        } else {
            usize::MAX
        };
        let text = self.frame(width, notes, rows);
        self.write(&text);
    }

    /// Resolves when the terminal drawn on is resized; never without a terminal (or off Unix,
    /// where the next draw still reads the new width).
    pub(super) async fn resized(&mut self) {
        #[cfg(unix)]
        if let Some(resizes) = self.resizes.as_mut()
            && resizes.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }

    /// The width of the terminal drawn on now.
    fn width(&self) -> usize {
        let terminal = if self.to_stderr {
            terminal_size::terminal_size_of(std::io::stderr())
        } else {
            terminal_size::terminal_size_of(std::io::stdout())
        };
        width(
            terminal.map(|(terminal_size::Width(w), _)| w),
            std::env::var("COLUMNS").ok(),
        )
    }

    /// The text that brings the screen from what was drawn last to `rows` and `notes`, on a
    /// terminal `width` columns wide.
    fn frame(&mut self, width: usize, notes: &[String], rows: Vec<Row>) -> String {
        let mut text = String::new();
        if self.redraw {
            // A line drawn last time takes more than one terminal line now if the terminal
            // narrowed since and rewrapped it (as most terminals do on resize).
            let up: usize = self
                .drawn
                .iter()
                .map(|&chars| chars.div_ceil(width).max(1))
                .sum();
            if up > 0 {
                // Up to the first line drawn last time, then clear to the end of the screen.
                text.push_str(&format!("\x1b[{up}F\x1b[J"));
            }
            for note in notes {
                text.push_str(note);
                text.push('\n');
            }
            self.drawn.clear();
            for line in progress::tree(&rows).lines() {
                let line = clip(line, width);
                self.drawn.push(line.chars().count());
                text.push_str(&line);
                text.push('\n');
            }
        } else {
            // A log reads in order: the state first, then what the CLI did about it.
            for row in progress::changed(&self.shown, &rows) {
                let indent = match row.depth {
                    0 => "",
                    1 => "  ",
                    _ => "    → ",
                };
                text.push_str(&format!("{indent}{}\n", row.text));
            }
            for note in notes {
                text.push_str(note);
                text.push('\n');
            }
        }
        self.shown = rows;
        text
    }
}

/// The terminal's width: what the terminal says, else `COLUMNS`, else 80.
fn width(terminal: Option<u16>, columns: Option<String>) -> usize {
    terminal
        .map(usize::from)
        .filter(|w| *w > 0)
        .or_else(|| {
            columns
                .and_then(|c| c.trim().parse().ok())
                .filter(|w| *w > 0)
        })
        .unwrap_or(DEFAULT_WIDTH)
}

/// `line` cut to fit `width` columns (so a redraw knows how many lines it drew).
fn clip(line: &str, width: usize) -> String {
    if line.chars().count() < width {
        return line.to_string();
    }
    let mut out: String = line.chars().take(width.saturating_sub(2)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, depth: usize, text: &str) -> Row {
        Row {
            key: key.into(),
            depth,
            text: text.into(),
        }
    }

    #[test]
    fn a_terminal_is_redrawn_in_place_with_notes_kept_above() {
        let mut s = Screen::with(true, false);
        let first = s.frame(
            60,
            &[],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: pending"),
            ],
        );
        assert_eq!(first, "d: running\n└─ a: pending\n");
        let second = s.frame(
            60,
            &["auto-approved target a".into()],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: running"),
            ],
        );
        assert_eq!(
            second,
            "\x1b[2F\x1b[Jauto-approved target a\nd: running\n└─ a: running\n"
        );
        let long = s.frame(60, &[], vec![row("deployment", 0, &"x".repeat(100))]);
        assert!(long.starts_with("\x1b[2F\x1b[J"), "{long:?}");
        assert_eq!(long.lines().count(), 1);
    }

    #[test]
    fn a_width_change_between_draws_is_counted_in_the_redraw() {
        let mut s = Screen::with(true, false);
        let rows = || {
            vec![
                row("deployment", 0, &format!("d: running {}", "x".repeat(39))),
                row("target:a", 1, "a: pending"),
            ]
        };
        // 50 and 13 characters on a terminal 60 wide: two terminal lines.
        let first = s.frame(60, &[], rows());
        assert_eq!(
            first.lines().map(|l| l.chars().count()).collect::<Vec<_>>(),
            [50, 13]
        );
        // Narrowed to 20, the terminal rewrapped them into 3 and 1 lines: all 4 are cleared,
        // and the new lines fit the new width.
        let narrow = s.frame(20, &[], rows());
        let lines: Vec<&str> = narrow
            .strip_prefix("\x1b[4F\x1b[J")
            .unwrap_or_else(|| panic!("{narrow:?}"))
            .lines()
            .collect();
        assert_eq!(lines, ["d: running xxxxxxx…", "└─ a: pending"]);
        // Widened again, each line drawn at 20 still takes one line.
        let wide = s.frame(60, &[], rows());
        assert!(wide.starts_with("\x1b[2F\x1b[Jd: running x"), "{wide:?}");
        // A line exactly as wide as the terminal takes one line, one more character two.
        s.drawn = vec![20, 21, 0];
        assert!(s.frame(20, &[], rows()).starts_with("\x1b[4F\x1b[J"));
    }

    #[test]
    fn without_a_terminal_only_changes_are_printed_plainly() {
        let mut s = Screen::with(false, false);
        let first = s.frame(
            usize::MAX,
            &[],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: pending"),
            ],
        );
        assert_eq!(first, "d: running\n  a: pending\n");
        let second = s.frame(
            usize::MAX,
            &["auto-approved target a".into()],
            vec![
                row("deployment", 0, "d: running"),
                row("target:a", 1, "a: paused"),
                row("hint:a", 2, "approve: ferry deploy approve d --target a"),
            ],
        );
        assert_eq!(
            second,
            "  a: paused\n    → approve: ferry deploy approve d --target a\nauto-approved target a\n"
        );
        assert!(!second.contains('\x1b'));
    }

    #[test]
    fn long_lines_are_clipped_to_the_terminal() {
        assert_eq!(clip("short", 80), "short");
        let long = "x".repeat(100);
        let clipped = clip(&long, 40);
        assert_eq!(clipped.chars().count(), 39);
        assert!(clipped.ends_with('…'));
    }

    #[test]
    fn the_terminal_tells_the_width_before_columns() {
        assert_eq!(width(Some(132), Some("100".into())), 132);
        assert_eq!(width(None, Some(" 100\n".into())), 100);
        assert_eq!(width(Some(0), Some("wide".into())), DEFAULT_WIDTH);
        assert_eq!(width(None, None), DEFAULT_WIDTH);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_resize_of_the_terminal_is_noticed() {
        let mut s = Screen::with(true, false);
        s.listen_for_resizes();
        let status = std::process::Command::new("kill")
            .args(["-WINCH", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The timeout only turns a regression into a failure instead of a hang.
        tokio::time::timeout(std::time::Duration::from_secs(30), s.resized())
            .await
            .expect("SIGWINCH wakes the watch");
    }
}
