//! The on-object format, byte-compatible with the Go seed.
//!
//! A record at offset `N` lives at key `<prefix>/<N as 20 zero-padded digits>`
//! and its body is `[N as u64 big-endian][data][SHA-256(N_be8 ‖ data)]`.
//! Nothing here does I/O, so every rule of the format is unit-testable.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Bytes of the big-endian offset that starts every record.
const OFFSET_LEN: usize = 8;
/// Bytes of the SHA-256 checksum that ends every record.
const CHECKSUM_LEN: usize = 32;
/// The smallest valid record: an offset and a checksum around empty data.
pub const MIN_RECORD_LEN: usize = OFFSET_LEN + CHECKSUM_LEN;

/// Why a stored object is not a valid record for the offset it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// The body cannot hold an offset and a checksum.
    TooShort {
        /// The body's length in bytes.
        len: usize,
    },
    /// The body names another offset than its key.
    OffsetMismatch {
        /// The offset written inside the body.
        found: u64,
    },
    /// The checksum does not match the offset and data.
    ChecksumMismatch,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::TooShort { len } => write!(
                f,
                "too short: {len} bytes, a record has at least {MIN_RECORD_LEN}"
            ),
            Corruption::OffsetMismatch { found } => {
                write!(f, "offset mismatch: the body says offset {found}")
            }
            Corruption::ChecksumMismatch => f.write_str("checksum mismatch"),
        }
    }
}

fn checksum(offset_be: &[u8; OFFSET_LEN], data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(offset_be);
    hasher.update(data);
    hasher.finalize().into()
}

/// The object body of the record `data` at `offset`.
pub fn encode(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Body::new(data);
    body.at(offset);
    body.bytes
}

/// The most data one record can carry: S3's single-PUT limit (5 GiB)
/// less the 40 bytes of framing.
pub const MAX_DATA_LEN: u64 = 5 * 1024 * 1024 * 1024 - MIN_RECORD_LEN as u64;

/// A record's body, held once in memory.
///
/// An append whose offset was taken tries the next one with the same data:
/// [`Body::at`] rewrites the 8 offset bytes and the checksum in place
/// instead of framing the data again, so a 50 MB record costs 50 MB, not
/// 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// `[offset][data][checksum]`; the offset and checksum are only
    /// meaningful after [`Body::at`].
    bytes: Vec<u8>,
}

impl Body {
    /// A body for a copy of `data`.
    pub fn new(data: &[u8]) -> Body {
        let mut bytes = Vec::with_capacity(MIN_RECORD_LEN + data.len());
        bytes.extend_from_slice(&[0; OFFSET_LEN]);
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(&[0; CHECKSUM_LEN]);
        Body { bytes }
    }

    /// Reads `reader` to its end straight into a body, refusing data longer
    /// than `max` bytes as soon as it is seen, before it is read in full.
    /// `expected`, a size known in advance (a regular file's), is refused
    /// without reading anything when it is too large, and sizes the buffer
    /// once. `Ok(None)` means too large.
    pub fn read_from(
        reader: impl Read,
        expected: Option<u64>,
        max: u64,
    ) -> io::Result<Option<Body>> {
        if expected.is_some_and(|size| size > max) {
            return Ok(None);
        }
        let capacity = expected
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(0);
        let mut bytes = Vec::with_capacity(MIN_RECORD_LEN + capacity);
        bytes.extend_from_slice(&[0; OFFSET_LEN]);
        let read = reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
        if read as u64 > max {
            return Ok(None);
        }
        bytes.extend_from_slice(&[0; CHECKSUM_LEN]);
        Ok(Some(Body { bytes }))
    }

    /// The record's data.
    pub fn data(&self) -> &[u8] {
        &self.bytes[OFFSET_LEN..self.bytes.len() - CHECKSUM_LEN]
    }

    /// The body as the record at `offset`, framed in place.
    pub fn at(&mut self, offset: u64) -> &[u8] {
        let offset_be = offset.to_be_bytes();
        let end = self.bytes.len() - CHECKSUM_LEN;
        let sum = checksum(&offset_be, &self.bytes[OFFSET_LEN..end]);
        self.bytes[..OFFSET_LEN].copy_from_slice(&offset_be);
        self.bytes[end..].copy_from_slice(&sum);
        &self.bytes
    }
}

impl From<&[u8]> for Body {
    fn from(data: &[u8]) -> Body {
        Body::new(data)
    }
}

