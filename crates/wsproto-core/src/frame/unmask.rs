//! Unmasking a server's input as it enters the receive buffer.
//!
//! Copying input into the buffer and then unmasking each payload in place
//! passes over every payload byte twice. When large frames come in, the
//! unmasker follows the frame structure (headers are never masked; it only
//! needs their lengths and keys) and writes payload bytes unmasked in the
//! same pass as the copy. It only ever runs ahead of the decoder over bytes
//! it copied itself: it loses its place at small frames (where one copy of
//! the whole input and unmasking in place cost less than a copy per frame),
//! at bytes appended to the buffer another way (an adapter reading straight
//! into it), and at a header it cannot read; the decoder unmasks everything
//! past the unmasker's mark in place, as it would without it, and hands the
//! unmasker its place back whenever it has used up the buffer.
//!
//! The unmasker reads only lengths and keys and rejects nothing; the
//! decoder still parses and checks every header.

use bytes::BytesMut;

use super::header::MAX_HEADER_LEN;
use super::mask::{extend_framed, extend_masked};
use super::text::extend_masked_text;

/// Payloads at least this long are unmasked as they are copied; below it,
/// frames are copied together and unmasked in place (per-frame copies would
/// cost more than the second pass over a few bytes).
const FUSE_MIN: u64 = 1024;

/// What the unmasker needs from a header.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    /// Length of the header itself.
    len: usize,
    payload_len: u64,
    key: Option<[u8; 4]>,
    /// A text frame with no extension bits: its payload may be checked
    /// for UTF-8 as it is copied (see [`Unmasker::checked`]).
    text: bool,
}

/// Reads a header's lengths and key from the start of `buf`; `None` if it is
/// incomplete. Validates nothing (the decoder does); a length with the top
/// bit set is one the decoder rejects.
#[inline]
fn parse(buf: &[u8]) -> Option<Lengths> {
    let (b0, b1, rest) = match buf {
        [b0, b1, rest @ ..] => (*b0, *b1, rest),
        _ => return None,
    };
    let (payload_len, rest) = match b1 & 0x7f {
        126 => match rest {
            [a, b, rest @ ..] => (u64::from(u16::from_be_bytes([*a, *b])), rest),
            _ => return None,
        },
        127 => {
            let (len, rest) = rest.split_first_chunk::<8>()?;
            (u64::from_be_bytes(*len), rest)
        }
        len7 => (u64::from(len7), rest),
    };
    let key = if b1 & 0x80 != 0 {
        Some(*rest.first_chunk::<4>()?)
    } else {
        None
    };
    let len = buf.len() - rest.len() + if key.is_some() { 4 } else { 0 };
    Some(Lengths {
        len,
        payload_len,
        key,
        text: b0 & 0x7f == 0x01,
    })
}

/// Where the unmasker is in the frame structure, at its mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// At the start of a header (part of which may be in the buffer).
    Header,
    /// Inside a payload.
    Payload {
        key: Option<[u8; 4]>,
        text: bool,
        /// Bytes of this payload before the mark.
        offset: u64,
        remaining: u64,
    },
    /// Bytes it did not copy follow the mark: it waits for the decoder.
    Lost,
}

/// Unmasks payloads of large frames as they are copied into a receive
/// buffer, ahead of the decoder.
#[derive(Debug, Clone)]
pub(crate) struct Unmasker {
    /// Whether frames are masked at all (a client's input is not).
    enabled: bool,
    /// How many bytes at the front of the buffer are headers or unmasked
    /// payload: the decoder unmasks only what follows.
    done: usize,
    cursor: Cursor,
    /// Buffer ranges (start, end) of text payload bytes that were valid
    /// UTF-8 on their own when copied, oldest first; `marks` of them used.
    checked: [(usize, usize); MARKS],
    marks: usize,
}

/// How many checked ranges are remembered: enough for the frames of one
/// large input; past it, the connection validates as it would without.
const MARKS: usize = 8;

