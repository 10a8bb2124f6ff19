//! Buffer chain inspection: `content`, `pcre`, `isdataat`, `byte_test`, `byte_jump`, `bsize`
//! in rule order, with Suricata's relative positions and backtracking.
//!
//! Positions follow `detect-engine-content-inspection.c`: every step starts from the end of
//! the previous match in the same buffer (`prev_end`, 0 at the start). A content with
//! `distance`/`within` searches `[prev_end + distance, prev_end + distance + within)`; one with
//! `offset`/`depth` searches `[offset, offset + depth)`. When a later relative step fails, the
//! previous content or pcre is searched again from one byte past its last match, as Suricata
//! does; [`MAX_INSPECT_STEPS`] bounds the work a crafted buffer can cause.
//!
//! `byte_extract` stores a value in its rule's [`ByteVars`] slot; later steps (in this chain or
//! a later one of the rule) read it where they take a number ([`Val::Var`]). A backtracked step
//! runs again before any step after it, so a slot always holds the value of the path tried.

use super::ast::{
    ByteEncoding, ByteExtract, ByteJump, ByteOp, ByteTest, Content, MAX_BYTE_VARS, Step, Val,
};

/// The `byte_extract` variables of one rule evaluation.
pub type ByteVars = [u64; MAX_BYTE_VARS];

fn var(vars: &ByteVars, slot: u8) -> u64 {
    vars.get(usize::from(slot)).copied().unwrap_or(0)
}

/// A `u32` position: the literal, or the variable (saturated: a huge value is out of any buffer).
fn val_u32(v: Val<u32>, vars: &ByteVars) -> u64 {
    match v {
        Val::Lit(n) => u64::from(n),
        Val::Var(s) => var(vars, s),
    }
}

fn val_i32(v: Val<i32>, vars: &ByteVars) -> i64 {
    match v {
        Val::Lit(n) => i64::from(n),
        Val::Var(s) => i64::try_from(var(vars, s)).unwrap_or(i64::MAX),
    }
}

/// RFC 4648 base64 of `input` up to its first byte outside the alphabet (padding included),
/// as Suricata's `base64_decode` (its RFC 4648 mode): a last group of 2 or 3 characters gives
/// 1 or 2 bytes, a lone last character nothing.
pub(crate) fn base64_prefix(input: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let valid = input
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'))
        .unwrap_or(input.len());
    let n = if valid % 4 == 1 { valid - 1 } else { valid };
    LENIENT
        .decode(input.get(..n).unwrap_or_default())
        .unwrap_or_default()
}

/// Steps one chain may take (Suricata's `inspection_recursion_limit` is 3000 per rule).
pub const MAX_INSPECT_STEPS: u32 = 3000;

/// Does the chain match `buf`? (A chain without `byte_extract` variables.)
pub fn match_chain(steps: &[Step], buf: &[u8]) -> bool {
    match_chain_vars(steps, buf, &mut [0; MAX_BYTE_VARS])
}

/// Does the chain match `buf`, with the rule's variables (set by earlier chains, and by this
/// one for the later chains)?
pub fn match_chain_vars(steps: &[Step], buf: &[u8], vars: &mut ByteVars) -> bool {
    let mut budget = MAX_INSPECT_STEPS;
    let matched = eval(steps, 0, buf, 0, &mut budget, vars);
    if budget == 0 {
        super::runtime::inspect_limit_hit();
    }
    matched
}