impl From<Vec<u8>> for Body {
    /// Frames `data` in its own allocation (the data moves up 8 bytes).
    fn from(mut data: Vec<u8>) -> Body {
        data.reserve_exact(MIN_RECORD_LEN);
        data.splice(0..0, [0; OFFSET_LEN]);
        data.extend_from_slice(&[0; CHECKSUM_LEN]);
        Body { bytes: data }
    }
}

/// Checks `body` as the record at `offset`, like [`decode`], and returns
/// its data in the same allocation: reading a big record holds it once.
pub fn decode_owned(offset: u64, mut body: Vec<u8>) -> Result<Vec<u8>, Corruption> {
    let len = decode(offset, &body)?.len();
    body.truncate(OFFSET_LEN + len);
    body.drain(..OFFSET_LEN);
    Ok(body)
}

/// The data of a body read at `offset`, after the seed's checks in the
/// seed's order: length, embedded offset, checksum.
pub fn decode(offset: u64, body: &[u8]) -> Result<&[u8], Corruption> {
    if body.len() < MIN_RECORD_LEN {
        return Err(Corruption::TooShort { len: body.len() });
    }
    let (offset_be, rest) = body.split_at(OFFSET_LEN);
    let (data, stored) = rest.split_at(rest.len() - CHECKSUM_LEN);
    let offset_be: [u8; OFFSET_LEN] = offset_be.try_into().expect("split at OFFSET_LEN");
    let found = u64::from_be_bytes(offset_be);
    if found != offset {
        return Err(Corruption::OffsetMismatch { found });
    }
    if checksum(&offset_be, data) != stored {
        return Err(Corruption::ChecksumMismatch);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_seed_layout() {
        let body = encode(1, b"Record #1");
        assert_eq!(&body[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&body[8..17], b"Record #1");
        let mut hasher = Sha256::new();
        hasher.update(&body[..17]);
        assert_eq!(&body[17..], hasher.finalize().as_slice());
    }

    #[test]
    fn body_framed_at_an_offset_is_the_encoded_record() {
        let mut body = Body::new(b"Record #1");
        assert_eq!(body.at(1), encode(1, b"Record #1"));
        assert_eq!(body.at(9), encode(9, b"Record #1"), "re-addressed in place");
        assert_eq!(body.data(), b"Record #1");
    }

    #[test]
    fn body_made_from_a_vector_frames_it_in_place() {
        let mut body = Body::from(b"abc".to_vec());
        assert_eq!(body.at(4), encode(4, b"abc"));
    }

    #[test]
    fn body_read_from_a_reader_holds_its_data() {
        let mut body = Body::read_from(&b"abc"[..], None, 3).unwrap().unwrap();
        assert_eq!(body.at(2), encode(2, b"abc"));
    }

    #[test]
    fn data_longer_than_the_limit_is_refused_before_the_end() {
        let endless = io::repeat(b'x');
        assert_eq!(Body::read_from(endless, None, 1000).unwrap(), None);
    }

    #[test]
    fn known_size_over_the_limit_is_refused_without_reading() {
        let unreadable = io::empty().chain(io::repeat(0));
        assert_eq!(Body::read_from(unreadable, Some(11), 10).unwrap(), None);
    }

    #[test]
    fn owned_decoding_keeps_the_data_and_checks_it() {
        assert_eq!(decode_owned(3, encode(3, b"r3")), Ok(b"r3".to_vec()));
        assert_eq!(
            decode_owned(4, encode(3, b"r3")),
            Err(Corruption::OffsetMismatch { found: 3 })
        );
    }

    #[test]
    fn encoded_record_decodes_to_its_data() {
        let data = [0u8, 0xff, 0xfe, b'\n'];
        assert_eq!(decode(7, &encode(7, &data)), Ok(&data[..]));
    }

    #[test]
    fn empty_data_is_a_valid_forty_byte_record() {
        let body = encode(3, b"");
        assert_eq!(body.len(), MIN_RECORD_LEN);
        assert_eq!(decode(3, &body), Ok(&b""[..]));
    }

    #[test]
    fn short_body_is_too_short() {
        assert_eq!(decode(1, &[0; 39]), Err(Corruption::TooShort { len: 39 }));
    }

    #[test]
    fn body_of_another_offset_is_an_offset_mismatch() {
        assert_eq!(
            decode(2, &encode(1, b"x")),
            Err(Corruption::OffsetMismatch { found: 1 })
        );
    }

    #[test]
    fn flipped_data_bit_is_a_checksum_mismatch() {
        let mut body = encode(1, b"hello");
        body[9] ^= 1;
        assert_eq!(decode(1, &body), Err(Corruption::ChecksumMismatch));
    }
}
