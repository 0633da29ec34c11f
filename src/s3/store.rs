//! The S3 client as the log's store: each operation of the boundary is
//! one S3 action.

use super::Client;
use crate::error::Result;
use crate::store::{Deadline, ListPage, ObjectHead, PageRequest, PutOutcome, Store};

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

    fn overwrite(&self, key: &str, body: &[u8]) -> Result<()> {
        self.put_object(key, body)
    }

    fn delete_key(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        self.delete_object(key, deadline)
    }

    fn overwrite_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        self.put_object_until(key, body, deadline)
    }

    fn store_time(&self) -> Option<i64> {
        Client::store_time(self)
    }

    fn identity(&self) -> String {
        self.identity()
    }
}
