//! What the command line needs from the terminal and the process: quiet death on a closed
//! pipe (`palisade user list | head -1`), and a password read without echo.
// One of the modules of the workspace that may use `unsafe` (the others: `serve/sys.rs`,
// `alloc.rs`; crates/palisade/tests/repo.rs keeps the list).
#![allow(unsafe_code)]
use std::io::{BufRead, Write};

use anyhow::{bail, Context};

/// Restores the default action of SIGPIPE, which the Rust runtime sets to "ignore": a
/// write to a pipe whose reader has gone then ends the process quietly, as it does for
/// `ls` or `cat`, instead of `println!` panicking on EPIPE (exit 101 and a backtrace).
/// For the one-shot commands only: a server keeps ignoring it (its sockets report EPIPE
/// as an error of one connection).
pub(crate) fn die_quietly_on_closed_pipe() {
    // SAFETY: `signal` with SIG_DFL installs no handler of ours; it is called once, at
    // the start of `main`, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Whether standard input is a terminal.
pub(crate) fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// One line of standard input without its line end (`--password-stdin`, or a password
/// piped in).
pub(crate) fn read_line_stdin(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        bail!("no {what} on standard input (one line expected)");
    }
    Ok(line)
}

/// Echo of the terminal on standard input switched off until dropped.
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: termios is plain data; tcgetattr fills it or fails (then it is unused).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return NoEcho(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return NoEcho(None);
            }
            NoEcho(Some(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
            }
        }
    }
}

/// A new password for `who`: asked twice on a terminal (without echo), or one line of
/// standard input when it is not a terminal.
pub(crate) fn new_password(who: &str) -> anyhow::Result<String> {
    if !stdin_is_tty() {
        return read_line_stdin("password");
    }
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let _quiet = NoEcho::new();
        read_line_stdin("password")
    };
    let first = ask(&format!("Password for {who}: "))?;
    let again = ask("Again: ")?;
    if first != again {
        bail!("the two passwords differ; nothing added");
    }
    Ok(first)
}
