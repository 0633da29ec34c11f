//! Fences: the one sequence that orders truncates, trims and repairs of a
//! log against each other and against appends on other machines.
//!
//! S3 offers one compare-and-set that every store we support honours:
//! create a key only if it is absent. A fence is claimed by creating the
//! next key of a sequence under `<prefix>/.s3wal/fence/` that way, so two
//! machines never hold the same one; then a second key beside it says what
//! it does (`truncate` after N, `trim` before N, `repair` from N). A fence
//! is *running* until a marker beside it says it is *done*, or *void* (it
//! did nothing). A claim not yet described counts as the worst it could
//! be: a truncate after 0.
//! A fence is only created once the one before it has settled, so at most
//! one runs at a time: truncates, trims and repairs happen one after the
//! other, whatever machines they run on.
//!
//! Appenders do not take fences: they stamp each record with an *epoch*,
//! the newest fence whose truncate, if it was one, had settled before they
//! looked at the record they append after. A record is **doomed** when a
//! truncate fence newer than its epoch cut more than one below it: such a
//! record was placed on a tail that truncate was removing, so it may sit
//! above a hole. Doomed records are never acknowledged, and are removed,
//! top down, under a repair fence. The argument for each property is in
//! the README ("Many machines, one log").
//!
//! A fence is held by a **lease** the store enforces: its holder signs
//! every write it makes under the fence (single DELETEs and empty PUTs,
//! requests without a body) to expire with its lease, as of a time the
//! store gave, so the store refuses them once the lease is over however
//! long the holder was paused. A holder renews by creating the next lease
//! key (`…-lease-<n>`, create-if-absent); another machine takes a fence
//! over by creating that same key once the fence showed no life for the
//! holder's lease and a margin, by the store's clock alone (its `Date`
//! against the keys' `LastModified`). Whoever creates lease `n` first holds
//! the fence; the other learns it from its 412.
//!
//! Everything here is pure: key names, parsing a listing, the rules.

use crate::log::keys::Prefix;

/// The folder of the fences, under the prefix.
/// What follows a fence's name in the name of its marker.
const DONE: &str = ".done";
const VOID: &str = ".void";
/// What names a lease key after its fence's claim key.
const LEASE: &str = "-lease-";
/// How long after a lease's end, by the store's clock, another machine may
/// take its fence over: time for a request that arrived just before the
/// end to be carried out, for the store's nodes' clocks to differ, and for
/// `Date`'s whole seconds.
pub(crate) const TAKEOVER_MARGIN_MS: i64 = 2000;

/// What a fence does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Deletes every record after this offset.
    Truncate(u64),
    /// Deletes every record before this offset.
    Trim(u64),
    /// Removes doomed records from this offset up.
    Repair(u64),
    /// Claimed, not yet described: may be a truncate after 0.
    Claimed,
}

impl Kind {
    fn name(self) -> (&'static str, u64) {
        match self {
            Kind::Truncate(after) => ("truncate", after),
            Kind::Trim(before) => ("trim", before),
            Kind::Repair(from) => ("repair", from),
            Kind::Claimed => ("claimed", 0),
        }
    }

    /// The cut of a truncate; a claim may be a truncate after 0.
    fn cut(self) -> Option<u64> {
        match self {
            Kind::Truncate(after) => Some(after),
            Kind::Claimed => Some(0),
            _ => None,
        }
    }

    fn parse(name: &str, argument: u64) -> Option<Kind> {
        match name {
            "truncate" => Some(Kind::Truncate(argument)),
            "trim" => Some(Kind::Trim(argument)),
            "repair" => Some(Kind::Repair(argument)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Truncate(after) => write!(f, "truncate after {after}"),
            Kind::Trim(before) => write!(f, "trim before {before}"),
            Kind::Repair(from) => write!(f, "repair from {from}"),
            Kind::Claimed => f.write_str("truncate, trim or repair"),
        }
    }
}

/// Where a fence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Its machine is at work, or died at work.
    Running,
    /// It did what its name says.
    Done,
    /// It did nothing (the operation was refused): it dooms nothing.
    Void,
}

/// One fence of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fence {
    /// Its place in the sequence, from 1.
    pub seq: u64,
    pub kind: Kind,
    pub state: State,
    /// Its newest lease: 0 for the claim, `n` for `…-lease-<n>`.
    pub lease: u64,
    /// Its last sign of life: the newest `LastModified` among its claim,
    /// description and leases, in milliseconds by the store's clock.
    pub alive: Option<i64>,
    /// When it was claimed: its claim's `LastModified`.
    pub claimed: Option<i64>,
}

