//! The `s3wal` command: a thin wrapper over the CLI module.

mod cli;

fn main() -> std::process::ExitCode {
    one_malloc_arena();
    std::process::ExitCode::from(cli::main(std::env::args_os().skip(1).collect()))
}

/// glibc gives every thread a malloc arena of its own. `dump` hands each
/// record from the worker that fetched it to the thread that prints it,
/// and the arenas then keep what was freed: RSS crept from 6 to over
/// 9 MiB within 3 000 records, and on. One arena keeps it flat at about
/// 6 MiB (measured by `make bench`); the work waits on the network, so
/// sharing the allocator's lock costs nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator tunable; this runs before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
