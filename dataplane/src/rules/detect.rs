//! Buffer chain inspection: `content`, `pcre`, `isdataat`, `byte_test`, `byte_jump`, `bsize`
//! in rule order, with Suricata's relative positions and backtracking.
//!
//! Positions follow `detect-engine-content-inspection.c`: every step starts from the end of
//! the previous match in the same buffer (`prev_end`, 0 at the start). A content with
//! `distance`/`within` searches `[prev_end + distance, prev_end + distance + within)`; one with
//! `offset`/`depth` searches `[offset, offset + depth)`. When a later relative step fails, the
//! previous content or pcre is searched again from one byte past its last match, as Suricata
//! does; [`MAX_INSPECT_STEPS`] bounds the work a crafted buffer can cause.

use super::ast::{ByteEncoding, ByteJump, ByteOp, ByteTest, Content, Step};

/// Steps one chain may take (Suricata's `inspection_recursion_limit` is 3000 per rule).
pub const MAX_INSPECT_STEPS: u32 = 3000;

/// Does the chain match `buf`?
pub fn match_chain(steps: &[Step], buf: &[u8]) -> bool {
    let mut budget = MAX_INSPECT_STEPS;
    let matched = eval(steps, 0, buf, 0, &mut budget);
    if budget == 0 {
        super::runtime::inspect_limit_hit();
    }
    matched
}

fn eval(steps: &[Step], i: usize, buf: &[u8], prev_end: usize, budget: &mut u32) -> bool {
    let Some(step) = steps.get(i) else {
        return true;
    };
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let next_rel = steps.get(i + 1).is_some_and(Step::is_relative);
    let len = buf.len();
    match step {
        Step::Content(c) => {
            let Some((start, end)) = window(c, prev_end, len) else {
                return c.negated && eval(steps, i + 1, buf, prev_end, budget);
            };
            if c.negated {
                return find(c, buf, start, end).is_none()
                    && eval(steps, i + 1, buf, prev_end, budget);
            }
            let mut from = start;
            loop {
                let Some(pos) = find(c, buf, from, end) else {
                    return false;
                };
                if eval(steps, i + 1, buf, pos + c.pattern.len(), budget) {
                    return true;
                }
                if !next_rel || *budget == 0 {
                    return false;
                }
                from = pos + 1;
            }
        }
        Step::Pcre(p) => {
            let Some(re) = p.regex.get() else {
                return false;
            };
            let start = if p.relative { prev_end.min(len) } else { 0 };
            let hay = buf.get(start..).unwrap_or(&[]);
            if p.negated {
                return !re.is_match(hay) && eval(steps, i + 1, buf, prev_end, budget);
            }
            let mut from = 0;
            loop {
                let Some(m) = hay.get(from..).and_then(|h| re.find(h)) else {
                    return false;
                };
                let (s, e) = (start + from + m.start(), start + from + m.end());
                if eval(steps, i + 1, buf, e, budget) {
                    return true;
                }
                if !next_rel || *budget == 0 || s - start + 1 > hay.len() {
                    return false;
                }
                from = s - start + 1;
            }
        }
        Step::IsDataAt {
            n,
            relative,
            negated,
        } => {
            let base = if *relative { prev_end } else { 0 };
            let has = base.saturating_add(*n as usize) < len;
            has != *negated && eval(steps, i + 1, buf, prev_end, budget)
        }
        Step::Bsize(c) => c.test(len as u64) && eval(steps, i + 1, buf, prev_end, budget),
        Step::Uint(c) => {
            let v = (1..=8)
                .contains(&len)
                .then(|| buf.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)));
            v.is_some_and(|v| c.test(v)) && eval(steps, i + 1, buf, prev_end, budget)
        }
        Step::ByteTest(bt) => {
            byte_test(bt, buf, prev_end) && eval(steps, i + 1, buf, prev_end, budget)
        }
        Step::ByteJump(bj) => match byte_jump(bj, buf, prev_end) {
            Some(np) => eval(steps, i + 1, buf, np, budget),
            None => false,
        },
    }
}

/// The search window `[start, end)` of a content, or `None` if it is empty or too short.
fn window(c: &Content, prev_end: usize, len: usize) -> Option<(usize, usize)> {
    let plen = c.pattern.len();
    let (start, end) = if c.startswith {
        (0, plen)
    } else if c.is_relative() {
        let dist = i64::from(c.distance.unwrap_or(0));
        let base = i64::try_from(prev_end).ok()?;
        let start = (base + dist).max(0);
        let end = match c.within {
            Some(w) => (base + dist + i64::from(w)).max(0),
            None => i64::try_from(len).ok()?,
        };
        (usize::try_from(start).ok()?, usize::try_from(end).ok()?)
    } else {
        let start = c.offset.unwrap_or(0) as usize;
        let end = match c.depth {
            Some(d) => start.saturating_add(d as usize),
            None => len,
        };
        (start, end)
    };
    let end = end.min(len);
    (start <= end && end - start >= plen).then_some((start, end))
}