impl Fence {
    /// The key whose body names its newest holder and that holder's lease.
    pub(crate) fn lease_key(&self, prefix: &Prefix) -> String {
        lease_key(prefix, self.seq, self.lease)
    }

    /// When, in milliseconds by the store's clock, another machine may
    /// take this fence over from `holder`; `None` when the listing gave no
    /// time.
    pub(crate) fn takeover_at(&self, holder: &Holder) -> Option<i64> {
        if holder.released {
            return self.alive;
        }
        let lease_ms = i64::try_from(holder.lease_secs).unwrap_or(i64::MAX / 2) * 1000;
        Some(self.alive? + lease_ms + TAKEOVER_MARGIN_MS)
    }

    /// Whether the next fence may be created, and whether appenders may
    /// take this one as their epoch: a running truncate is the only fence
    /// that holds appenders back.
    pub(crate) fn settled(&self) -> bool {
        self.state != State::Running
    }
}

/// The key that claims fence `seq`, created only if absent. The sequence
/// is written as its distance from `u64::MAX`, so that a listing, which S3
/// gives in ascending order only, starts at the newest fence. An `f` leads
/// it, so that no part of the key is a number the Go seed could take for
/// an offset.
pub(crate) fn claim_key(prefix: &Prefix, seq: u64) -> String {
    format!("{}f{:020}", prefix.fence_folder(), u64::MAX - seq)
}

/// The key that says what fence `seq` does, written after its claim; a
/// claim not yet described is its own key.
pub(crate) fn key(prefix: &Prefix, seq: u64, kind: Kind) -> String {
    match kind {
        Kind::Claimed => claim_key(prefix, seq),
        _ => {
            let (name, argument) = kind.name();
            format!("{}-{name}-{argument}", claim_key(prefix, seq))
        }
    }
}

/// The key of lease `n` of fence `seq`: lease 0 is the claim itself.
pub(crate) fn lease_key(prefix: &Prefix, seq: u64, n: u64) -> String {
    match n {
        0 => claim_key(prefix, seq),
        _ => format!("{}{LEASE}{n}", claim_key(prefix, seq)),
    }
}

/// The key of the marker that settles fence `key`.
pub(crate) fn marker(fence_key: &str, state: State) -> String {
    match state {
        State::Void => format!("{fence_key}{VOID}"),
        _ => format!("{fence_key}{DONE}"),
    }
}

/// What one key of the fence folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Claim(u64),
    Lease(u64, u64),
    Fence(u64, Kind),
    Marker(u64, State),
}

/// A number written with digits alone.
fn digits_only(text: &str) -> Option<u64> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

fn parse(prefix: &Prefix, key: &str) -> Option<Entry> {
    let name = key
        .strip_prefix(&prefix.fence_folder())?
        .strip_prefix('f')?;
    let (name, marker) = match (name.strip_suffix(DONE), name.strip_suffix(VOID)) {
        (Some(name), _) => (name, Some(State::Done)),
        (_, Some(name)) => (name, Some(State::Void)),
        _ => (name, None),
    };
    let mut parts = name.splitn(3, '-');
    let distance = parts
        .next()
        .filter(|d| d.len() == 20)?
        .parse::<u64>()
        .ok()?;
    let seq = u64::MAX - distance;
    let kind = match (parts.next(), parts.next()) {
        (None, _) => None,
        (Some("lease"), Some(n)) if marker.is_none() => {
            return Some(Entry::Lease(seq, digits_only(n)?));
        }
        (Some(name), Some(argument)) => Some(Kind::parse(name, argument.parse().ok()?)?),
        (Some(_), None) => return None,
    };
    Some(match (marker, kind) {
        (Some(state), _) => Entry::Marker(seq, state),
        (None, Some(kind)) => Entry::Fence(seq, kind),
        (None, None) => Entry::Claim(seq),
    })
}

/// The fences of a log from the newest down to some point, as read from
/// the fence folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fences {
    /// Newest first.
    list: Vec<Fence>,
    /// The store's time when they were read, in milliseconds, from the
    /// `Date` of the listing's answer.
    pub now: Option<i64>,
    /// The keys of the store's tail hint that the same listing of
    /// `<prefix>/.s3wal/` showed first (see `store_hint.rs`).
    pub hints: Vec<String>,
    /// The keys of the named cursors the same listing showed (see
    /// `wal/cursor.rs`), in order.
    pub cursors: Vec<String>,
}

