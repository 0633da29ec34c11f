//! The one interface between the log and the object store.
//!
//! The log needs few things from a store and nothing more: create an
//! object only if it is absent, read one, read one's metadata, list keys in
//! order after a key, delete, and the store's clock, with deletes and
//! writes the store refuses past a deadline by that clock (the leases of
//! fences). Keeping the interface this narrow keeps the log logic in
//! `src/log/` free of HTTP and S3 details: the S3 client implements it from
//! its side (`src/s3/store.rs`), and the tests use [`memory::MemoryStore`].

pub mod memory;

use crate::error::{Error, ProtocolKind, Result};

/// What a conditional PUT decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds our body.
    Created,
    /// 412: an object already exists at the key; this PUT did not write it.
    Exists {
        /// The PUT was sent more than once (an answer was lost, or a body
        /// was damaged on the way), so the object may be our own earlier
        /// try: its token tells. Deciding that is the append protocol's
        /// job (`append.rs`); this only reports the fact.
        retried: bool,
    },
    /// 409 `ConditionalRequestConflict` or `OperationAborted`: a
    /// conflicting operation was in flight; nothing was decided, so the
    /// same key may be tried again.
    Conflict,
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// The append token the object was written with, if s3wal wrote it.
    pub token: Option<String>,
}

/// Which page of a listing to ask for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Only keys strictly after this one, in UTF-8 byte order.
    pub start_after: Option<&'a str>,
    /// The token of the previous page, to continue a listing.
    pub continuation: Option<&'a str>,
    /// At most this many keys (S3 caps it at 1000).
    pub max_keys: usize,
}

/// One page of a listing, in S3's UTF-8 byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The keys of this page.
    pub keys: Vec<String>,
    /// When each key's object was last written, in milliseconds since the
    /// Unix epoch by the store's clock, where the listing said.
    pub modified: Vec<Option<i64>>,
    /// The token for the next page, if the listing goes on.
    pub continuation: Option<String>,
}

/// When a fenced request stops being valid, by the store's own clock: it
/// is presigned as if signed at `signed_at` (a time the store gave, in
/// seconds since the Unix epoch) to expire `expires` seconds later. The
/// store refuses it once that moment passed, whatever the local clock says
/// and however long the sender was paused ("Many machines, one log").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The signing time, read from the store.
    pub signed_at: i64,
    /// Seconds from `signed_at` to the end, at least 1.
    pub expires: u64,
}

impl Deadline {
    /// The moment it ends, in seconds by the store's clock.
    pub fn end(&self) -> i64 {
        self.signed_at
            .saturating_add(i64::try_from(self.expires).unwrap_or(i64::MAX))
    }
}

/// The most keys S3 accepts in one DeleteObjects request.
pub const MAX_KEYS_PER_DELETE: usize = 1000;

/// What the log needs from an object store. `Sync`, because ranges are
/// read and fenced keys deleted several requests at a time.
pub trait Store: Sync {
    /// Writes `body` at `key`, tagged with the append's `token`, unless an
    /// object is already there. The body is borrowed: a large record is
    /// not copied on its way out.
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome>;
    /// The body at `key`, or `None` if there is no object.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// What is known of the object at `key` without reading it, or `None`
    /// if there is none.
    fn head(&self, key: &str) -> Result<Option<ObjectHead>>;
    /// One page of keys in UTF-8 byte order.
    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage>;
    /// Deletes 1 to [`MAX_KEYS_PER_DELETE`] keys; missing keys
    /// count as deleted.
    fn delete(&self, keys: &[String]) -> Result<()>;
    /// Writes `body` at `key`, replacing what is there: only for s3wal's
    /// own objects beside the log (the tail hint), never for a record.
    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()>;
    /// Deletes one key in a request without a body; with a `deadline`, a
    /// request the store refuses once it has passed by the store's clock.
    /// A missing key counts as deleted.
    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()>;
    /// Writes `body` at `key` like [`Store::overwrite`], in a request the
    /// store refuses once `deadline` has passed by its clock.
    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()>;
    /// The store's time in seconds since the Unix epoch, from the `Date`
    /// of its latest answer; `None` before any, or if it sends none.
    fn store_time(&self) -> Option<i64>;
    /// Which store this is, for remembering what the store probe found:
    /// the same log reached at another store must be probed again.
    fn identity(&self) -> String;

