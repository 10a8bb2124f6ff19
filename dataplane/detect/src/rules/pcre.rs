//! Translation of Suricata `pcre` values (`"/re/flags"`) to the `regex` crate's bytes API.
//!
//! The `regex` crate guarantees linear-time matching and therefore lacks backreferences,
//! lookaround, atomic groups, possessive quantifiers and recursion; rules using them are
//! skipped with [`PcreError::Unsupported`] naming the construct. Small PCRE-isms are rewritten:
//! `\h` (horizontal space), `\e` (escape), `\Z` (end, optional final newline), `\/`.
//! Differences kept: PCRE's `$` without `m` also matches before a final newline; here it
//! matches only at the end (use of `$` before a trailing newline is rare in rules).

use super::ast::BufferKind;

/// Largest compiled program per expression (bytes). A rule set is untrusted input; an
/// expression such as `(a{1000}){1000}` must not take the process's memory.
pub const PCRE_SIZE_LIMIT: usize = 1 << 20;
/// Lazy DFA cache per expression and search thread.
pub const PCRE_DFA_LIMIT: usize = 1 << 20;

/// Why a pcre value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcreError {
    /// Not `"/.../flags"`.
    #[error("expected \"/regex/flags\"")]
    Syntax,
    /// A flag we do not know.
    #[error("unknown flag `{0}`")]
    Flag(char),
    /// A PCRE construct the linear-time engine cannot express.
    #[error("unsupported construct: {0}")]
    Unsupported(&'static str),
    /// The translated expression does not compile.
    #[error("does not compile: {0}")]
    Compile(String),
}

/// A validated expression, compiled on first use: compiling ET Open's 7,000 expressions takes
/// over a second, parsing them a fraction of that, and most never see a candidate packet.
/// [`LazyRegex::get`] compiles (once, thread-safe); a compile failure (only the size limits can
/// fail after a successful parse) makes the expression match nothing.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: Box<str>,
    cell: std::sync::OnceLock<Option<regex::bytes::Regex>>,
}

impl LazyRegex {
    /// The compiled expression, or `None` if it exceeded the size limits.
    pub fn get(&self) -> Option<&regex::bytes::Regex> {
        self.cell
            .get_or_init(|| {
                build(&self.pattern)
                    .inspect_err(|_| super::runtime::regex_size_limit_hit())
                    .ok()
            })
            .as_ref()
    }

    /// The translated pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

fn build(p: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(p)
        .unicode(false)
        .octal(true)
        .size_limit(PCRE_SIZE_LIMIT)
        .dfa_size_limit(PCRE_DFA_LIMIT)
        .build()
}

/// A translated pcre.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The expression.
    pub regex: LazyRegex,
    /// `R`.
    pub relative: bool,
    /// `!`.
    pub negated: bool,
    /// Buffer named by a flag (`U`, `H`, `P`...), if any.
    pub buffer: Option<BufferKind>,
}