fn eval(
    steps: &[Step],
    i: usize,
    buf: &[u8],
    prev_end: usize,
    budget: &mut u32,
    vars: &mut ByteVars,
) -> bool {
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
            let Some((start, end)) = window(c, prev_end, len, vars) else {
                return c.negated && eval(steps, i + 1, buf, prev_end, budget, vars);
            };
            if c.negated {
                return find(c, buf, start, end).is_none()
                    && eval(steps, i + 1, buf, prev_end, budget, vars);
            }
            let mut from = start;
            loop {
                let Some(pos) = find(c, buf, from, end) else {
                    return false;
                };
                if eval(steps, i + 1, buf, pos + c.pattern.len(), budget, vars) {
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
                return !re.is_match(hay) && eval(steps, i + 1, buf, prev_end, budget, vars);
            }
            let mut from = 0;
            loop {
                let Some(m) = hay.get(from..).and_then(|h| re.find(h)) else {
                    return false;
                };
                let (s, e) = (start + from + m.start(), start + from + m.end());
                if eval(steps, i + 1, buf, e, budget, vars) {
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
            let n = usize::try_from(val_u32(*n, vars)).unwrap_or(usize::MAX);
            // Suricata's 1-byte difference (redmine 8031): an absolute position must be inside
            // the buffer (`n < len`), a relative one may be its end (`prev_end + n <= len`).
            let has = if *relative {
                prev_end.saturating_add(n) <= len
            } else {
                n < len
            };
            has != *negated && eval(steps, i + 1, buf, prev_end, budget, vars)
        }
        Step::Bsize(c) => c.test(len as u64) && eval(steps, i + 1, buf, prev_end, budget, vars),
        // Suricata's DetectBase64DecodeDoMatch: from the previous match (`relative`) plus
        // `offset`, at most `bytes`; no match when nothing decodes; then the `base64_data`
        // steps on the decoded bytes.
        Step::Base64Decode(d) => {
            let from = if d.relative { prev_end } else { 0 };
            let start = from.saturating_add(usize::try_from(d.offset).unwrap_or(usize::MAX));
            let Some(rest) = buf.get(start..).filter(|r| !r.is_empty()) else {
                return false;
            };
            let take = d.bytes.map_or(rest.len(), |n| {
                usize::try_from(n).unwrap_or(usize::MAX).min(rest.len())
            });
            let decoded = base64_prefix(rest.get(..take).unwrap_or(rest));
            !decoded.is_empty()
                && eval(&d.steps, 0, &decoded, 0, budget, vars)
                && eval(steps, i + 1, buf, prev_end, budget, vars)
        }
        Step::Uint(c) => {
            let v = (1..=8)
                .contains(&len)
                .then(|| buf.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)));
            v.is_some_and(|v| c.test(v)) && eval(steps, i + 1, buf, prev_end, budget, vars)
        }
        Step::ByteTest(bt) => {
            byte_test(bt, buf, prev_end, vars) && eval(steps, i + 1, buf, prev_end, budget, vars)
        }
        Step::ByteExtract(be) => match byte_extract(be, buf, prev_end) {
            Some((v, np)) => {
                if let Some(slot) = vars.get_mut(usize::from(be.slot)) {
                    *slot = v;
                }
                eval(steps, i + 1, buf, np, budget, vars)
            }
            None => false,
        },
        Step::ByteJump(bj) => match byte_jump(bj, buf, prev_end, vars) {
            Some(np) => eval(steps, i + 1, buf, np, budget, vars),
            None => false,
        },
    }
}

/// The search window `[start, end)` of a content, or `None` if it is empty or too short.
fn window(c: &Content, prev_end: usize, len: usize, vars: &ByteVars) -> Option<(usize, usize)> {
    let plen = c.pattern.len();
    let big = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let (start, end) = if c.startswith {
        (0, plen)
    } else if c.is_relative() {
        let dist = c.distance.map_or(0, |d| val_i32(d, vars));
        let base = i64::try_from(prev_end).ok()?;
        let start = base.saturating_add(dist).max(0);
        let end = match c.within {
            Some(w) => {
                let w = i64::try_from(val_u32(w, vars)).unwrap_or(i64::MAX);
                base.saturating_add(dist).saturating_add(w).max(0)
            }
            None => i64::try_from(len).ok()?,
        };
        (usize::try_from(start).ok()?, usize::try_from(end).ok()?)
    } else {
        let start = big(c.offset.map_or(0, |o| val_u32(o, vars)));
        let end = match c.depth {
            Some(d) => start.saturating_add(big(val_u32(d, vars))),
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

/// A number written in ASCII as `strtoull` reads it (Suricata's `ByteExtractString`): leading
/// white space, an optional sign, `0x` in base 16, then digits. Returns the value and the bytes
/// read, or `None` without a digit or on overflow.
pub(crate) fn parse_str_num(bytes: &[u8], base: u32) -> Option<(u64, usize)> {
    let mut i = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let neg = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if base == 16
        && matches!(bytes.get(i..i + 2), Some([b'0', b'x' | b'X']))
        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
    }
    let mut v: u64 = 0;
    let mut digits = 0;
    while let Some(d) = bytes.get(i).and_then(|&b| (b as char).to_digit(base)) {
        v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    Some((if neg { v.wrapping_neg() } else { v }, i))
}

/// Read `n` bytes at `pos` as a number: the value and the bytes it took (a string number may
/// stop before `n`).
fn read_value(buf: &[u8], pos: usize, n: u8, enc: ByteEncoding) -> Option<(u64, usize)> {
    if n == 0 && !matches!(enc, ByteEncoding::String(_)) {
        // Only a variable reads 0 binary bytes: nothing, the value 0 (as Suricata).
        buf.get(pos..)?;
        return Some((0, 0));
    }
    let bytes = if n == 0 {
        let rest = buf.get(pos..)?;
        rest.get(..rest.len().min(20))?
    } else {
        buf.get(pos..pos.checked_add(usize::from(n))?)?
    };
    match enc {
        ByteEncoding::Big => Some((
            bytes.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)),
            bytes.len(),
        )),
        ByteEncoding::Little => Some((
            bytes.iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b)),
            bytes.len(),
        )),
        ByteEncoding::String(base) => parse_str_num(bytes, base),
    }
}

