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
