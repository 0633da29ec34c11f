//! The one fault-injecting store of the tests: an in-memory store whose
//! record PUTs meet the faults a real store and network inject (lost
//! answers, 409s, another machine taking the offset, failed requests),
//! in order, and whose deletes of records may be slow. The fault tests
//! (`faults.rs`) use it as their store; the explorer (`schedules.rs`)
//! gives each of its machines one over the shared store, and applies a
//! fault inside that machine's turn.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result, TransportKind};
use crate::log::keys::Prefix;
use crate::log::record;
use crate::store::memory::MemoryStore;
use crate::store::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome, Store};

/// What happens to one PUT of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Nothing: the store answers.
    Pass,
    /// The PUT lands but its answer is lost; the client sends it again and
    /// gets 412 for the record it wrote.
    LostAnswer,
    /// 409: nothing was decided, nothing written.
    Conflict,
    /// 409 while our own earlier try was in flight, and that try landed.
    ConflictWhileOursLanded,
    /// Another machine writes the offset just before this PUT, with the
    /// data [`THEIRS`].
    TakenByAnother,
    /// The request fails for good; `landed` says whether its body got
    /// through and was stored.
    Failed { landed: bool },
}

/// The data of a record another machine wrote ([`Fault::TakenByAnother`]).
pub(crate) const THEIRS: &[u8] = b"another machine's";

impl Fault {
    /// The conditional PUT of `body` at `key`, the record at `offset`, as
    /// `store` answers it when this fault strikes.
    pub(crate) fn put(
        self,
        store: &MemoryStore,
        offset: u64,
        (key, body, token): (&str, &[u8], &str),
    ) -> Result<PutOutcome> {
        let outcome = match self {
            Fault::Conflict => return Ok(PutOutcome::Conflict),
            Fault::TakenByAnother => {
                store.put_if_absent(key, &record::encode(offset, THEIRS), "theirs")?;
                store.put_if_absent(key, body, token)?
            }
            Fault::Failed { landed: false } => return Err(no_answer(key, true)),
            _ => store.put_if_absent(key, body, token)?,
        };
        match self {
            Fault::LostAnswer => Ok(PutOutcome::Exists { retried: true }),
            Fault::ConflictWhileOursLanded => Ok(PutOutcome::Conflict),
            Fault::Failed { .. } => Err(no_answer(key, false)),
            _ => Ok(outcome),
        }
    }
}

/// The error of a request that never got an answer.
fn no_answer(key: &str, body_never_arrived: bool) -> Error {
    Error::Transport {
        request: format!("PutObject {key}"),
        host: "memory".into(),
        kind: TransportKind::Reset,
        attempts: 1,
        elapsed: Duration::ZERO,
        body_never_arrived,
        source: Box::new(std::io::Error::other("injected: no answer")),
    }
}

/// A [`MemoryStore`], maybe shared, whose record PUTs meet faults in order
/// and whose record deletes take the delays given, one each.
pub(crate) struct FaultStore {
    pub(crate) store: Arc<MemoryStore>,
    prefix: Prefix,
    faults: Mutex<VecDeque<Fault>>,
    /// How long the next deletes of records take, one each: long work
    /// under a fence, or a holder that stalls.
    delete_delays: Mutex<VecDeque<Duration>>,
}

impl FaultStore {
    /// `store`, whose PUTs of records under `prefix` meet `faults`.
    pub(crate) fn new(store: Arc<MemoryStore>, prefix: &Prefix, faults: &[Fault]) -> FaultStore {
        FaultStore {
            store,
            prefix: prefix.clone(),
            faults: Mutex::new(faults.iter().copied().collect()),
            delete_delays: Mutex::default(),
        }
    }

    /// Makes the next deletes of records take `delays`, one each.
    pub(crate) fn delay_deletes(&self, delays: &[Duration]) {
        *self.delete_delays.lock().unwrap() = delays.iter().copied().collect();
    }

    /// The fault the PUT at `key` meets, and the offset it is the record
    /// of: [`Fault::Pass`] for a key that is no record's.
    pub(crate) fn next_fault(&self, key: &str) -> (Fault, u64) {
        match self.prefix.offset_of(key) {
            Some(offset) => {
                let fault = self.faults.lock().unwrap().pop_front();
                (fault.unwrap_or(Fault::Pass), offset)
            }
            None => (Fault::Pass, 0),
        }
    }
}

impl Store for FaultStore {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let (fault, offset) = self.next_fault(key);
        fault.put(&self.store, offset, (key, body, token))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(key)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        self.store.head(key)
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        self.store.list_page(page)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        self.store.delete(keys)
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        self.store.overwrite(key, body)
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        if self.prefix.offset_of(key).is_some() {
            let delay = self.delete_delays.lock().unwrap().pop_front();
            std::thread::sleep(delay.unwrap_or_default());
        }
        self.store.delete_key(key, deadline)
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        self.store.overwrite_until(key, body, deadline)
    }

    fn store_time(&self) -> Option<i64> {
        self.store.store_time()
    }

    fn identity(&self) -> String {
        self.store.identity()
    }
}