impl Unmasker {
    /// An unmasker for a server's input (`enabled`), or one that only
    /// copies; `buffered` says whether the buffer already holds bytes it
    /// did not copy (left over from the handshake).
    pub(crate) fn new(enabled: bool, buffered: bool) -> Unmasker {
        Unmasker {
            enabled,
            done: 0,
            checked: [(0, 0); MARKS],
            marks: 0,
            cursor: if buffered {
                Cursor::Lost
            } else {
                Cursor::Header
            },
        }
    }

    /// How many bytes at the front of the buffer need no unmasking.
    pub(crate) fn done(&self) -> usize {
        self.done
    }

    /// The buffer was emptied (the connection closed or failed).
    pub(crate) fn reset(&mut self) {
        self.done = 0;
        self.marks = 0;
        self.cursor = Cursor::Header;
    }

    /// The decoder removed `n` bytes from the front of the buffer.
    pub(crate) fn consumed(&mut self, n: usize) {
        self.done = self.done.saturating_sub(n);
        if self.marks == 0 {
            return;
        }
        let mut kept = 0;
        for i in 0..self.marks {
            let Some(&(start, end)) = self.checked.get(i) else {
                break;
            };
            if end > n {
                if let Some(slot) = self.checked.get_mut(kept) {
                    *slot = (start.saturating_sub(n), end - n);
                }
                kept += 1;
            }
        }
        self.marks = kept;
    }

    /// Whether the buffer bytes `start..end` are known to be valid UTF-8 to
    /// a validator that is between characters at `start`: they lie in a
    /// range that was valid on its own and `end` is where it ends. (A range
    /// starts at a character boundary, so a validator between characters
    /// at any byte inside it is at a boundary of the same parse.)
    pub(crate) fn checked(&self, start: usize, end: usize) -> bool {
        self.checked
            .get(..self.marks)
            .unwrap_or_default()
            .iter()
            .any(|&(s, e)| s <= start && e == end)
    }

    /// Remembers that `start..end` of the buffer, just copied, is text
    /// payload that was valid UTF-8 on its own.
    fn mark_checked(&mut self, start: usize, end: usize) {
        // A piece that follows a checked piece extends it (both were whole
        // characters, so together they are too); only a later piece of the
        // same payload can start where a mark ends, as a header separates
        // payloads.
        if self.marks > 0 {
            if let Some(last) = self.checked.get_mut(self.marks - 1) {
                if last.1 == start {
                    last.1 = end;
                    return;
                }
            }
        }
        if let Some(slot) = self.checked.get_mut(self.marks) {
            *slot = (start, end);
            self.marks += 1;
        }
    }

    /// The decoder used up the buffer (`buffered` bytes are left in it) and
    /// is inside the payload `progress` describes, or at a header if `None`.
    pub(crate) fn sync(&mut self, progress: Option<(Option<[u8; 4]>, u64, u64)>, buffered: usize) {
        (self.done, self.cursor) = match progress {
            Some((key, offset, remaining)) => (
                buffered,
                Cursor::Payload {
                    key,
                    // Not known here; only the pieces after a header the
                    // unmasker read itself are checked.
                    text: false,
                    offset,
                    remaining,
                },
            ),
            None => (0, Cursor::Header),
        };
    }

    /// Appends a piece of a text payload (`offset` bytes into it) to `buf`,
    /// unmasked, and marks it checked if it was valid UTF-8 on its own.
    fn extend_text(&mut self, buf: &mut BytesMut, piece: &[u8], key: [u8; 4], offset: u64) {
        let start = buf.len();
        if extend_masked_text(buf, piece, key, offset) {
            self.mark_checked(start, buf.len());
        }
    }