impl Fences {
    /// The fences among `keys` (a listing of [`folder`], in order), with
    /// their markers; keys s3wal does not know are skipped.
    #[cfg(test)]
    pub(crate) fn from_keys<'k>(
        prefix: &Prefix,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Fences {
        Fences::from_listing(prefix, keys.into_iter().map(|key| (key, None)))
    }

    /// The fences among `listing` (keys of [`folder`] in order, each with
    /// its `LastModified` in milliseconds), with their markers, leases and
    /// last signs of life; keys s3wal does not know are skipped.
    pub(crate) fn from_listing<'k>(
        prefix: &Prefix,
        listing: impl IntoIterator<Item = (&'k str, Option<i64>)>,
    ) -> Fences {
        let mut list: Vec<Fence> = Vec::new();
        let entries = listing
            .into_iter()
            .filter_map(|(key, modified)| Some((parse(prefix, key)?, modified)));
        for (entry, modified) in entries {
            let (seq, kind, state, lease) = match entry {
                Entry::Claim(seq) => (seq, None, None, None),
                Entry::Lease(seq, n) => (seq, None, None, Some(n)),
                Entry::Fence(seq, kind) => (seq, Some(kind), None, None),
                Entry::Marker(seq, state) => (seq, None, Some(state), None),
            };
            let fence = match list.iter_mut().find(|f| f.seq == seq) {
                Some(fence) => fence,
                None => {
                    list.push(Fence {
                        seq,
                        kind: Kind::Claimed,
                        state: State::Running,
                        lease: 0,
                        alive: None,
                        claimed: None,
                    });
                    list.last_mut().expect("just pushed")
                }
            };
            fence.kind = kind.unwrap_or(fence.kind);
            fence.state = state.unwrap_or(fence.state);
            fence.lease = fence.lease.max(lease.unwrap_or(0));
            if state.is_none() {
                fence.alive = fence.alive.max(modified);
            }
            if matches!(entry, Entry::Claim(_)) {
                fence.claimed = modified;
            }
        }
        Fences {
            list,
            now: None,
            hints: Vec::new(),
            cursors: Vec::new(),
        }
    }

    /// The sequence number of a key, for a listing to know when it has read
    /// far enough back.
    pub(crate) fn seq_of(prefix: &Prefix, key: &str) -> Option<u64> {
        match parse(prefix, key)? {
            Entry::Claim(seq)
            | Entry::Lease(seq, _)
            | Entry::Fence(seq, _)
            | Entry::Marker(seq, _) => Some(seq),
        }
    }

    /// Drops the fences newer than `seq`.
    pub(crate) fn forget_after(&mut self, seq: u64) {
        self.list.retain(|f| f.seq <= seq);
    }

    /// The newest fence, if any.
    pub(crate) fn newest(&self) -> Option<&Fence> {
        self.list.first()
    }

    /// The fence numbered `seq`, if read.
    pub(crate) fn get(&self, seq: u64) -> Option<&Fence> {
        self.list.iter().find(|f| f.seq == seq)
    }