fn apply_mask(v: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) if m != 0 => (v & m) >> m.trailing_zeros(),
        _ => v,
    }
}

fn position(base: usize, offset: i64) -> Option<usize> {
    usize::try_from(i64::try_from(base).ok()?.checked_add(offset)?).ok()
}

/// Bytes to read from a variable: binary reads take 0..=8, string reads 0..=23 (Suricata's
/// run-time check of a variable `nbytes`; 0 binary bytes read the value 0).
fn nbytes_of(v: Val<u8>, enc: ByteEncoding, vars: &ByteVars) -> Option<u8> {
    match v {
        Val::Lit(n) => Some(n),
        Val::Var(s) => {
            let n = var(vars, s);
            let max = if matches!(enc, ByteEncoding::String(_)) {
                23
            } else {
                8
            };
            (n <= max).then(|| u8::try_from(n).ok()).flatten()
        }
    }
}

fn byte_test(bt: &ByteTest, buf: &[u8], prev_end: usize, vars: &ByteVars) -> bool {
    let base = if bt.relative { prev_end } else { 0 };
    let Some(pos) = position(base, val_i32(bt.offset, vars)) else {
        return false;
    };
    let Some(n) = nbytes_of(bt.nbytes, bt.encoding, vars) else {
        return false;
    };
    let Some((v, _)) = read_value(buf, pos, n, bt.encoding) else {
        return false;
    };
    let v = apply_mask(v, bt.bitmask);
    let value = match bt.value {
        Val::Lit(x) => x,
        Val::Var(s) => var(vars, s),
    };
    let r = match bt.op {
        ByteOp::Lt => v < value,
        ByteOp::Gt => v > value,
        ByteOp::Eq => v == value,
        ByteOp::Le => v <= value,
        ByteOp::Ge => v >= value,
        ByteOp::And => v & value != 0,
        ByteOp::Xor => v ^ value != 0,
    };
    r != bt.negated
}

/// `byte_extract` (Suricata's `DetectByteExtractDoMatch`): the value and the position after
/// the bytes read, or `None` if the read leaves the buffer or finds no number.
fn byte_extract(be: &ByteExtract, buf: &[u8], prev_end: usize) -> Option<(u64, usize)> {
    if buf.is_empty() {
        return None;
    }
    let base = if be.relative { prev_end } else { 0 };
    let pos = position(base, i64::from(be.offset))?;
    if be.relative && pos >= buf.len() {
        return None;
    }
    let (v, took) = read_value(buf, pos, be.nbytes, be.encoding)?;
    let mut v = v.wrapping_mul(be.multiplier);
    let align = u64::from(be.align);
    if align > 0 && v % align != 0 {
        v = v.wrapping_add(align - v % align);
    }
    Some((v, pos + took))
}

/// The new position after the jump (Suricata's `DetectBytejumpDoMatch`), or `None` if the read
/// or the jump leaves the buffer. A jump before the start lands on the start.
fn byte_jump(bj: &ByteJump, buf: &[u8], prev_end: usize, vars: &ByteVars) -> Option<usize> {
    if buf.is_empty() {
        return None;
    }
    let n = nbytes_of(bj.nbytes, bj.encoding, vars)?;
    let base = if bj.relative { prev_end } else { 0 };
    let pos = position(base, val_i32(bj.offset, vars))?;
    if bj.relative && n > 0 && pos >= buf.len() {
        return None;
    }
    let (v, took) = read_value(buf, pos, n, bj.encoding)?;
    let v = apply_mask(v, bj.bitmask);
    let mut jump = v.checked_mul(bj.multiplier)?;
    if bj.align && jump % 4 != 0 {
        jump = jump.checked_add(4 - jump % 4)?;
    }
    let jump = i64::try_from(jump)
        .ok()?
        .checked_add(i64::from(bj.post_offset))?;
    let from = if bj.from_beginning {
        0
    } else if bj.from_end {
        buf.len()
    } else {
        pos + took
    };
    let np = i64::try_from(from).ok()?.checked_add(jump)?.max(0);
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
