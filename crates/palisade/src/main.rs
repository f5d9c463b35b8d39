//! The `palisade` binary: thin glue over the protocol crates.
//!
//! Today it offers `palisade inspect`, the offline view of what the server does with a
//! message: the same parser, limits and stateless checks the server applies, without a
//! socket.
use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Memory-safe SIP registrar, stateful proxy and session border controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what the server would do with each message: accepted (with its canonical
    /// form) or rejected (with the status code, reason and byte offset).
    ///
    /// Exit status: 0 when every message was accepted, 1 when any was rejected, 2 on a
    /// usage or I/O error.
    Inspect {
        /// Files holding one SIP message each, as received in one datagram; `-` reads
        /// standard input.
        #[arg(required = true)]
        files: Vec<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Override a parser limit, e.g. `--limit limits.max_headers=64` (repeatable).
        #[arg(long = "limit", value_name = "KEY=VALUE")]
        limits: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect {
            files,
            json,
            limits,
        } => {
            let mut lim = palisade_sip::Limits::default();
            for l in &limits {
                let parsed = l
                    .split_once('=')
                    .ok_or_else(|| format!("--limit {l}: expected KEY=VALUE"))
                    .and_then(|(k, v)| {
                        v.parse::<usize>()
                            .map_err(|_| format!("--limit {l}: value must be a positive integer"))
                            .map(|n| (k, n))
                    })
                    .and_then(|(k, n)| lim.set(k, n));
                if let Err(e) = parsed {
                    eprintln!("palisade inspect: {e}");
                    return ExitCode::from(2);
                }
            }
            let mut any_rejected = false;
            for f in &files {
                let bytes = if f == "-" {
                    let mut v = Vec::new();
                    std::io::stdin().read_to_end(&mut v).map(|_| v)
                } else {
                    std::fs::read(f)
                };
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("palisade inspect: {f}: {e}");
                        return ExitCode::from(2);
                    }
                };
                let report = inspect::inspect(f, &bytes, &lim);
                any_rejected |= !report.accepted();
                if json {
                    println!("{}", report.to_json());
                } else {
                    print!("{}", report.to_text());
                }
            }
            ExitCode::from(if any_rejected { 1 } else { 0 })
        }
    }
}
