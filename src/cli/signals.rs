//! SIGINT, SIGTERM and SIGHUP wait while a record is being stored.
//!
//! A signal that killed s3wal in the middle of a PUT would leave the
//! record stored, or not, with nothing printed: a script that then retries
//! appends it twice. So the append loop defers these signals while it
//! stores and reports, checks after each record whether one came, names
//! what it stored, and only then lets the signal end the process as it
//! would have (the shell still sees 128 + the signal's number).

use std::mem::MaybeUninit;

/// The signals that end a process by default and that a user or a
/// supervisor sends to stop it.
const DEFERRED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The deferred signals that would end the process: one whose action is
/// to be ignored (`nohup`, a script's `cmd &`) is no request to stop, and
/// a blocked signal stays pending even when ignored.
fn ending() -> impl Iterator<Item = libc::c_int> {
    DEFERRED.into_iter().filter(|&signal| {
        let mut action = MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: sigaction with no new action only fills `action`.
        let read = unsafe { libc::sigaction(signal, std::ptr::null(), action.as_mut_ptr()) };
        // SAFETY: filled by the successful call above.
        read == 0 && unsafe { action.assume_init() }.sa_sigaction == libc::SIG_DFL
    })
}

fn deferred_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only sets bits of
    // an initialised set, for valid signal numbers.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for signal in ending() {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}

fn mask(how: libc::c_int) {
    let set = deferred_set();
    // SAFETY: a valid set, and no old mask asked for.
    unsafe {
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// While this lives, the deferred signals wait on this thread, and on
/// every thread it starts meanwhile. Dropping it lets a waiting signal
/// act: by default, that ends the process.
pub struct Deferral(());

impl Deferral {
    /// Defers the signals until the deferral is dropped.
    pub fn start() -> Deferral {
        mask(libc::SIG_BLOCK);
        Deferral(())
    }
}

impl Drop for Deferral {
    fn drop(&mut self) {
        mask(libc::SIG_UNBLOCK);
    }
}

/// The name of a deferred signal that is waiting, if one is.
pub fn pending() -> Option<&'static str> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given.
    let waiting = unsafe {
        if libc::sigpending(set.as_mut_ptr()) != 0 {
            return None;
        }
        set.assume_init()
    };
    ending()
        // SAFETY: an initialised set and a valid signal number.
        .find(|&signal| unsafe { libc::sigismember(&waiting, signal) } == 1)
        .map(|signal| match signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "SIGHUP",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ignored_signal_is_no_request_to_stop() {
        // SIGTERM here, SIGHUP in the other test: they run side by side.
        // SAFETY: ignoring SIGTERM in this test process, then restoring it.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
        let deferral = Deferral::start();
        // SAFETY: an ignored signal is discarded.
        unsafe {
            libc::raise(libc::SIGTERM);
        }
        assert_eq!(pending(), None);
        drop(deferral);
        // SAFETY: back to the default action.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }

    #[test]
    fn a_deferred_signal_waits_until_the_deferral_ends() {
        // Under `nohup` SIGHUP comes ignored, and an ignored signal is
        // discarded, never pending: take its default action back first.
        // SAFETY: setting SIGHUP's disposition in this test process.
        unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
        }
        let deferral = Deferral::start();
        assert_eq!(pending(), None);
        // SAFETY: raising a signal this thread blocks only marks it pending.
        unsafe {
            libc::raise(libc::SIGHUP);
        }
        assert_eq!(pending(), Some("SIGHUP"));
        // Taken while still blocked, so the test process lives on.
        let set = deferred_set();
        let mut taken = 0;
        // SAFETY: waits for a signal known to be pending.
        unsafe {
            libc::sigwait(&set, &mut taken);
        }
        assert_eq!(taken, libc::SIGHUP);
        assert_eq!(pending(), None);
        drop(deferral);
    }
}