    /// Appends a large masked frame that `data` holds whole (its `header`
    /// parsed from the start of `data`) to `buf`, its payload unmasked, and
    /// returns the bytes after it; `None`, appending nothing, for any other
    /// frame. One step for the commonest large input, where the cursor
    /// would otherwise be stored and read back twice per frame.
    #[inline]
    fn whole_frame<'a>(
        &mut self,
        buf: &mut BytesMut,
        data: &'a [u8],
        header: Lengths,
    ) -> Option<&'a [u8]> {
        let key = header.key.filter(|_| header.payload_len >= FUSE_MIN)?;
        let payload_len = usize::try_from(header.payload_len).ok()?;
        let (frame, rest) = data.split_at_checked(header.len.checked_add(payload_len)?)?;
        if header.text {
            let (head, payload) = frame.split_at_checked(header.len)?;
            buf.extend_from_slice(head);
            self.extend_text(buf, payload, key, 0);
        } else {
            extend_framed(buf, frame, header.len, key);
        }
        Some(rest)
    }

    /// Appends `data` to `buf`, unmasking payload bytes of large frames as
    /// they are copied.
    pub(crate) fn extend(&mut self, buf: &mut BytesMut, mut data: &[u8]) {
        if !self.enabled {
            buf.extend_from_slice(data);
            return;
        }
        while !data.is_empty() {
            match self.cursor {
                Cursor::Header => {
                    // Part of the header may be in the buffer already (the
                    // decoder waits for the rest of it there).
                    let pending = buf.get(self.done..).unwrap_or_default();
                    let have = pending.len();
                    let header = if have == 0 {
                        let header = parse(data);
                        if let Some(rest) =
                            header.and_then(|header| self.whole_frame(buf, data, header))
                        {
                            // The cursor stays at a header.
                            self.done = buf.len();
                            data = rest;
                            continue;
                        }
                        header
                    } else {
                        let mut head = [0u8; MAX_HEADER_LEN];
                        let mut filled = 0;
                        for (slot, byte) in head.iter_mut().zip(pending.iter().chain(data)) {
                            *slot = *byte;
                            filled += 1;
                        }
                        parse(head.get(..filled).unwrap_or_default())
                    };
                    let large = header.filter(|header| header.payload_len >= FUSE_MIN);
                    // The rest of a large frame's header, if all of it is here.
                    let split = large.and_then(|header| {
                        let rest_of_header = header.len.checked_sub(have)?;
                        Some((header, data.split_at_checked(rest_of_header)?))
                    });
                    match split {
                        Some((header, (head, rest))) => {
                            buf.extend_from_slice(head);
                            data = rest;
                            self.done += header.len;
                            self.cursor = Cursor::Payload {
                                key: header.key,
                                text: header.text,
                                offset: 0,
                                remaining: header.payload_len,
                            };
                        }
                        // Small frames (or a header cut by the end of the
                        // input): one copy of the rest, and the decoder
                        // unmasks in place.
                        None => self.cursor = Cursor::Lost,
                    }
                }
                Cursor::Payload {
                    key,
                    text,
                    offset,
                    remaining,
                } => {
                    if buf.len() != self.done {
                        self.cursor = Cursor::Lost;
                        continue;
                    }
                    // At most `remaining`, so it fits in a usize.
                    let n = usize::try_from(remaining).map_or(data.len(), |r| r.min(data.len()));
                    let (now, rest) = data.split_at(n);
                    match key {
                        Some(key) if text => self.extend_text(buf, now, key, offset),
                        Some(key) => extend_masked(buf, now, key, offset),
                        // Unmasked input, which the decoder rejects.
                        None => buf.extend_from_slice(now),
                    }
                    self.done += n;
                    let n = n as u64;
                    self.cursor = if remaining == n {
                        Cursor::Header
                    } else {
                        Cursor::Payload {
                            key,
                            text,
                            offset: offset + n,
                            remaining: remaining - n,
                        }
                    };
                    data = rest;
                }
                Cursor::Lost => {
                    buf.extend_from_slice(data);
                    return;
                }
            }
        }
    }
}
