//! Bodies damaged on the wire, told apart from bodies damaged at rest.
//!
//! Uploads carry `Content-MD5`: the store refuses a body that does not
//! match (`BadDigest`) instead of storing it, and the PUT is sent again.
//! `x-amz-checksum-sha256` is not sent as well: Ceph RGW ignores it, some
//! S3-compatible stores refuse requests that carry it, and MD5 is all it
//! takes to catch damage in transit (the record's own SHA-256 guards it at
//! rest). Every S3-compatible store checks `Content-MD5`.
//!
//! Downloads are checked against the ETag: for an object written in one
//! PUT, not encrypted with KMS or a customer key, the ETag is the hex MD5
//! of the stored bytes. A body whose MD5 differs was damaged on the way
//! and is fetched again; only a body that matches its ETag (or whose ETag
//! is no MD5) and still fails the record's checks is corrupt in the store.
//!
//! A download's MD5 costs no pass over a big body of its own: it is
//! computed as the bytes arrive ([`Md5Reader`]).

use std::io::{self, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};

/// The `Content-MD5` header value of `body`: its MD5, in base64.
pub(crate) fn content_md5(body: &[u8]) -> String {
    BASE64.encode(Md5::digest(body))
}

/// A reader that computes the MD5 of what it reads, if asked to.
pub(crate) struct Md5Reader<R> {
    inner: R,
    md5: Option<Md5>,
}

impl<R: Read> Md5Reader<R> {
    pub(crate) fn new(inner: R, hash: bool) -> Md5Reader<R> {
        Md5Reader {
            inner,
            md5: hash.then(Md5::new),
        }
    }

    /// The MD5 of everything read, if asked for.
    pub(crate) fn md5(self) -> Option<[u8; 16]> {
        self.md5.map(|md5| md5.finalize().into())
    }
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(md5) = &mut self.md5 {
            md5.update(&buf[..read]);
        }
        Ok(read)
    }
}

/// The MD5 of the stored bytes, when the answer's headers state one: a
/// quoted 32-digit hex ETag (not a multipart `"…-N"` one) on an object not
/// encrypted with KMS (`x-amz-server-side-encryption: aws:kms…`) or with a
/// customer key (`customer_key`), whose ETags are no MD5.
pub(crate) fn stated_md5(
    etag: Option<&str>,
    encryption: Option<&str>,
    customer_key: bool,
) -> Option<[u8; 16]> {
    if customer_key || encryption.is_some_and(|e| e.starts_with("aws:kms")) {
        return None;
    }
    let hex_digits = etag?.strip_prefix('"')?.strip_suffix('"')?;
    let mut md5 = [0; 16];
    hex::decode_to_slice(hex_digits, &mut md5).ok()?;
    Some(md5)
}

/// How a body differs from what the store sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// Shorter or longer than its `Content-Length`.
    Length {
        /// The bytes that arrived.
        arrived: u64,
        /// The bytes announced.
        announced: u64,
    },
    /// Another MD5 than its ETag states.
    Md5 {
        /// The MD5 of the bytes that arrived.
        arrived: [u8; 16],
        /// The MD5 the ETag states.
        stated: [u8; 16],
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Length { arrived, announced } => {
                write!(f, "{arrived} bytes arrived of the {announced} announced")
            }
            Damage::Md5 { arrived, stated } => write!(
                f,
                "its MD5 {} differs from the ETag {}",
                hex::encode(arrived),
                hex::encode(stated)
            ),
        }
    }
}

impl std::error::Error for Damage {}

/// Why a body is not what the store sent, if it is not: `arrived` bytes,
/// shorter or longer than its `Content-Length`, or whose MD5 (`arrived_md5`,
/// computed as they arrived) differs from the one its ETag states.
pub(crate) fn transit_damage(
    arrived: u64,
    arrived_md5: Option<[u8; 16]>,
    content_length: Option<u64>,
    stated_md5: Option<[u8; 16]>,
) -> Option<Damage> {
    if let Some(announced) = content_length.filter(|&n| n != arrived) {
        return Some(Damage::Length { arrived, announced });
    }
    let (arrived, stated) = (arrived_md5?, stated_md5?);
    (arrived != stated).then_some(Damage::Md5 { arrived, stated })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_MD5: &str = "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"";

    fn md5_of(etag: &str) -> Option<[u8; 16]> {
        stated_md5(Some(etag), None, false)
    }

    /// Why `body` is not what the store sent with `content_length` and
    /// the MD5 `stated`, when it arrives three bytes at a time.
    fn arrive(
        body: &[u8],
        content_length: Option<u64>,
        stated: Option<[u8; 16]>,
    ) -> Option<Damage> {
        let mut reader = Md5Reader::new(body, true);
        let (mut arrived, mut chunk) = (Vec::new(), [0; 3]);
        loop {
            match reader.read(&mut chunk).unwrap() {
                0 => break,
                n => arrived.extend_from_slice(&chunk[..n]),
            }
        }
        assert_eq!(arrived, body);
        let md5 = reader.md5();
        assert!(md5.is_some());
        transit_damage(arrived.len() as u64, md5, content_length, stated)
    }

    #[test]
    fn content_md5_is_the_base64_of_the_digest() {
        assert_eq!(content_md5(b"hello world"), "XrY7u+Ae7tCTyyK7j1rNww==");
    }

    #[test]
    fn a_single_part_etag_states_the_md5() {
        assert!(md5_of(HELLO_MD5).is_some());
    }

    #[test]
    fn multipart_weak_and_unquoted_etags_state_nothing() {
        for etag in [
            "\"5eb63bbbe01eeed093cb22bb8f5acdc3-2\"",
            "W/\"5eb63bbbe01eeed093cb22bb8f5acdc3\"",
            "5eb63bbbe01eeed093cb22bb8f5acdc3",
            "\"xyz\"",
        ] {
            assert_eq!(md5_of(etag), None, "{etag}");
        }
    }

    #[test]
    fn kms_and_customer_key_etags_state_nothing() {
        assert_eq!(stated_md5(Some(HELLO_MD5), Some("aws:kms"), false), None);
        assert_eq!(stated_md5(Some(HELLO_MD5), None, true), None);
        assert!(stated_md5(Some(HELLO_MD5), Some("AES256"), false).is_some());
    }

    #[test]
    fn a_body_that_matches_its_etag_is_intact() {
        assert_eq!(arrive(b"hello world", Some(11), md5_of(HELLO_MD5)), None);
    }

    #[test]
    fn body_damaged_in_transit_differs_from_its_etag() {
        let damage = arrive(b"hello worle", Some(11), md5_of(HELLO_MD5));
        assert!(matches!(damage, Some(Damage::Md5 { .. })), "{damage:?}");
    }

    #[test]
    fn a_body_of_another_length_than_announced_is_damaged() {
        let damage = arrive(b"hello", Some(11), None).unwrap();
        assert_eq!(damage.to_string(), "5 bytes arrived of the 11 announced");
    }

    #[test]
    fn without_a_stated_md5_nothing_can_be_told() {
        assert_eq!(arrive(b"anything", None, None), None);
        assert_eq!(transit_damage(8, None, Some(8), md5_of(HELLO_MD5)), None);
        let mut unhashed = Md5Reader::new(&b"anything"[..], false);
        assert_eq!(unhashed.read_to_end(&mut Vec::new()).unwrap(), 8);
        assert_eq!(unhashed.md5(), None);
    }
}
