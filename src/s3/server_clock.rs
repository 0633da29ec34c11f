//! The store's clock, read from the `Date` header of a cheap request.
//!
//! SigV4 signatures carry the signing time; S3 refuses requests more than
//! 15 minutes off, so a wrong local clock shows up as a puzzling 403.

use super::{Client, PageRequest};
use crate::error::Result;

/// The time in an HTTP `Date` header (`Tue, 24 Nov 2026 01:28:06 GMT`).
pub(crate) fn parse_http_date(date: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::rfc2822::parse(date)
        .ok()
        .map(|zoned| zoned.timestamp())
}

impl Client {
    /// The store's time, from the `Date` of a one-key listing of `prefix`.
    /// Fails like the listing does (bad credentials, missing bucket).
    pub fn server_time(&self, prefix: &str) -> Result<Option<jiff::Timestamp>> {
        let request = self.signer.list_objects(&PageRequest {
            prefix,
            start_after: None,
            continuation: None,
            max_keys: 1,
        });
        let response = self.send(&request)?;
        if response.status != 200 {
            return Err(response.into_error(&request));
        }
        Ok(response.date.as_deref().and_then(parse_http_date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_parses_to_a_timestamp() {
        let time = parse_http_date("Tue, 24 Nov 2026 01:28:06 GMT").unwrap();
        assert_eq!(time.to_string(), "2026-11-24T01:28:06Z");
    }

    #[test]
    fn garbage_date_is_none() {
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
