//! The body framing of one HTTP/1.x message (RFC 9112 sections 6 and 7.1), shared by requests
//! ([`super::state`]) and responses ([`super::response`]): a Content-Length body, a chunked body
//! (chunk sizes, chunk data, the CRLF after each chunk, trailers) or, for responses, a body
//! that lasts until the connection closes. Pure: one [`Framing::step`] reads what it can from
//! the start of a byte slice and says how many bytes it consumed, which of them are body data,
//! and whether the body ended; the caller owns the buffering and what an error means.

/// Where a body's framing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Bytes of a Content-Length body still to come.
    Length(u64),
    /// A chunk-size line is next.
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(u64),
    /// The line end after a chunk's data is next.
    ChunkCrlf,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
    /// No length, not chunked: the body lasts until the connection closes (responses).
    UntilClose,
}

/// What one [`Framing::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// `consumed` bytes were read from the start of the input, `data` (a part of them) is
    /// body data; `end`: the body ended with them.
    Took {
        /// Bytes read from the start of the input.
        consumed: usize,
        /// De-chunked body bytes among them.
        data: &'a [u8],
        /// The body ended.
        end: bool,
    },
    /// The framing needs more bytes than the input holds (an incomplete chunk-size line, line
    /// end or trailer): nothing was consumed.
    More,
    /// A chunk size or a chunk's line end that is not one (malformed chunked framing).
    BadChunk,
}

impl Framing {
    /// Read one framing step from the start of `rest` and move to the next state.
    pub fn step<'a>(&mut self, rest: &'a [u8]) -> Step<'a> {
        if rest.is_empty() {
            return Step::More;
        }
        let took = |consumed, data, end| Step::Took {
            consumed,
            data,
            end,
        };
        match *self {
            Framing::Length(rem) | Framing::ChunkData(rem) => {
                let avail = u64::try_from(rest.len()).unwrap_or(u64::MAX);
                let n = rem.min(avail);
                let n_us = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                let left = rem - n;
                let chunked = matches!(self, Framing::ChunkData(_));
                *self = match (chunked, left) {
                    (true, 0) => Framing::ChunkCrlf,
                    (true, l) => Framing::ChunkData(l),
                    (false, l) => Framing::Length(l),
                };
                let data = rest.get(..n_us).unwrap_or_default();
                took(n_us, data, !chunked && left == 0)
            }
            Framing::UntilClose => took(rest.len(), rest, false),
            Framing::ChunkSize => match httparse::parse_chunk_size(rest) {
                Ok(httparse::Status::Complete((n, size))) => {
                    *self = if size == 0 {
                        Framing::Trailers
                    } else {
                        Framing::ChunkData(size)
                    };
                    took(n, &[], false)
                }
                Ok(httparse::Status::Partial) => Step::More,
                Err(_) => Step::BadChunk,
            },
            Framing::ChunkCrlf => {
                let n = if rest.starts_with(b"\r\n") {
                    2
                } else if rest.starts_with(b"\n") {
                    1
                } else if rest == b"\r" {
                    return Step::More;
                } else {
                    return Step::BadChunk;
                };
                *self = Framing::ChunkSize;
                took(n, &[], false)
            }
            Framing::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', rest) else {
                    return Step::More;
                };
                // An empty line ends the trailers, and the body.
                let empty = nl == 0 || (nl == 1 && rest.first() == Some(&b'\r'));
                took(nl.saturating_add(1), &[], empty)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `wire` in consecutive parts of the sizes `cuts` gives, repeated as needed.
    pub(crate) fn cut<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + (*c).max(1)).min(wire.len());
            parts.push(&wire[at..end]);
            at = end;
        }
        parts
    }

    /// Run `framing` over `parts` (each part appended to what was left unconsumed); the body
    /// data, whether it ended, and whether the framing was bad.
    fn run(mut framing: Framing, parts: &[&[u8]]) -> (Vec<u8>, bool, bool) {
        let mut held = Vec::new();
        let mut body = Vec::new();
        for p in parts {
            held.extend_from_slice(p);
            let mut pos = 0;
            while pos < held.len() {
                match framing.step(&held[pos..]) {
                    Step::Took {
                        consumed,
                        data,
                        end,
                    } => {
                        body.extend_from_slice(data);
                        pos += consumed;
                        if end {
                            return (body, true, false);
                        }
                    }
                    Step::More => break,
                    Step::BadChunk => return (body, false, true),
                }
            }
            held.drain(..pos);
        }
        (body, false, false)
    }

    #[test]
    fn length_chunked_and_until_close() {
        assert_eq!(
            run(Framing::Length(5), &[b"hel", b"loEXTRA"]),
            (b"hello".to_vec(), true, false)
        );
        // A bare LF after chunk data is accepted, as are trailers.
        let wire = b"3\r\nabc\r\n2\r\nde\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            run(Framing::ChunkSize, &[wire]),
            (b"abcde".to_vec(), true, false)
        );
        assert_eq!(
            run(Framing::UntilClose, &[b"ab", b"cd"]),
            (b"abcd".to_vec(), false, false)
        );
    }

    #[test]
    fn bad_chunks() {
        assert!(run(Framing::ChunkSize, &[b"zz\r\n"]).2);
        // Chunk data not followed by a line end.
        assert_eq!(
            run(Framing::ChunkSize, &[b"2\r\nabX"]),
            (b"ab".to_vec(), false, true)
        );
        // A lone CR waits for its LF.
        assert_eq!(
            run(Framing::ChunkSize, &[b"2\r\nab\r", b"\n0\r\n\r\n"]),
            (b"ab".to_vec(), true, false)
        );
    }

    proptest! {
        // A chunked body gives the same data and end however it is split, and any bytes
        // neither panic nor consume more than they hold.
        #[test]
        fn split_invariance(body in proptest::collection::vec(any::<u8>(), 0..600),
                            size in 1usize..40,
                            cuts in proptest::collection::vec(1usize..50, 1..30),
                            junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let wire = super::super::response::tests::chunked(&body, size);
            let parts = cut(&wire, &cuts);
            prop_assert_eq!(run(Framing::ChunkSize, &parts), (body, true, false));
            for start in [Framing::ChunkSize, Framing::Trailers, Framing::ChunkCrlf] {
                let mut f = start;
                if let Step::Took { consumed, data, .. } = f.step(&junk) {
                    prop_assert!(consumed <= junk.len() && data.len() <= consumed);
                }
            }
        }
    }
}
