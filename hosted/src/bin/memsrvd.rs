//! `memsrvd`: the nommu memory server for host processes (see `--help`).

use hosted::daemon::{self, options, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    match options::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", options::HELP);
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(opts)) => match daemon::run(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("memsrvd: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("memsrvd: {e}");
            ExitCode::from(2)
        }
    }
}