    /// The next fence's number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.newest().map_or(1, |f| f.seq + 1)
    }

    /// The epoch an appender may stamp on a record placed after a record it
    /// looks at from now on: the newest fence, or the one before it while
    /// the newest is a running truncate. `None` while a running truncate
    /// holds appenders back is not a case: it gives the one before.
    pub(crate) fn epoch(&self) -> u64 {
        match self.newest() {
            Some(f) if f.settled() || f.kind.cut().is_none() => f.seq,
            Some(f) => f.seq - 1,
            None => 0,
        }
    }

    /// The running truncate that holds appenders back, if any.
    pub(crate) fn running_truncate(&self) -> Option<&Fence> {
        self.newest()
            .filter(|f| !f.settled() && f.kind.cut().is_some())
    }

    /// The fences newer than `epoch`, not void, that doom a record at
    /// `offset` stamped with `epoch`: a truncate that cut more than one
    /// below it (it may sit above a hole), a trim that starts the log
    /// above it (it may sit below the first record, where offsets would
    /// be handed out again), and a claim not yet described (it may be
    /// either). Running ones count: they may yet be done.
    pub(crate) fn dooming(&self, epoch: u64, offset: u64) -> impl Iterator<Item = &Fence> {
        self.list.iter().filter(move |f| {
            f.seq > epoch
                && f.state != State::Void
                && match f.kind {
                    Kind::Truncate(after) => after.saturating_add(1) < offset,
                    Kind::Trim(before) => offset < before,
                    Kind::Claimed => true,
                    Kind::Repair(_) => false,
                }
        })
    }

    /// Whether only trims doom a record at `offset` stamped with `epoch`:
    /// then it is doomed only if it is still there once they settle (one
    /// they deleted was appended before them, and stands as trimmed).
    pub(crate) fn only_trims_doom(&self, epoch: u64, offset: u64) -> bool {
        self.dooming(epoch, offset)
            .all(|f| matches!(f.kind, Kind::Trim(_)))
    }

    /// The lowest cut among the fences that doom a record at `offset`
    /// stamped with `epoch`: the doomed records start two above it.
    pub(crate) fn lowest_dooming_cut(&self, epoch: u64, offset: u64) -> Option<u64> {
        self.dooming(epoch, offset)
            .filter_map(|f| f.kind.cut())
            .min()
    }

    /// Whether a fence newer than `epoch` may have deleted the record at
    /// `offset`, or may yet: a truncate that cut below it, a trim that
    /// starts above it, a claim not yet described. A repair deletes only
    /// doomed records, and a void fence nothing.
    pub(crate) fn may_delete(&self, epoch: u64, offset: u64) -> bool {
        self.list.iter().any(|f| {
            f.seq > epoch
                && f.state != State::Void
                && match f.kind {
                    Kind::Truncate(after) => after < offset,
                    Kind::Trim(before) => offset < before,
                    Kind::Claimed => true,
                    Kind::Repair(_) => false,
                }
        })
    }

    /// Whether a record at `offset` stamped with `epoch` is doomed.
    pub(crate) fn dooms(&self, epoch: u64, offset: u64) -> bool {
        self.dooming(epoch, offset).next().is_some()
    }
}

/// The first line of a claim's or lease's body.
const HOLDER_MAGIC: &str = "s3wal fence holder";

/// Who holds a fence, and by what lease: the body of its claim and of each
/// lease key, written by the machine that creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The lease it holds the fence by, in seconds.
    pub lease_secs: u64,
    /// The host name of its machine.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// It gave the fence up, its work unfinished (it failed, and has no
    /// request in flight): the fence may be taken over at once.
    pub released: bool,
}

impl Holder {
    /// The body of a claim or lease key.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let released = match self.released {
            true => "released\n",
            false => "",
        };
        format!(
            "{HOLDER_MAGIC}\nlease {}\nhost {}\npid {}\n{released}\
             see README, Many machines, one log\n",
            self.lease_secs, self.host, self.pid
        )
        .into_bytes()
    }

    /// Reads a claim's or lease's body; `None` for one written by an s3wal
    /// before leases, whose holder never signed its requests to expire.
    pub(crate) fn decode(body: &[u8]) -> Option<Holder> {
        let text = std::str::from_utf8(body).ok()?;
        let mut lines = text.lines();
        (lines.next()? == HOLDER_MAGIC).then_some(())?;
        let (mut lease, mut host, mut pid, mut released) = (None, None, None, false);
        for line in lines {
            match line.split_once(' ') {
                Some(("lease", n)) => lease = digits_only(n),
                Some(("host", name)) => host = Some(name.to_owned()),
                Some(("pid", n)) => pid = n.parse().ok(),
                _ => released |= line == "released",
            }
        }
        Some(Holder {
            lease_secs: lease.filter(|&n| n > 0)?,
            host: host?,
            pid: pid?,
            released,
        })
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {} (lease {} s)",
            self.host, self.pid, self.lease_secs
        )
    }
}

/// A time by the store's clock, in milliseconds since the Unix epoch, as a
/// person reads it: `2026-12-03T07:14:04Z`.
pub(crate) fn store_time_text(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(time) => time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{millis} ms"),
    }
}

/// The stamp an append writes into its record's metadata: its token, and
/// the epoch it was placed under.
pub(crate) fn stamp(token: &str, epoch: u64) -> String {
    format!("{token}-{epoch}")
}

