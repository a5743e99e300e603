//! `memsrvd`: the nommu memory server for host processes (see `--help`).

use hosted::daemon::{self, options};
use std::process::ExitCode;

fn main() -> ExitCode {
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let opts = options::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memsrvd: {e}");
            ExitCode::FAILURE
        }
    }
}
