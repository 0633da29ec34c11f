//! The log's invariants on the in-memory store, with the faults a real
//! store and network inject: lost answers, 409s, other machines taking
//! offsets, failed PUTs. Fast and exhaustive; the integration tests prove
//! the same behaviours on the real servers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result, TransportKind};
use crate::local::{FenceNotes, LocalState};
use crate::log::fence::{self, Kind, State};
use crate::log::keys::Prefix;
use crate::log::record;
use crate::log::wal::Wal;
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};

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
    /// How long the next deletes of records take, one each: long work
    /// under a fence, or a holder that stalls.
    delete_delays: Mutex<VecDeque<std::time::Duration>>,
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
        delete_delays: Mutex::new(VecDeque::new()),
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
/// one on its machine once its lease ran out, which decides as the dead
/// one would have: a cut below a trimmed log's first record is refused
/// (the fence goes void).
#[test]
fn a_dead_truncate_that_must_be_refused_is_voided_by_the_next_command() {
    let wal = log_with(&[]);
    for n in 1..=10u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    wal.trim(6).unwrap();
    // What `truncate 3` leaves when it dies right after describing its fence.
    let seq = wal.read_fences(u64::MAX).unwrap().next_seq();
    dead_claim(&wal, Some(Kind::Truncate(3)));
    let claim = fence::claim_key(wal.prefix(), seq);
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

/// A second machine's view of `wal`'s store: a lock folder of its own.
fn other_machine(wal: &Wal<Faulty>) -> Wal<&Faulty> {
    static MACHINES: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "s3wal-memory-other-{}-{}",
        std::process::id(),
        MACHINES.fetch_add(1, Ordering::Relaxed)
    ));
    let local = LocalState::in_dir(&dir, "memory", "b", "wal");
    local.probe.store(crate::local::Conditional::Enforced);
    local.expiry.store(crate::local::Conditional::Enforced);
    Wal::new(wal.store(), wal.prefix().clone(), local)
        .lease(std::time::Duration::from_secs(1))
        .without_pauses()
}

/// What a machine that dies right after claiming a fence leaves: a claim
/// naming it as holder, with a 1 s lease, and nothing else.
fn dead_claim(wal: &Wal<Faulty>, kind: Option<Kind>) {
    let seq = wal.read_fences(u64::MAX).unwrap().next_seq();
    let claim = fence::claim_key(wal.prefix(), seq);
    let holder = fence::Holder {
        lease_secs: 1,
        host: "gone".into(),
        pid: 1,
        released: false,
    };
    wal.store()
        .put_if_absent(&claim, &holder.encode(), "dead")
        .unwrap();
    if let Some(kind) = kind {
        let described = fence::key(wal.prefix(), seq, kind);
        wal.store().overwrite(&described, b"").unwrap();
    }
}

/// A truncate that died after its claim, before it said what it does,
/// did nothing: another machine voids it once its lease ran out, and
/// appends.
#[test]
fn an_undescribed_claim_of_a_dead_machine_is_voided_after_its_lease() {
    let wal = log_with(&[]);
    for n in 1..=3u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    dead_claim(&wal, None);
    let started = std::time::Instant::now();
    assert_eq!(other_machine(&wal).append(b"next").unwrap(), 4);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let fences = wal.read_fences(u64::MAX).unwrap();
    assert_eq!(fences.newest().map(|f| f.state), Some(State::Void));
}

/// A dead machine's described truncate is finished by the machine that
/// takes it over, then that machine's own command goes on.
#[test]
fn a_dead_machines_truncate_is_finished_by_whoever_meets_it_after_its_lease() {
    let wal = log_with(&[]);
    for n in 1..=6u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    dead_claim(&wal, Some(Kind::Truncate(2)));
    assert_eq!(other_machine(&wal).truncate(4).unwrap(), 0, "already cut");
    assert_eq!(records(&wal).keys().copied().collect::<Vec<_>>(), [1, 2]);
    let fences = wal.read_fences(u64::MAX).unwrap();
    let newest = fences.newest().unwrap();
    assert_eq!(
        (newest.seq, newest.state),
        (1, State::Done),
        "its own cut nothing"
    );
}

/// On a store that carries out expired requests a paused holder could
/// still delete after a takeover: nobody takes over unless told to.
#[test]
fn a_store_that_ignores_expiry_takes_no_fence_over_unless_told() {
    let wal = log_with(&[]);
    wal.append(b"a").unwrap();
    dead_claim(&wal, Some(Kind::Truncate(0)));
    wal.store().store.ignore_expiry(true);
    let other = other_machine(&wal);
    other
        .local()
        .expiry
        .store(crate::local::Conditional::Ignored);
    let error = other.append(b"b").unwrap_err();
    assert!(matches!(error, Error::UnsafeTakeover { .. }), "{error}");
    assert!(
        error.to_string().contains("--allow-unsafe-takeover"),
        "{error}"
    );
    assert_eq!(other.allow_unsafe_takeover(true).append(b"b").unwrap(), 1);
}

/// Long work keeps its fence: each third of a lease it creates the next
/// lease key, so nobody takes a live truncate over.
#[test]
fn a_long_truncate_renews_its_lease_and_keeps_its_fence() {
    let wal = log_with(&[])
        .lease(std::time::Duration::from_secs(2))
        .parallel(1);
    for n in 1..=12u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    *wal.store().delete_delays.lock().unwrap() =
        vec![std::time::Duration::from_millis(300); 10].into();
    assert_eq!(wal.truncate(2).unwrap(), 10);
    let fences = wal.read_fences(u64::MAX).unwrap();
    let fence = fences.newest().unwrap();
    assert_eq!(fence.state, State::Done);
    assert!(fence.lease >= 2, "{fence:?}");
}

/// A holder that stalled past its lease while nobody took its fence over
/// finds its delete refused, takes a fresh lease, and finishes.
#[test]
fn a_holder_that_stalled_past_its_lease_unclaimed_takes_a_new_one_and_goes_on() {
    let wal = log_with(&[])
        .lease(std::time::Duration::from_secs(2))
        .parallel(1);
    for n in 1..=3u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    *wal.store().delete_delays.lock().unwrap() =
        vec![std::time::Duration::from_millis(2500)].into();
    assert_eq!(wal.truncate(1).unwrap(), 2);
    assert_eq!(records(&wal).keys().copied().collect::<Vec<_>>(), [1]);
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