/// First occurrence of the content in `buf[from..end]` (absolute position).
fn find(c: &Content, buf: &[u8], from: usize, end: usize) -> Option<usize> {
    let plen = c.pattern.len();
    if c.endswith {
        if end != buf.len() || end < from + plen {
            return None;
        }
        let pos = end - plen;
        let tail = buf.get(pos..end)?;
        let ok = if c.nocase {
            tail.eq_ignore_ascii_case(&c.pattern)
        } else {
            tail == c.pattern.as_slice()
        };
        return ok.then_some(pos);
    }
    let hay = buf.get(from..end)?;
    let rel = match &c.finder {
        Some(f) => f.find(hay),
        None => find_nocase(hay, &c.pattern),
    }?;
    Some(from + rel)
}

/// Case-insensitive (ASCII) search.
pub fn find_nocase(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let last_start = hay.len() - needle.len();
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut at = 0;
    while at <= last_start {
        let cand = hay.get(at..=last_start)?;
        let off = memchr::memchr2(lo, up, cand)?;
        let pos = at + off;
        if hay
            .get(pos + 1..pos + needle.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(rest))
        {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}

/// Read `n` bytes at `pos` as a number.
fn read_value(buf: &[u8], pos: usize, n: u8, enc: ByteEncoding) -> Option<u64> {
    let bytes = if n == 0 {
        let rest = buf.get(pos..)?;
        rest.get(..rest.len().min(20))?
    } else {
        buf.get(pos..pos.checked_add(usize::from(n))?)?
    };
    match enc {
        ByteEncoding::Big => Some(bytes.iter().fold(0u64, |a, &b| a << 8 | u64::from(b))),
        ByteEncoding::Little => Some(bytes.iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b))),
        ByteEncoding::String(base) => {
            let mut v: u64 = 0;
            let mut digits = 0;
            for &b in bytes {
                let Some(d) = (b as char).to_digit(base) else {
                    break;
                };
                v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
                digits += 1;
            }
            (digits > 0).then_some(v)
        }
    }
}

fn apply_mask(v: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) if m != 0 => (v & m) >> m.trailing_zeros(),
        _ => v,
    }
}

fn position(base: usize, offset: i32) -> Option<usize> {
    usize::try_from(i64::try_from(base).ok()? + i64::from(offset)).ok()
}

fn byte_test(bt: &ByteTest, buf: &[u8], prev_end: usize) -> bool {
    let base = if bt.relative { prev_end } else { 0 };
    let Some(pos) = position(base, bt.offset) else {
        return false;
    };
    let Some(v) = read_value(buf, pos, bt.nbytes, bt.encoding) else {
        return false;
    };
    let v = apply_mask(v, bt.bitmask);
    let r = match bt.op {
        ByteOp::Lt => v < bt.value,
        ByteOp::Gt => v > bt.value,
        ByteOp::Eq => v == bt.value,
        ByteOp::Le => v <= bt.value,
        ByteOp::Ge => v >= bt.value,
        ByteOp::And => v & bt.value != 0,
        ByteOp::Xor => v ^ bt.value != 0,
    };
    r != bt.negated
}

/// The new position after the jump, or `None` if the read or the jump leaves the buffer.
fn byte_jump(bj: &ByteJump, buf: &[u8], prev_end: usize) -> Option<usize> {
    let base = if bj.relative { prev_end } else { 0 };
    let pos = position(base, bj.offset)?;
    let v = apply_mask(read_value(buf, pos, bj.nbytes, bj.encoding)?, bj.bitmask);
    let mut jump = v.checked_mul(bj.multiplier)?;
    if bj.align && jump % 4 != 0 {
        jump = jump.checked_add(4 - jump % 4)?;
    }
    let from = if bj.from_beginning {
        0
    } else if bj.from_end {
        buf.len()
    } else {
        pos + usize::from(bj.nbytes)
    };
    let np = i64::try_from(from).ok()? + i64::try_from(jump).ok()? + i64::from(bj.post_offset);
    let np = usize::try_from(np).ok()?;
    (np <= buf.len()).then_some(np)
}

/// Suricata's `url_decode` transform: `%HH` (either case) becomes its byte, `+` a space; a `%`
/// not followed by two hex digits is kept as it is. Appends to `out`.
pub fn url_decode(buf: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let pair = (
            buf.get(i + 1).copied().and_then(hex),
            buf.get(i + 2).copied().and_then(hex),
        );
        match (b, pair) {
            (b'%', (Some(h), Some(l))) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
}
