//! The log's invariants on the in-memory store, with the faults a real
//! store and network inject: lost answers, 409s, other machines taking
//! offsets, failed PUTs. Fast and exhaustive; the integration tests prove
//! the same behaviours on the real servers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result, TransportKind};
use crate::fence::{self, Kind, State};
use crate::local::{FenceNotes, LocalState};
use crate::memory::MemoryStore;
use crate::record::{self, Prefix};
use crate::s3::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};
use crate::store::Store;
use crate::wal::Wal;

/// What happens to one PUT of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing: the store answers.
    Pass,
    /// The PUT lands but its answer is lost; the client sends it again and
    /// gets 412 for the record it wrote.
    LostAnswer,
    /// 409: nothing was decided, nothing written.
    Conflict,
    /// 409 while our own earlier try was in flight, and that try landed.
    ConflictWhileOursLanded,
    /// Another machine writes the offset just before this PUT.
    TakenByAnother,
    /// The request fails for good; `landed` says whether its body got
    /// through and was stored.
    Failed { landed: bool },
}

/// A [`MemoryStore`] that applies faults, in order, to record PUTs.
struct Faulty {
    store: MemoryStore,
    prefix: Prefix,
    faults: Mutex<VecDeque<Fault>>,
}

/// The error of a request that never got an answer.
fn no_answer(key: &str, body_never_arrived: bool) -> Error {
    Error::Transport {
        request: format!("PutObject {key}"),
        host: "memory".into(),
        kind: TransportKind::Reset,
        attempts: 1,
        elapsed: std::time::Duration::ZERO,
        body_never_arrived,
        source: Box::new(std::io::Error::other("injected: no answer")),
    }
}

impl Store for Faulty {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let fault = match self.prefix.offset_of(key) {
            Some(_) => self.faults.lock().unwrap().pop_front(),
            None => None,
        };
        match fault.unwrap_or(Fault::Pass) {
            Fault::Pass => self.store.put_if_absent(key, body, token),
            Fault::LostAnswer => {
                self.store.put_if_absent(key, body, token)?;
                Ok(PutOutcome::Exists { retried: true })
            }
            Fault::Conflict => Ok(PutOutcome::Conflict),
            Fault::ConflictWhileOursLanded => {
                self.store.put_if_absent(key, body, token)?;
                Ok(PutOutcome::Conflict)
            }
            Fault::TakenByAnother => {
                let offset = self.prefix.offset_of(key).expect("a record key");
                let theirs = record::encode(offset, b"another machine's");
                self.store.put_if_absent(key, &theirs, "theirs")?;
                self.store.put_if_absent(key, body, token)
            }
            Fault::Failed { landed } => {
                if landed {
                    self.store.put_if_absent(key, body, token)?;
                }
                Err(no_answer(key, !landed))
            }
        }
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

/// A log on an empty in-memory store whose record PUTs meet `faults`.
fn log_with(faults: &[Fault]) -> Wal<Faulty> {
    static LOGS: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "s3wal-memory-{}-{}",
        std::process::id(),
        LOGS.fetch_add(1, Ordering::Relaxed)
    ));
    let prefix = Prefix::new("wal").unwrap();
    let store = Faulty {
        store: MemoryStore::new(),
        prefix: prefix.clone(),
        faults: Mutex::new(faults.iter().copied().collect()),
    };
    Wal::new(
        store,
        prefix,
        LocalState::in_dir(&dir, "memory", "b", "wal"),
    )
    .without_pauses()
}

/// Every record of the log, by offset: its data.
fn records(wal: &Wal<Faulty>) -> BTreeMap<u64, Vec<u8>> {
    wal.store()
        .store
        .object_keys()
        .iter()
        .filter_map(|key| wal.prefix().offset_of(key))
        .map(|offset| (offset, wal.read(offset).unwrap().data))
        .collect()
}

