//! The log's invariants on the in-memory store, with the faults a real
//! store and network inject: lost answers, 409s, other machines taking
//! offsets, failed PUTs. Fast and exhaustive; the integration tests prove
//! the same behaviours on the real servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::local::scratch::Scratch;
use crate::local::{FenceNotes, LocalState};
use crate::log::fence::{self, Kind, State};
use crate::log::keys::Prefix;
use crate::log::testing::audit::{Ack, Audit};
use crate::log::testing::fault_store::{Fault, FaultStore, THEIRS};
use crate::log::wal::Wal;
use crate::store::Store;
use crate::store::memory::MemoryStore;

/// A machine's log, and its lock folder, removed when it drops.
struct Machine<S: Store> {
    wal: Wal<S>,
    _folder: Scratch,
}

impl<S: Store> std::ops::Deref for Machine<S> {
    type Target = Wal<S>;

    fn deref(&self) -> &Wal<S> {
        &self.wal
    }
}

impl<S: Store> Machine<S> {
    /// The log of `store`, seen from a machine with a fresh lock folder
    /// whose notes `local` sets.
    fn new(store: S, prefix: &Prefix, local: impl FnOnce(&LocalState)) -> Machine<S> {
        let folder = Scratch::new("memory");
        let state = LocalState::in_dir(folder.path(), "memory", "b", "wal");
        local(&state);
        let wal = Wal::new(store, prefix.clone(), state).without_pauses();
        Machine {
            wal,
            _folder: folder,
        }
    }

    /// The same machine, its log set up by `setting` (a builder of `Wal`).
    fn with(self, setting: impl FnOnce(Wal<S>) -> Wal<S>) -> Machine<S> {
        let Machine { wal, _folder } = self;
        let wal = setting(wal);
        Machine { wal, _folder }
    }
}

/// A log on an empty in-memory store whose record PUTs meet `faults`.
fn log_with(faults: &[Fault]) -> Machine<FaultStore> {
    let prefix = Prefix::new("wal").unwrap();
    let store = FaultStore::new(Arc::new(MemoryStore::new()), &prefix, faults);
    Machine::new(store, &prefix, |_| {})
}

/// Every record of the log, by offset: its data.
fn records(wal: &Wal<FaultStore>) -> BTreeMap<u64, Vec<u8>> {
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
    assert_eq!(data(&records(&wal)), [&b"a"[..], THEIRS, b"b"]);
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
fn other_machine(wal: &Wal<FaultStore>) -> Machine<&FaultStore> {
    let other = Machine::new(wal.store(), wal.prefix(), |local| {
        local.probe.store(crate::local::Conditional::Enforced);
        local.expiry.store(crate::local::Conditional::Enforced);
    });
    other.with(|wal| wal.lease(Duration::from_secs(1)))
}

/// What a machine that dies right after claiming a fence leaves: a claim
/// naming it as holder, with a 1 s lease, and nothing else.
fn dead_claim(wal: &Wal<FaultStore>, kind: Option<Kind>) {
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
    assert!(started.elapsed() >= Duration::from_secs(2));
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
    assert_eq!(
        other
            .with(|wal| wal.allow_unsafe_takeover(true))
            .append(b"b")
            .unwrap(),
        1
    );
}

/// Long work keeps its fence: each third of a lease it creates the next
/// lease key, so nobody takes a live truncate over.
#[test]
fn a_long_truncate_renews_its_lease_and_keeps_its_fence() {
    let wal = log_with(&[]).with(|wal| wal.lease(Duration::from_secs(2)).parallel(1));
    for n in 1..=12u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    wal.store().delay_deletes(&[Duration::from_millis(300); 10]);
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
    let wal = log_with(&[]).with(|wal| wal.lease(Duration::from_secs(2)).parallel(1));
    for n in 1..=3u64 {
        wal.append(&n.to_be_bytes()).unwrap();
    }
    wal.store().delay_deletes(&[Duration::from_millis(2500)]);
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

/// The appends of one seed's log: 100 in a row, each meeting whatever
/// faults come, and the log they leave, audited. A record another machine
/// wrote counts as one that may stand at its offset.
fn append_through(seed: u64, faults: &[Fault]) -> Audit<u64> {
    let wal = log_with(faults);
    let mut audit = Audit {
        stored: BTreeMap::new(),
        acks: Vec::new(),
        may_stand: Vec::new(),
        cuts: Vec::new(),
    };
    for n in 0..100u64 {
        let data = format!("s{seed}-r{n}");
        match wal.append(data.as_bytes()) {
            Ok(offset) => audit.acks.push(Ack {
                offset,
                data,
                began: n,
                ended: n,
            }),
            // Several failed appends may name the same offset as maybe theirs.
            Err(Error::MaybeStored { offset, .. }) => audit.may_stand.push((Some(offset), data)),
            // Its message says the record may be stored at that key.
            Err(Error::Conflicted { key, .. }) => {
                let offset = wal.prefix().offset_of(&key).unwrap();
                audit.may_stand.push((Some(offset), data));
            }
            Err(Error::Transport { .. }) => {}
            Err(other) => panic!("seed {seed}: {other}"),
        }
    }
    for (offset, data) in records(&wal) {
        let data = match data == THEIRS {
            true => {
                let theirs = format!("another machine's at {offset}");
                audit.may_stand.push((Some(offset), theirs.clone()));
                theirs
            }
            false => String::from_utf8(data).unwrap(),
        };
        audit.stored.insert(offset, data);
    }
    audit
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
        let audit = append_through(seed, &faults);
        let problems = audit.problems();
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}\n{audit:?}");
    }
}