/// The epoch of a record's stamp; `None` for a record written by the seed
/// or an s3wal before fences, which no fence dooms: it never took part.
pub(crate) fn epoch_of(stamp: &str) -> Option<u64> {
    stamp.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_refused_when_its_fence_keys_would_pass_1024_bytes() {
        let longest = Prefix::new(&"p".repeat(954)).unwrap();
        let fence = key(&longest, 1, Kind::Truncate(u64::MAX));
        let marker = marker(&fence, State::Done);
        assert_eq!(marker.len(), 1024);
        let error = Prefix::new(&"p".repeat(955)).unwrap_err();
        assert!(error.contains("955 bytes"), "{error}");
        assert!(error.contains("at most 954 bytes"), "{error}");
    }

    fn wal() -> Prefix {
        Prefix::new("wal").unwrap()
    }

    fn fences(keys: &[String]) -> Fences {
        Fences::from_keys(&wal(), keys.iter().map(String::as_str))
    }

    #[test]
    fn fence_keys_list_newest_first_and_sort_before_records() {
        let (one, two) = (
            key(&wal(), 1, Kind::Truncate(5)),
            key(&wal(), 2, Kind::Trim(3)),
        );
        assert!(two < one, "{two} {one}");
        assert!(marker(&two, State::Done) < one);
        assert!(one < wal().key(1));
        assert_eq!(wal().offset_of(&one), None);
        assert!(wal().is_own(&one));
    }

    #[test]
    fn a_claim_not_yet_described_counts_as_a_truncate_after_0() {
        let list = fences(&[claim_key(&wal(), 1)]);
        assert_eq!(list.newest().map(|f| f.kind), Some(Kind::Claimed));
        assert!(list.running_truncate().is_some());
        assert!(list.dooms(0, 2));
        assert_eq!(list.epoch(), 0);
        let claim = claim_key(&wal(), 1);
        let base = claim.rsplit('/').next().unwrap();
        assert!(base.parse::<u64>().is_err(), "{base}");
    }

    #[test]
    fn a_described_claim_takes_its_kind_and_marker() {
        let described = key(&wal(), 1, Kind::Trim(3));
        let list = fences(&[
            claim_key(&wal(), 1),
            described.clone(),
            marker(&described, State::Done),
        ]);
        let newest = list.newest().unwrap();
        assert_eq!((newest.kind, newest.state), (Kind::Trim(3), State::Done));
        assert!(claim_key(&wal(), 1) < described);
    }

    #[test]
    fn the_longest_fence_key_is_counted() {
        let key = marker(&key(&wal(), 1, Kind::Truncate(u64::MAX)), State::Done);
        assert_eq!(
            key.len(),
            "wal".len() + crate::log::keys::LONGEST_FENCE_NAME
        );
    }

    #[test]
    fn markers_settle_their_fence() {
        let running = key(&wal(), 3, Kind::Truncate(1));
        let done = key(&wal(), 2, Kind::Trim(4));
        let void = key(&wal(), 1, Kind::Truncate(0));
        let list = fences(&[
            running.clone(),
            done.clone(),
            marker(&done, State::Done),
            void.clone(),
            marker(&void, State::Void),
        ]);
        let states: Vec<State> = list.list.iter().map(|f| f.state).collect();
        assert_eq!(states, [State::Running, State::Done, State::Void]);
        assert_eq!(list.next_seq(), 4);
        assert_eq!(list.running_truncate().map(|f| f.seq), Some(3));
    }

    #[test]
    fn a_running_truncate_is_not_an_epoch_but_other_fences_are() {
        let truncate = key(&wal(), 2, Kind::Truncate(1));
        assert_eq!(fences(std::slice::from_ref(&truncate)).epoch(), 1);
        assert_eq!(
            fences(&[truncate.clone(), marker(&truncate, State::Done)]).epoch(),
            2
        );
        assert_eq!(fences(&[key(&wal(), 2, Kind::Repair(4))]).epoch(), 2);
        assert_eq!(Fences::default().epoch(), 0);
    }

    #[test]
    fn a_record_more_than_one_above_a_newer_cut_is_doomed() {
        let list = fences(&[key(&wal(), 2, Kind::Truncate(5))]);
        assert!(list.dooms(1, 7));
        assert!(!list.dooms(1, 6), "right above the cut: no hole below it");
        assert!(!list.dooms(2, 7), "placed knowing the fence");
        assert!(!list.dooms(1, 3));
    }

    #[test]
    fn void_fences_and_repairs_doom_nothing() {
        let void = key(&wal(), 3, Kind::Truncate(0));
        let list = fences(&[
            void.clone(),
            marker(&void, State::Void),
            key(&wal(), 1, Kind::Repair(2)),
        ]);
        assert!(!list.dooms(0, 100));
    }

    #[test]
    fn a_record_below_a_newer_trim_is_doomed_if_it_is_still_there() {
        let list = fences(&[key(&wal(), 2, Kind::Trim(9))]);
        assert!(list.dooms(1, 8));
        assert!(list.only_trims_doom(1, 8));
        assert!(!list.dooms(1, 9));
        assert!(!list.dooms(2, 8), "placed knowing the trim");
    }

    #[test]
    fn unknown_keys_in_the_fence_folder_are_skipped() {
        let list = Fences::from_keys(
            &wal(),
            ["wal/.s3wal/fence/x", "wal/.s3wal/fence/f1-truncate-2"],
        );
        assert_eq!(list, Fences::default());
    }

    #[test]
    fn leases_count_up_and_the_newest_key_is_the_last_sign_of_life() {
        let claim = claim_key(&wal(), 4);
        let described = key(&wal(), 4, Kind::Truncate(2));
        let list = Fences::from_listing(
            &wal(),
            [
                (claim.as_str(), Some(1_000)),
                (lease_key(&wal(), 4, 1).as_str(), Some(9_000)),
                (lease_key(&wal(), 4, 2).as_str(), Some(12_000)),
                (described.as_str(), Some(2_000)),
            ],
        );
        let fence = list.newest().unwrap();
        assert_eq!(
            (fence.kind, fence.state),
            (Kind::Truncate(2), State::Running)
        );
        assert_eq!((fence.lease, fence.alive), (2, Some(12_000)));
        assert_eq!(fence.lease_key(&wal()), lease_key(&wal(), 4, 2));
        assert_eq!(lease_key(&wal(), 4, 0), claim);
        assert_eq!(wal().offset_of(&lease_key(&wal(), 4, 7)), None);
    }

    #[test]
    fn a_fence_may_be_taken_over_a_lease_and_a_margin_after_its_last_sign_of_life() {
        let holder = Holder {
            lease_secs: 30,
            host: "ci-runner-7".into(),
            pid: 4242,
            released: false,
        };
        let list = Fences::from_listing(&wal(), [(claim_key(&wal(), 1).as_str(), Some(5_000))]);
        let fence = list.newest().unwrap();
        assert_eq!(
            fence.takeover_at(&holder),
            Some(5_000 + 30_000 + TAKEOVER_MARGIN_MS)
        );
        let untimed = fences(&[claim_key(&wal(), 1)]);
        assert_eq!(untimed.newest().unwrap().takeover_at(&holder), None);
        let released = Holder {
            released: true,
            ..holder
        };
        assert_eq!(fence.takeover_at(&released), Some(5_000), "at once");
    }

    #[test]
    fn a_holder_reads_back_what_it_wrote_and_an_old_body_names_none() {
        let holder = Holder {
            lease_secs: 30,
            host: "host with spaces".into(),
            pid: 7,
            released: false,
        };
        assert_eq!(Holder::decode(&holder.encode()), Some(holder.clone()));
        let released = Holder {
            released: true,
            ..holder
        };
        assert_eq!(Holder::decode(&released.encode()), Some(released));
        assert_eq!(
            Holder::decode(b"s3wal fence: see README, Many machines, one log\n"),
            None
        );
        assert_eq!(
            Holder::decode(b"s3wal fence holder\nlease 0\nhost h\npid 1\n"),
            None
        );
    }

    #[test]
    fn a_settled_fence_shows_no_more_life_from_its_marker() {
        let described = key(&wal(), 1, Kind::Trim(3));
        let done = marker(&described, State::Done);
        let list = Fences::from_listing(
            &wal(),
            [
                (described.as_str(), Some(1_000)),
                (done.as_str(), Some(50_000)),
            ],
        );
        assert_eq!(list.newest().unwrap().alive, Some(1_000));
    }

    #[test]
    fn a_stamp_carries_its_epoch_and_old_tokens_none() {
        assert_eq!(epoch_of(&stamp("00ff", 12)), Some(12));
        assert_eq!(epoch_of("0123456789abcdef0123456789abcdef"), None);
    }
}
