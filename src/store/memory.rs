//! A [`Store`] in memory, for the fast and exhaustive tests of the log's
//! logic and for library users who want a log without a server.
//!
//! It keeps S3's semantics where the log depends on them: a conditional
//! create is atomic, listings are in UTF-8 byte order with `start-after`
//! and continuation, deleting a missing key succeeds, and a request
//! signed to expire is refused once its deadline passed by the store's
//! clock, when it arrives (as Ceph RGW and SeaweedFS do; a setting makes it
//! ignore expiry, as moto does). The clock is the system's, or one the
//! tests move by hand. It is never a
//! stand-in for the real servers: the integration tests prove every
//! behaviour on s3s-fs, Ceph RGW and SeaweedFS too.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome};

/// One object: its body and the append token it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    body: Vec<u8>,
    token: String,
    /// When it was written, in milliseconds by the store's clock.
    modified: i64,
}

/// An object store held in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
    /// The clock moved by hand, in milliseconds; 0: the system's clock.
    manual_clock: AtomicI64,
    /// Accepts requests signed to have expired, as moto does.
    ignores_expiry: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store whose clock stands at `millis` since the Unix epoch
    /// until [`MemoryStore::advance`] moves it.
    pub fn with_clock(millis: i64) -> MemoryStore {
        let store = MemoryStore::default();
        store.manual_clock.store(millis.max(1), Ordering::SeqCst);
        store
    }

    /// Moves a hand-moved clock `millis` forward.
    pub fn advance(&self, millis: i64) {
        self.manual_clock.fetch_add(millis, Ordering::SeqCst);
    }

    /// Makes the store accept requests that expired, as moto does.
    pub fn ignore_expiry(&self, ignore: bool) {
        self.ignores_expiry.store(ignore, Ordering::SeqCst);
    }

    /// The store's time, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self.manual_clock.load(Ordering::SeqCst) {
            0 => jiff::Timestamp::now().as_millisecond(),
            millis => millis,
        }
    }

    /// Refuses a request with `deadline` that arrives after it, as a
    /// store that checks presigned expiry does.
    fn check_expiry(&self, request: &str, key: &str, deadline: Option<Deadline>) -> Result<()> {
        let expired = deadline.is_some_and(|d| self.now_ms() >= d.end().saturating_mul(1000));
        match expired && !self.ignores_expiry.load(Ordering::SeqCst) {
            true => Err(Error::S3 {
                request: format!("{request} {key}"),
                status: 403,
                permission: None,
                code: Some("AccessDenied".into()),
                message: Some("Request has expired".into()),
                request_id: None,
                may_have_acted: false,
            }),
            false => Ok(()),
        }
    }

    /// Every key, in order.
    pub fn object_keys(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }

    /// Writes `body` at `key` whatever is there, as another tool would.
    pub fn put(&self, key: &str, body: &[u8]) {
        let object = Object {
            body: body.to_vec(),
            token: String::new(),
            modified: self.now_ms(),
        };
        self.objects().insert(key.to_owned(), object);
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A panic while holding the lock leaves the map whole: every
        // change below is a single insert or remove.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(PutOutcome::Exists { retried: false });
        }
        let object = Object {
            body: body.to_vec(),
            token: token.to_owned(),
            modified: self.now_ms(),
        };
        objects.insert(key.to_owned(), object);
        Ok(PutOutcome::Created)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.objects().get(key).map(|object| object.body.clone()))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        Ok(self.objects().get(key).map(|object| ObjectHead {
            token: (!object.token.is_empty()).then(|| object.token.clone()),
        }))
    }

    /// A page of at most `max_keys` keys; its continuation token is the
    /// last key it holds, as good as any opaque token.
    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        let after = page.continuation.or(page.start_after).unwrap_or("");
        let objects = self.objects();
        let mut keys = objects
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(key, _)| key.starts_with(page.prefix));
        let listed: Vec<(&String, &Object)> = keys.by_ref().take(page.max_keys.max(1)).collect();
        let continuation = match keys.next() {
            Some(_) => listed.last().map(|(key, _)| (*key).clone()),
            None => None,
        };
        Ok(ListPage {
            keys: listed.iter().map(|(key, _)| (*key).clone()).collect(),
            modified: listed
                .iter()
                .map(|(_, object)| Some(object.modified))
                .collect(),
            continuation,
        })
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        let mut objects = self.objects();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        self.put(key, body);
        Ok(())
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        self.check_expiry("DeleteObject", key, deadline)?;
        self.objects().remove(key);
        Ok(())
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        self.check_expiry("PutObject", key, Some(deadline))?;
        self.put(key, body);
        Ok(())
    }

    fn store_time(&self) -> Option<i64> {
        Some(self.now_ms().div_euclid(1000))
    }

    fn identity(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(prefix: &'a str, start_after: Option<&'a str>, max_keys: usize) -> PageRequest<'a> {
        PageRequest {
            prefix,
            start_after,
            continuation: None,
            max_keys,
        }
    }

    #[test]
    fn conditional_create_refuses_a_taken_key() {
        let store = MemoryStore::new();
        assert_eq!(
            store.put_if_absent("k", b"a", "t1").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_if_absent("k", b"b", "t2").unwrap(),
            PutOutcome::Exists { retried: false }
        );
        assert_eq!(store.get("k").unwrap().unwrap(), b"a");
        assert_eq!(
            store.head("k").unwrap().unwrap().token.as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn listing_is_in_byte_order_after_start_after_under_the_prefix() {
        let store = MemoryStore::new();
        for key in ["w/2", "w/1", "w/3", "x/1", "v/9"] {
            store.put(key, b"");
        }
        let listed = store.list_page(&page("w/", Some("w/1"), 10)).unwrap();
        assert_eq!(listed.keys, ["w/2", "w/3"]);
        assert_eq!(listed.continuation, None);
    }

    #[test]
    fn long_listing_continues_where_its_page_ended() {
        let store = MemoryStore::new();
        for n in 0..5 {
            store.put(&format!("w/{n}"), b"");
        }
        let first = store.list_page(&page("w/", None, 2)).unwrap();
        assert_eq!(first.keys, ["w/0", "w/1"]);
        let next = PageRequest {
            continuation: first.continuation.as_deref(),
            ..page("w/", None, 2)
        };
        assert_eq!(store.list_page(&next).unwrap().keys, ["w/2", "w/3"]);
    }

    #[test]
    fn a_request_that_arrives_past_its_deadline_is_refused_and_changes_nothing() {
        let store = MemoryStore::with_clock(10_000);
        store.put("k", b"a");
        let deadline = Deadline {
            signed_at: 5,
            expires: 3,
        };
        store.delete_key("k", Some(deadline)).unwrap_err();
        store.overwrite_until("k", b"b", deadline).unwrap_err();
        assert_eq!(store.get("k").unwrap().unwrap(), b"a");
        store.ignore_expiry(true);
        store.delete_key("k", Some(deadline)).unwrap();
        assert!(store.object_keys().is_empty());
    }

    #[test]
    fn a_listing_gives_each_key_the_time_it_was_written() {
        let store = MemoryStore::with_clock(5_000);
        store.put("w/1", b"");
        store.advance(2_500);
        store.put("w/2", b"");
        let listed = store.list_page(&page("w/", None, 10)).unwrap();
        assert_eq!(listed.modified, [Some(5_000), Some(7_500)]);
        assert_eq!(store.store_time(), Some(7));
    }

    #[test]
    fn deleting_missing_keys_succeeds() {
        let store = MemoryStore::new();
        store.put("a", b"");
        store.delete(&["a".into(), "b".into()]).unwrap();
        assert!(store.object_keys().is_empty());
    }
}
