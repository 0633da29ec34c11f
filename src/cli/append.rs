//! `append`: store records, and whatever ends the command, say which.
//!
//! A record that was stored (or may have been) is always named with its
//! offset: on stdout as each one is stored, and on stderr when the command
//! then fails (stdout full or closed, a later record refused, a signal), so
//! that a script never appends the same record twice by retrying blindly.
//!
//! Input is read by a thread of its own and handed over a small queue, so
//! the local lock is held only while there is input to store: an idle
//! `tail -f log | s3wal append --lines` leaves the lock to other appends,
//! and a signal that comes while waiting for input ends the command at
//! once, with nothing in flight.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread;
use std::time::Duration;

use s3wal::Error;
use s3wal::Wal;
use s3wal::record::{Body, MAX_DATA_LEN};
use s3wal::s3::Client;

use super::output::Output;
use super::signals;
use super::stored::Stored;

/// Where the records of one `append` come from.
pub enum Source {
    /// The data on the command line: one record, printed back.
    Argument(String),
    /// All of stdin: one record, printed as its size.
    Stdin,
    /// Each line of stdin: one record each, printed as its size.
    Lines,
}

/// How often a wait for input looks for a deferred signal.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Records read ahead of the one being stored.
const QUEUE: usize = 64;

/// Stores the records of `source` and prints each as it is stored. On an
/// error, `stored` says what was stored before it.
///
/// The caller defers the signals of [`signals`] for the whole command, so
/// that the reading thread started here never takes one.
pub fn run(
    wal: &Wal<Client>,
    source: Source,
    out: &mut Output,
    stored: &mut Stored,
) -> Result<(), Error> {
    let (sender, queue) = mpsc::sync_channel(QUEUE);
    let show_data = matches!(source, Source::Argument(_));
    match source {
        Source::Argument(data) => {
            let _ = sender.send(Ok(Body::from(data.into_bytes())));
            drop(sender);
        }
        Source::Stdin => {
            thread::spawn(move || read_all(&sender));
        }
        Source::Lines => {
            thread::spawn(move || read_lines(&sender));
        }
    }
    let mut input_error = None;
    while let Some(first) = next_input(&queue)? {
        // Everything queued now is stored under one lock; the lock goes
        // when the queue runs dry, and comes back with the next input.
        let more = std::iter::from_fn(|| match queue.try_recv() {
            _ if signals::pending().is_some() => None,
            Ok(Ok(body)) => Some(body),
            Ok(Err(error)) => {
                input_error = Some(error);
                None
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        });
        wal.append_each(std::iter::once(first?).chain(more), |offset, data| {
            stored.push(offset);
            match show_data {
                true => out.appended(offset, data)?,
                false => out.appended_bytes(offset, data.len() as u64)?,
            }
            out.flush()
        })?;
        if let Some(error) = input_error.take() {
            return Err(error);
        }
    }
    Ok(())
}

/// The next input, waiting for it as long as it takes; `None` at the end of
/// input. A deferred signal that comes meanwhile ends the wait as an error.
fn next_input(queue: &Receiver<Result<Body, Error>>) -> Result<Option<Result<Body, Error>>, Error> {
    loop {
        if let Some(signal) = signals::pending() {
            return Err(Error::Interrupted { signal });
        }
        match queue.recv_timeout(SIGNAL_POLL) {
            Ok(input) => return Ok(Some(input)),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
        }
    }
}

fn stdin_error(source: io::Error) -> Error {
    Error::Io {
        context: "cannot read stdin".into(),
        source,
    }
}

/// All of stdin as one record, refused as soon as it is longer than a
/// record can be (at once for a regular file of that size).
fn read_all(sender: &SyncSender<Result<Body, Error>>) {
    let stdin = io::stdin();
    let size = regular_file_size(&stdin);
    if size.is_none() {
        widen_pipe(&stdin);
    }
    let body = match Body::read_from(stdin.lock(), size, MAX_DATA_LEN) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(Error::RecordTooLarge { max: MAX_DATA_LEN }),
        Err(error) => Err(stdin_error(error)),
    };
    let _ = sender.send(body);
}

/// The size of stdin when it is a regular file, known before reading it.
fn regular_file_size(stdin: &io::Stdin) -> Option<u64> {
    use std::os::fd::AsFd;
    let file = std::fs::File::from(stdin.as_fd().try_clone_to_owned().ok()?);
    let metadata = file.metadata().ok()?;
    metadata.is_file().then_some(metadata.len())
}

/// Bytes a pipe on stdin holds once widened.
#[cfg(target_os = "linux")]
const PIPE_SIZE: libc::c_int = 1024 * 1024;

/// Widens the pipe that stdin may be from Linux's 64 KiB to [`PIPE_SIZE`]
/// (the most an unprivileged process may ask for by default), so that a
/// big record comes in 16 times fewer wake-ups of the writer and of this
/// reader: 500 MiB from a pipe took 0.97 s instead of 1.15. Anything else
/// than a pipe refuses, and so may the user's limit on pipe memory: either
/// way nothing changes.
#[cfg(target_os = "linux")]
fn widen_pipe(stdin: &io::Stdin) {
    use std::os::fd::{AsFd, AsRawFd};
    // SAFETY: F_SETPIPE_SZ only resizes the pipe's buffer, if the
    // descriptor is one.
    unsafe {
        libc::fcntl(stdin.as_fd().as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

#[cfg(not(target_os = "linux"))]
fn widen_pipe(_: &io::Stdin) {}

/// Each line of stdin, without its `\n`, as one record; a line longer
/// than a record can be is refused as soon as that is known, not read to
/// its end.
fn read_lines(sender: &SyncSender<Result<Body, Error>>) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut line = Vec::new();
        let read = (&mut stdin)
            .take(MAX_DATA_LEN + 1)
            .read_until(b'\n', &mut line);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let input = match read {
            Ok(0) => return,
            Ok(_) if line.len() as u64 > MAX_DATA_LEN => {
                Err(Error::RecordTooLarge { max: MAX_DATA_LEN })
            }
            Ok(_) => Ok(Body::from(line)),
            Err(error) => Err(stdin_error(error)),
        };
        let failed = input.is_err();
        if sender.send(input).is_err() || failed {
            return;
        }
    }
}
