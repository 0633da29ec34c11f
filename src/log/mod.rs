//! The log itself: the record format, the append protocol, fences, the tail
//! search and the operations built on them. Decisions are pure state
//! machines (`append`, `tail`, `fence`, `store_hint`); `wal` drives them
//! against a [`crate::store::Store`], which is all it knows of S3.

pub(crate) mod append;
pub(crate) mod fence;
pub(crate) mod keys;
pub mod range;
pub mod record;
pub(crate) mod store_hint;
pub(crate) mod tail;
pub(crate) mod verify;
pub(crate) mod wal;

#[cfg(test)]
mod faults;
#[cfg(test)]
mod schedules;
#[cfg(test)]
mod testing;
