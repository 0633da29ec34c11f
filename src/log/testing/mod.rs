//! What the log's own tests share: the one fault-injecting store, and the
//! one audit of the log's invariants, which the integration tests' races
//! use too. The audit lives with them (`tests/integration/common/`) and
//! is included here by its path: it needs nothing but std, and the
//! library ships no test code to be reachable from both crates.

pub(crate) mod fault_store;

#[path = "../../../tests/integration/common/audit.rs"]
pub(crate) mod audit;
