//! The one interface between the log and the object store.
//!
//! The log needs five things from a store and nothing more: create an
//! object only if it is absent, read one, read one's metadata, list keys in
//! order after a key, and delete a batch. Keeping the interface this narrow keeps the log
//! logic in `wal.rs` free of HTTP and S3 details.

use crate::error::Result;
use crate::s3::{Client, ListPage, ObjectHead, PageRequest, PutOutcome};

/// What the log needs from an object store.
pub trait Store {
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
    /// Deletes 1 to [`crate::s3::MAX_KEYS_PER_DELETE`] keys; missing keys
    /// count as deleted.
    fn delete(&self, keys: &[String]) -> Result<()>;

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
}

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

impl Store for Client {
    fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        Client::put_if_absent(self, key, body, token)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_object(key)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        self.head_object(key)
    }

    fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        Client::list_page(self, page)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        self.delete_objects(keys)
    }
}
