//! A [`Store`] in memory, for the fast and exhaustive tests of the log's
//! logic and for library users who want a log without a server.
//!
//! It keeps S3's semantics where the log depends on them: a conditional
//! create is atomic, listings are in UTF-8 byte order with `start-after`
//! and continuation, and deleting a missing key succeeds. It is never a
//! stand-in for the real servers: the integration tests prove every
//! behaviour on s3s-fs, Ceph RGW and SeaweedFS too.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::Result;
use crate::s3::{ListPage, ObjectHead, PageRequest, PutOutcome};
use crate::store::Store;

/// One object: its body and the append token it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    body: Vec<u8>,
    token: String,
}

/// An object store held in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
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
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(page.prefix));
        let page_keys: Vec<String> = keys.by_ref().take(page.max_keys.max(1)).cloned().collect();
        let continuation = match keys.next() {
            Some(_) => page_keys.last().cloned(),
            None => None,
        };
        Ok(ListPage {
            keys: page_keys,
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
    fn deleting_missing_keys_succeeds() {
        let store = MemoryStore::new();
        store.put("a", b"");
        store.delete(&["a".into(), "b".into()]).unwrap();
        assert!(store.object_keys().is_empty());
    }
}