fn data(records: &BTreeMap<u64, Vec<u8>>) -> Vec<&[u8]> {
    records.values().map(Vec::as_slice).collect()
}

#[test]
fn appends_are_dense_from_one() {
    let wal = log_with(&[]);
    for n in 1..=5u64 {
        assert_eq!(wal.append(format!("r{n}").as_bytes()).unwrap(), n);
    }
    assert_eq!(wal.recover().unwrap(), 5);
    assert_eq!(
        records(&wal).keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn lost_answer_is_recognised_by_its_token_and_stored_once() {
    let wal = log_with(&[Fault::LostAnswer]);
    assert_eq!(wal.append(b"a").unwrap(), 1);
    assert_eq!(wal.append(b"b").unwrap(), 2);
    assert_eq!(data(&records(&wal)), [b"a", b"b"]);
}

#[test]
fn conflict_decides_nothing_and_the_same_offset_is_tried_again() {
    let wal = log_with(&[Fault::Conflict, Fault::Conflict]);
    assert_eq!(wal.append(b"a").unwrap(), 1);
    assert_eq!(data(&records(&wal)), [b"a"]);
}

#[test]
fn conflict_while_our_earlier_put_landed_stores_the_record_once() {
    let wal = log_with(&[Fault::ConflictWhileOursLanded]);
    assert_eq!(wal.append(b"a").unwrap(), 1);
    assert_eq!(wal.append(b"b").unwrap(), 2);
    assert_eq!(data(&records(&wal)), [b"a", b"b"]);
}

#[test]
fn offset_taken_by_another_machine_moves_the_append_past_it() {
    let wal = log_with(&[Fault::Pass, Fault::TakenByAnother]);
    wal.append(b"a").unwrap();
    assert_eq!(wal.append(b"b").unwrap(), 3);
    assert_eq!(
        data(&records(&wal)),
        [&b"a"[..], b"another machine's", b"b"]
    );
}

#[test]
fn failed_put_whose_body_went_out_may_have_stored_the_record() {
    let wal = log_with(&[Fault::Failed { landed: true }]);
    let error = wal.append(b"a").unwrap_err();
    assert!(
        matches!(error, Error::MaybeStored { offset: 1, .. }),
        "{error}"
    );
    assert_eq!(data(&records(&wal)), [b"a"]);
}

#[test]
fn failed_put_whose_body_never_arrived_stored_nothing() {
    let wal = log_with(&[Fault::Failed { landed: false }]);
    let error = wal.append(b"a").unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error}");
    assert!(records(&wal).is_empty());
    assert_eq!(wal.append(b"b").unwrap(), 1, "the offset is still free");
}

#[test]
fn endless_conflicts_give_up_naming_the_key() {
    let wal = log_with(&[Fault::Conflict; 8]);
    let error = wal.append(b"a").unwrap_err();
    assert!(
        matches!(&error, Error::Conflicted { attempts: 8, key } if key == "wal/00000000000000000001"),
        "{error}"
    );
}

#[test]
fn trim_and_truncate_keep_the_log_dense_and_offsets_going_up() {
    let wal = log_with(&[]);
    for n in 1..=10u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    assert_eq!(wal.trim(5).unwrap(), 4);
    assert_eq!(wal.truncate(7).unwrap(), 3);
    assert_eq!(records(&wal).keys().copied().collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(wal.append(b"next").unwrap(), 8);
    let stat = wal.stat().unwrap().unwrap();
    assert_eq!((stat.first, stat.last, stat.records), (5, 8, 4));
}

#[test]
fn a_trimmed_log_is_never_cut_below_its_first_record() {
    let wal = log_with(&[]);
    for n in 1..=10u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    wal.trim(6).unwrap();
    for after in [0, 3, 5] {
        let error = wal.truncate(after).unwrap_err();
        assert!(
            matches!(error, Error::TruncateBelowFirst { first: 6, .. }),
            "{after}: {error}"
        );
    }
    assert_eq!(wal.truncate(6).unwrap(), 4);
    assert_eq!(wal.append(b"next").unwrap(), 7, "offsets go on");
}

/// A command that died holding a truncate fence is finished by the next
/// one on its machine, which decides as the dead one would have: a cut
/// below a trimmed log's first record is refused (the fence goes void).
#[test]
fn a_dead_truncate_that_must_be_refused_is_voided_by_the_next_command() {
    let wal = log_with(&[]);
    for n in 1..=10u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    wal.trim(6).unwrap();
    // What `truncate 3` leaves when it dies right after describing its fence.
    let seq = wal.read_fences(u64::MAX).unwrap().next_seq();
    let claim = fence::claim_key(wal.prefix(), seq);
    wal.store().put_if_absent(&claim, b"", "dead").unwrap();
    let described = fence::key(wal.prefix(), seq, Kind::Truncate(3));
    wal.store().overwrite(&described, b"").unwrap();
    wal.local().fences.store(&FenceNotes {
        running: Some(format!("{claim} dead")),
        epoch: None,
    });
    assert_eq!(wal.append(b"next").unwrap(), 11);
    let offsets: Vec<u64> = records(&wal).keys().copied().collect();
    assert_eq!(offsets, (6..=11).collect::<Vec<u64>>());
    let fences = wal.read_fences(u64::MAX).unwrap();
    assert_eq!(fences.newest().map(|f| f.state), Some(State::Void));
}

#[test]
fn hint_past_the_tail_finds_the_real_tail() {
    let wal = log_with(&[]);
    wal.append(b"a").unwrap();
    wal.local().hint.store(50);
    assert_eq!(wal.append(b"b").unwrap(), 2);
}

/// A small deterministic random source, so a failing schedule can be
/// replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_faults_never_lose_duplicate_or_leave_a_hole() {
    const FAULTS: [Fault; 7] = [
        Fault::Pass,
        Fault::LostAnswer,
        Fault::Conflict,
        Fault::ConflictWhileOursLanded,
        Fault::TakenByAnother,
        Fault::Failed { landed: true },
        Fault::Failed { landed: false },
    ];
    for seed in 0..20 {
        let mut random = Lcg(seed);
        let faults: Vec<Fault> = (0..400)
            .map(|_| FAULTS[random.below(FAULTS.len() as u64) as usize])
            .collect();
        let wal = log_with(&faults);
        // Several failed appends may name the same offset as maybe theirs.
        let mut acknowledged = BTreeMap::new();
        let mut maybe = std::collections::BTreeSet::new();
        for n in 0..100u64 {
            let data = format!("s{seed}-r{n}").into_bytes();
            match wal.append(&data) {
                Ok(offset) => assert!(acknowledged.insert(offset, data).is_none()),
                Err(Error::MaybeStored { offset, .. }) => {
                    maybe.insert((offset, data));
                }
                // Its message says the record may be stored at that key.
                Err(Error::Conflicted { key, .. }) => {
                    maybe.insert((wal.prefix().offset_of(&key).unwrap(), data));
                }
                Err(Error::Transport { .. }) => {}
                Err(other) => panic!("seed {seed}: {other}"),
            }
        }
        let log = records(&wal);
        let offsets: Vec<u64> = log.keys().copied().collect();
        let dense: Vec<u64> = (1..=offsets.len() as u64).collect();
        assert_eq!(offsets, dense, "seed {seed}: a hole");
        for (offset, data) in &acknowledged {
            assert_eq!(log.get(offset), Some(data), "seed {seed}: lost {offset}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (offset, data) in &log {
            let known = acknowledged.get(offset) == Some(data)
                || maybe.contains(&(*offset, data.clone()))
                || data == b"another machine's";
            assert!(known, "seed {seed}: unexpected record at {offset}");
            assert!(
                data == b"another machine's" || seen.insert(data.clone()),
                "seed {seed}: {offset} duplicates a record"
            );
        }
    }
}