    /// Every key under `prefix` after `start_after`, in order, fetched a
    /// page of `page_size` at a time as the iterator is consumed: a caller
    /// that stops early asks for no page it does not need.
    fn keys<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        page_size: usize,
    ) -> Keys<'a, Self>
    where
        Self: Sized,
    {
        Keys {
            store: self,
            prefix,
            start_after,
            page_size,
            page: Vec::new().into_iter(),
            continuation: None,
            done: false,
            empty_pages: 0,
        }
    }
}

/// The keys of a listing, page by page: see [`Store::keys`].
#[derive(Debug)]
pub struct Keys<'a, S> {
    store: &'a S,
    prefix: &'a str,
    start_after: Option<&'a str>,
    page_size: usize,
    page: std::vec::IntoIter<String>,
    continuation: Option<String>,
    done: bool,
    /// Truncated pages in a row that held no key.
    empty_pages: u32,
}

/// Truncated pages without a key that a listing accepts in a row. S3 may
/// return a few (keys deleted under it); a store that keeps doing so would
/// keep a listing going for ever.
const MAX_EMPTY_PAGES: u32 = 100;

impl<S: Store> Iterator for Keys<'_, S> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            let page = self.store.list_page(&PageRequest {
                prefix: self.prefix,
                start_after: self.start_after,
                continuation: self.continuation.as_deref(),
                max_keys: self.page_size,
            });
            match page {
                Ok(page) => {
                    self.empty_pages = match page.keys.is_empty() {
                        true => self.empty_pages + 1,
                        false => 0,
                    };
                    if self.empty_pages > MAX_EMPTY_PAGES && page.continuation.is_some() {
                        self.done = true;
                        return Some(Err(Error::Protocol {
                            request: format!("ListObjectsV2 {}", self.prefix),
                            host: None,
                            kind: ProtocolKind::EndlessListing {
                                empty_pages: self.empty_pages,
                            },
                            source: None,
                        }));
                    }
                    self.done = page.continuation.is_none();
                    self.continuation = page.continuation;
                    self.page = page.keys.into_iter();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// A store borrowed: several logs (machines, in the tests) over one.
impl<S: Store> Store for &S {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        (**self).put_if_absent(key, body, token)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        (**self).head(key)
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        (**self).list_page(page)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        (**self).delete(keys)
    }

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        (**self).overwrite(key, body)
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        (**self).delete_key(key, deadline)
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        (**self).overwrite_until(key, body, deadline)
    }

    fn store_time(&self) -> Option<i64> {
        (**self).store_time()
    }

    fn identity(&self) -> String {
        (**self).identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    /// A store whose listing never ends: every page is empty and points to
    /// a fresh page.
    struct Endless;

    impl Store for Endless {
        fn put_if_absent(&self, _: &str, _: &[u8], _: &str) -> Result<PutOutcome> {
            unreachable!()
        }
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>> {
            unreachable!()
        }
        fn head(&self, _: &str) -> Result<Option<ObjectHead>> {
            unreachable!()
        }
        fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
            let next = page
                .continuation
                .map_or(0, |t| t.parse::<u64>().unwrap() + 1);
            Ok(ListPage {
                keys: Vec::new(),
                modified: Vec::new(),
                continuation: Some(next.to_string()),
            })
        }
        fn delete_key(&self, _: &str, _: Option<Deadline>) -> Result<()> {
            unreachable!()
        }
        fn overwrite_until(&self, _: &str, _: &[u8], _: Deadline) -> Result<()> {
            unreachable!()
        }
        fn store_time(&self) -> Option<i64> {
            None
        }
        fn delete(&self, _: &[String]) -> Result<()> {
            unreachable!()
        }
        fn overwrite(&self, _: &str, _: &[u8]) -> Result<()> {
            unreachable!()
        }
        fn identity(&self) -> String {
            "endless".into()
        }
    }

    #[test]
    fn keys_come_page_by_page_in_order() {
        let store = MemoryStore::new();
        for n in 0..25 {
            store.put(&format!("w/{n:02}"), b"");
        }
        let keys: Vec<String> = store
            .keys("w/", Some("w/04"), 10)
            .map(Result::unwrap)
            .collect();
        assert_eq!(keys.len(), 20);
        assert_eq!((keys[0].as_str(), keys[19].as_str()), ("w/05", "w/24"));
    }

    #[test]
    fn a_listing_of_endless_empty_pages_is_a_protocol_error() {
        let mut keys = Endless.keys("w/", None, 1000);
        let error = keys.next().unwrap().unwrap_err();
        assert!(error.to_string().contains("never end"), "{error}");
        assert!(keys.next().is_none());
    }
}
