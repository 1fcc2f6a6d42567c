//! Messages, zero-copy UTF-8 text, and incremental UTF-8 validation.

use alloc::string::String;
use bytes::Bytes;
use core::fmt;
use core::ops::Deref;

/// Bytes known to be valid UTF-8: a zero-copy text payload.
///
/// ```
/// use wsproto_core::Utf8Bytes;
/// let text = Utf8Bytes::from_static("hello");
/// assert_eq!(text.as_str(), "hello");
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    pub const fn from_static(s: &'static str) -> Utf8Bytes {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes the caller has already validated.
    pub(crate) fn from_validated(bytes: Bytes) -> Utf8Bytes {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor validates the bytes (`TryFrom<Bytes>`,
        // `from_static`, `From<String>`) or is `from_validated`, which the
        // receive path only calls after `Utf8Validator` accepted every byte of
        // the payload and `finish` found no incomplete sequence. `Bytes` is
        // immutable, so the content cannot change afterwards. Revalidating here
        // would scan every text message a second time.
        unsafe { core::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives back the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = core::str::Utf8Error;
    fn try_from(bytes: Bytes) -> Result<Utf8Bytes, Self::Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Utf8Bytes {
        Utf8Bytes(Bytes::from(s.into_bytes()))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Utf8Bytes {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete data message.
///
/// ```
/// use wsproto_core::Message;
/// let m = Message::text("hi");
/// assert_eq!(m.as_text(), Some("hi"));
/// assert_eq!(Message::binary(vec![1, 2]).len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Message {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Message {
        Message::Binary(data.into())
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }
}

/// Validates UTF-8 that arrives in pieces, failing on the first byte that
/// can no longer start or continue a valid sequence.
///
/// A sequence split across pieces is carried over (at most 3 bytes), so a
/// message is rejected as soon as its invalid byte arrives rather than when
/// the message is complete.
///
/// ```
/// use wsproto_core::Utf8Validator;
/// let euro = "€".as_bytes(); // e2 82 ac
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&euro[..1]).is_ok());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&[0xe2]).is_ok());
/// assert!(v.feed(&[0x28]).is_err()); // not a continuation byte: fails now
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// Invalid UTF-8 was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Validates the next piece.
    // In bounds: a carried-over sequence is at most 3 bytes (`from_utf8`
    // reports an incomplete sequence only at the end, and no valid prefix of
    // a 4-byte sequence is longer), `take <= width - have <= 4 - have` and
    // `take <= data.len()`, all within the 4-byte `partial` array.
    #[allow(clippy::indexing_slicing)]
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let width = sequence_width(self.partial[0]);
            let take = width.saturating_sub(have).min(data.len());
            let mut seq = self.partial;
            seq[have..have + take].copy_from_slice(&data[..take]);
            let seq = &seq[..have + take];
            match simdutf8::compat::from_utf8(seq) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; `take` consumed all of `data`.
                    self.partial[..seq.len()].copy_from_slice(seq);
                    self.partial_len = seq.len() as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            data = &data[take..];
        }
        // The common case, all valid, through the faster check that only
        // says yes or no, with a character cut by the end of the piece set
        // aside first (else the fast check fails and the data is read
        // twice); the check that says where is for the rest, or for just
        // the cut character once the rest passed.
        let cut = incomplete_tail(data);
        let (whole, tail) = data.split_at(data.len() - cut);
        if simdutf8::basic::from_utf8(whole).is_ok() {
            if tail.is_empty() {
                return Ok(());
            }
            data = tail;
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether everything fed so far ended on a character boundary.
    pub(crate) fn between_chars(&self) -> bool {
        self.partial_len == 0
    }

    /// Ends the message: fails if it stopped inside a sequence. Resets the
    /// validator for the next message either way.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let incomplete = self.partial_len != 0;
        self.partial_len = 0;
        if incomplete {
            Err(InvalidUtf8)
        } else {
            Ok(())
        }
    }
}

/// How many bytes at the end of `data` start a character that the piece
/// does not finish (0 to 3), judged by the last lead byte; 0 when the end
/// is a boundary or the bytes are not valid (the full check decides then).
fn incomplete_tail(data: &[u8]) -> usize {
    for (i, &byte) in data.iter().rev().take(3).enumerate() {
        if byte & 0xc0 == 0x80 {
            continue;
        }
        return if sequence_width(byte) > i + 1 {
            i + 1
        } else {
            0
        };
    }
    0
}

/// Length of the sequence a lead byte starts (1 for ASCII and for bytes
/// that cannot start one, which the full check then rejects).
fn sequence_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn validate_in_pieces(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&data[start..cut])?;
            start = cut;
        }
        v.feed(&data[start..])?;
        v.finish()
    }

    #[test]
    fn fails_fast_inside_a_split_sequence() {
        // F4 90 is already out of range (> U+10FFFF): fail on the second byte.
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[b'a', 0xf4]).is_ok());
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
        // Surrogates: ED A0 fails at once.
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xed]).is_ok());
        assert_eq!(v.feed(&[0xa0]), Err(InvalidUtf8));
    }

    #[test]
    fn incomplete_at_end_fails_on_finish() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xf0, 0x9f, 0x98]).is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // and the validator is reusable afterwards
        assert!(v.feed(b"ok").is_ok());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn byte_at_a_time_four_byte_sequences() {
        let text = "κόσμε 😀 a€b";
        let cuts: Vec<usize> = (1..text.len()).collect();
        assert!(validate_in_pieces(text.as_bytes(), &cuts).is_ok());
    }

    proptest! {
        #[test]
        fn pieces_agree_with_std(
            data in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let expected = core::str::from_utf8(&data).is_ok();
            prop_assert_eq!(validate_in_pieces(&data, &cuts).is_ok(), expected);
        }

        #[test]
        fn valid_text_in_any_pieces(
            text in "\\PC{0,40}",
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let data = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert!(validate_in_pieces(data, &cuts).is_ok());
        }

        /// The first failing feed is the one that contains the first invalid
        /// byte: nothing waits for the end of the message.
        #[test]
        fn fails_on_the_piece_with_the_first_bad_byte(
            data in proptest::collection::vec(any::<u8>(), 1..48),
        ) {
            let mut v = Utf8Validator::new();
            let mut failed_at = None;
            for (i, b) in data.iter().enumerate() {
                if v.feed(core::slice::from_ref(b)).is_err() {
                    failed_at = Some(i);
                    break;
                }
            }
            // The earliest byte index at which no extension can make the prefix valid.
            let expected = (1..=data.len()).find(|&n| match core::str::from_utf8(&data[..n]) {
                Ok(_) => false,
                Err(e) => e.error_len().is_some(),
            }).map(|n| n - 1);
            prop_assert_eq!(failed_at, expected);
        }
    }
}