/// Translate and compile `value` (the text after `pcre:`).
pub fn translate(value: &str) -> Result<Translated, PcreError> {
    let v = value.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, v),
    };
    let body = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(PcreError::Syntax)?;
    let body = body.strip_prefix('/').ok_or(PcreError::Syntax)?;
    let end = body.rfind('/').ok_or(PcreError::Syntax)?;
    let (pat, flags) = (
        body.get(..end).ok_or(PcreError::Syntax)?,
        body.get(end + 1..).ok_or(PcreError::Syntax)?,
    );
    let mut inline = String::new();
    let mut relative = false;
    let mut anchored = false;
    let mut buffer = None;
    for f in flags.chars() {
        match f {
            'i' | 's' | 'm' | 'x' => inline.push(f),
            'G' => inline.push('U'),
            'A' => anchored = true,
            'E' | 'O' | 'B' => {}
            'R' => relative = true,
            'U' => buffer = Some(BufferKind::HttpUri),
            'I' => buffer = Some(BufferKind::HttpUriRaw),
            'P' => buffer = Some(BufferKind::HttpRequestBody),
            'Q' => buffer = Some(BufferKind::FileData),
            'H' => buffer = Some(BufferKind::HttpHeader),
            'D' => buffer = Some(BufferKind::HttpHeaderRaw),
            'M' => buffer = Some(BufferKind::HttpMethod),
            'C' => buffer = Some(BufferKind::HttpCookie),
            'S' => buffer = Some(BufferKind::HttpStatCode),
            'Y' => buffer = Some(BufferKind::HttpStatMsg),
            'V' => buffer = Some(BufferKind::HttpUserAgent),
            'W' => buffer = Some(BufferKind::HttpHost),
            'Z' => buffer = Some(BufferKind::HttpHostRaw),
            other => return Err(PcreError::Flag(other)),
        }
    }
    let core = rewrite(pat)?;
    let mut full = String::with_capacity(core.len() + 16);
    if !inline.is_empty() {
        full.push_str("(?");
        full.push_str(&inline);
        full.push(')');
    }
    if anchored {
        full.push_str("\\A(?:");
        full.push_str(&core);
        full.push(')');
    } else {
        full.push_str(&core);
    }
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .octal(true)
        .build()
        .parse(&full)
        .map_err(|e| {
            let s = e.to_string();
            let last = s.lines().last().unwrap_or("").trim().to_owned();
            PcreError::Compile(last)
        })?;
    let regex = LazyRegex {
        pattern: full.into(),
        cell: std::sync::OnceLock::new(),
    };
    Ok(Translated {
        regex,
        relative,
        negated,
        buffer,
    })
}

