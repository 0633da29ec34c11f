//! The `s3wal` command: a thin wrapper over the CLI module.

mod cli;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::main(std::env::args_os().skip(1).collect()))
}