/// Rewrite PCRE escapes the `regex` crate spells differently; reject what it cannot do.
fn rewrite(pat: &str) -> Result<String, PcreError> {
    let mut out = String::with_capacity(pat.len() + 8);
    let mut chars = pat.chars().peekable();
    let mut in_class = false;
    let mut prev_quant = false;
    while let Some(c) = chars.next() {
        let was_quant = prev_quant;
        prev_quant = false;
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    return Err(PcreError::Compile("trailing backslash".into()));
                };
                match n {
                    '1'..='9' if !in_class => {
                        // Three octal digits (`\101`) are a character; anything else a group.
                        let mut look = chars.clone();
                        let octal = n <= '3'
                            && look.next().is_some_and(|d| ('0'..='7').contains(&d))
                            && look.next().is_some_and(|d| ('0'..='7').contains(&d));
                        if !octal {
                            return Err(PcreError::Unsupported("backreference"));
                        }
                        out.push('\\');
                        out.push(n);
                    }
                    'h' => out.push_str(if in_class { " \\t" } else { "[ \\t]" }),
                    'e' => out.push_str("\\x1B"),
                    'x' if chars.peek() != Some(&'{') => {
                        // PCRE takes one or two hex digits after `\x`; regex wants exactly two.
                        let mut digits = String::new();
                        while digits.len() < 2
                            && let Some(&d) = chars.peek()
                            && d.is_ascii_hexdigit()
                        {
                            digits.push(d);
                            chars.next();
                        }
                        out.push_str("\\x");
                        if digits.len() < 2 {
                            out.push('0');
                        }
                        out.push_str(&digits);
                        if digits.is_empty() {
                            out.push('0');
                        }
                    }
                    'Z' => out.push_str("(?:\\n?\\z)"),
                    'K' => return Err(PcreError::Unsupported("\\K")),
                    'G' => return Err(PcreError::Unsupported("\\G")),
                    'Q' => return Err(PcreError::Unsupported("\\Q...\\E")),
                    'g' | 'k' => return Err(PcreError::Unsupported("backreference")),
                    'R' | 'X' | 'C' => return Err(PcreError::Unsupported("\\R/\\X/\\C")),
                    '/' | ';' | '"' | '\'' | ':' | '<' | '>' | '%' | '@' | '!' | ',' | '='
                    | '_' | '`' | '~' | '&' => out.push(n),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` or `^]` right after the opening bracket is literal in PCRE.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class => {
                // POSIX classes `[:alpha:]` are fine; a bare `[` in a class must be escaped.
                if chars.peek() == Some(&':') {
                    out.push('[');
                } else {
                    out.push_str("\\[");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '(' if !in_class && chars.peek() == Some(&'?') => {
                out.push('(');
                let mut look = chars.clone();
                look.next();
                match (look.next(), look.next()) {
                    (Some('='), _) | (Some('!'), _) => {
                        return Err(PcreError::Unsupported("lookahead"));
                    }
                    (Some('<'), Some('=')) | (Some('<'), Some('!')) => {
                        return Err(PcreError::Unsupported("lookbehind"));
                    }
                    (Some('>'), _) => return Err(PcreError::Unsupported("atomic group")),
                    (Some('|'), _) => return Err(PcreError::Unsupported("branch reset")),
                    (Some('R'), _) | (Some('0'..='9'), _) | (Some('&'), _) => {
                        return Err(PcreError::Unsupported("recursion"));
                    }
                    (Some('('), _) => return Err(PcreError::Unsupported("conditional")),
                    (Some('#'), _) => return Err(PcreError::Unsupported("comment group")),
                    (Some('P'), Some('=')) | (Some('P'), Some('>')) => {
                        return Err(PcreError::Unsupported("backreference"));
                    }
                    _ => {}
                }
            }
            '*' | '+' | '?' | '}' if !in_class => {
                if c == '+' && was_quant {
                    return Err(PcreError::Unsupported("possessive quantifier"));
                }
                out.push(c);
                prev_quant = c != '?' || !was_quant;
                if c == '?' && was_quant {
                    prev_quant = false;
                }
            }
            '{' if !in_class => {
                // PCRE reads `{` that does not start a valid `{n}`, `{n,}` or `{n,m}` literally.
                let rest: String = chars.clone().take_while(|&ch| ch != '}').collect();
                let closed = chars.clone().any(|ch| ch == '}');
                let valid = closed && {
                    let mut parts = rest.splitn(2, ',');
                    let a = parts.next().unwrap_or("");
                    let b = parts.next();
                    !a.is_empty()
                        && a.chars().all(|d| d.is_ascii_digit())
                        && b.is_none_or(|b| b.chars().all(|d| d.is_ascii_digit()))
                };
                if valid {
                    out.push('{');
                } else {
                    out.push_str("\\{");
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_buffers() {
        let t = translate(r#""/^GET\s+\/a\x2fb/Ui""#).unwrap();
        assert_eq!(t.buffer, Some(BufferKind::HttpUri));
        assert!(t.regex.get().unwrap().is_match(b"get  /a/b"));
        let t = translate(r#"!"/foo.bar/sR""#).unwrap();
        assert!(t.negated && t.relative);
        assert!(t.regex.get().unwrap().is_match(b"foo\nbar"));
        assert!(translate(r#""/x/m""#).unwrap().buffer.is_none());
        assert_eq!(translate(r#""/x/q""#).unwrap_err(), PcreError::Flag('q'));
    }

    #[test]
    fn bytes_not_utf8() {
        let t = translate(r#""/\xff\x00.{2}[\x80-\xff]/s""#).unwrap();
        assert!(t.regex.get().unwrap().is_match(&[0xff, 0, 1, 2, 0x90]));
    }

    #[test]
    fn unsupported() {
        for (p, what) in [
            (r#""/(a)\1/""#, "backreference"),
            (r#""/a(?=b)/""#, "lookahead"),
            (r#""/a(?!b)/""#, "lookahead"),
            (r#""/(?<=a)b/""#, "lookbehind"),
            (r#""/(?>a)/""#, "atomic group"),
            (r#""/a++/""#, "possessive quantifier"),
        ] {
            assert_eq!(
                translate(p).unwrap_err(),
                PcreError::Unsupported(what),
                "{p}"
            );
        }
        assert!(matches!(translate(r#""/(/""#), Err(PcreError::Compile(_))));
        assert!(translate(r#""/a+?b/""#).is_ok());
        assert!(translate(r#""/(?<name>a)/""#).is_ok());
    }

    #[test]
    fn pcre_isms() {
        let t = translate(r#""/a\hb{x/""#).unwrap();
        assert!(t.regex.get().unwrap().is_match(b"a\tb{x"));
        let t = translate(r#""/[]a]/""#).unwrap();
        assert!(t.regex.get().unwrap().is_match(b"]"));
        let t = translate(r#""/\101/""#).unwrap();
        assert!(t.regex.get().unwrap().is_match(b"A"));
    }
}
