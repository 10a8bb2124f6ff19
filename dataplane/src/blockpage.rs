//! The HTTP block page (issue 17 item 4): the response svm sends a client in place of the server's
//! when its request names a listed address.
//!
//! A [`Template`] is HTML with placeholders `{{address}}`, `{{category}}`, `{{list}}` and
//! `{{entry}}`. It is checked when it is read (the policy carries it): an unknown placeholder or a
//! `{{` without its `}}` is refused with its line and column, so a typo never reaches a user's
//! screen. Every inserted value is HTML-escaped (`& < > " '`), so an address cannot write markup
//! into the page, and cut to [`MAX_VALUE_BYTES`]. Values are inserted after the template was
//! parsed: a value that contains `{{list}}` stays that text.
//!
//! [`Template::response`] gives the whole response: `HTTP/1.1 403 Forbidden`, `Content-Type:
//! text/html; charset=utf-8`, the exact `Content-Length`, `Cache-Control: no-store` (a browser
//! must not show the page again once the address is off the list), `Connection: close` (svm
//! ends the connection after the page), and a `Content-Security-Policy` that lets the page load
//! nothing from anywhere: the page is self-contained, whatever an administrator's template
//! links to, and a blocked site's name cannot pull a resource in.

use core::fmt::Write as _;

/// Longest template accepted (bytes). The page is sent in place of a response, a few segments
/// at most; a generous page is 2 KiB.
pub const MAX_TEMPLATE_BYTES: usize = 16 << 10;

/// Bytes of each inserted value kept (before escaping), cut at a character boundary; a request
/// target can be 8 KiB and the page needs no more than its start.
pub const MAX_VALUE_BYTES: usize = 1024;

/// The page svm shows when the policy gives no template.
pub const DEFAULT_TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blocked: {{address}}</title>
<style>
body { font-family: system-ui, sans-serif; background: #f4f4f4; color: #222; margin: 0; }
main { max-width: 40em; margin: 4em auto; background: #fff; padding: 2em; border-top: 6px solid #c0392b; }
h1 { font-size: 1.4em; margin-top: 0; }
code { word-break: break-all; background: #f0f0f0; padding: 0 .2em; }
dt { font-weight: bold; }
</style>
</head>
<body>
<main>
<h1>This web address is blocked</h1>
<p>Access to <code>{{address}}</code> was blocked by the security policy of this network.</p>
<dl>
<dt>Category</dt><dd>{{category}}</dd>
<dt>List</dt><dd>{{list}}</dd>
<dt>Matched entry</dt><dd><code>{{entry}}</code></dd>
</dl>
<p>If you think this is a mistake, contact your administrator and quote the list and the entry.</p>
</main>
</body>
</html>
"#;

/// What a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `{{address}}`: the address as requested.
    Address,
    /// `{{category}}`: the list's category.
    Category,
    /// `{{list}}`: the list's name.
    List,
    /// `{{entry}}`: the list entry that matched.
    Entry,
}

impl Field {
    /// Every field, with its placeholder name.
    pub const ALL: [(Field, &'static str); 4] = [
        (Field::Address, "address"),
        (Field::Category, "category"),
        (Field::List, "list"),
        (Field::Entry, "entry"),
    ];

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// Why a template is refused. Places are 1-based lines and columns (in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder that is not one of [`Field::ALL`].
    #[error(
        "block page template: unknown placeholder {{{{{name}}}}} at line {line}, column {column} (known: address, category, list, entry)"
    )]
    UnknownPlaceholder {
        /// The name between the braces.
        name: String,
        /// Line of its `{{`.
        line: usize,
        /// Column of its `{{`.
        column: usize,
    },
    /// `{{` with no `}}` after it.
    #[error("block page template: '{{{{' at line {line}, column {column} is not closed by '}}}}'")]
    Unclosed {
        /// Line of the `{{`.
        line: usize,
        /// Column of the `{{`.
        column: usize,
    },
    /// Longer than [`MAX_TEMPLATE_BYTES`].
    #[error("block page template: {0} bytes, more than {MAX_TEMPLATE_BYTES}")]
    TooLong(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A checked template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values a page names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageValues<'a> {
    /// The address as requested (URL or host).
    pub address: &'a str,
    /// The list's category.
    pub category: &'a str,
    /// The list's name.
    pub list: &'a str,
    /// The entry that matched.
    pub entry: &'a str,
}

/// Line and column (1-based, in characters) of byte offset `at` of `text`.
fn place(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let column = before
        .get(line_start..)
        .map_or(0, |l| l.chars().count())
        .saturating_add(1);
    (line, column)
}

impl Template {
    /// Check and read a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLong(text.len()));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0usize;
        while let Some(open) = rest.find("{{") {
            let at = offset.saturating_add(open);
            let after = rest.get(open.saturating_add(2)..).unwrap_or_default();
            let Some(close) = after.find("}}") else {
                let (line, column) = place(text, at);
                return Err(TemplateError::Unclosed { line, column });
            };
            let name = after.get(..close).unwrap_or_default();
            let Some(field) = Field::from_name(name.trim()) else {
                let (line, column) = place(text, at);
                return Err(TemplateError::UnknownPlaceholder {
                    name: name.to_string(),
                    line,
                    column,
                });
            };
            if open > 0 {
                parts.push(Part::Text(rest.get(..open).unwrap_or_default().to_string()));
            }
            parts.push(Part::Field(field));
            let used = open
                .saturating_add(2)
                .saturating_add(close)
                .saturating_add(2);
            rest = rest.get(used..).unwrap_or_default();
            offset = offset.saturating_add(used);
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The page's HTML with `values` inserted, escaped.
    pub fn render(&self, values: &PageValues<'_>) -> String {
        let mut out = String::with_capacity(2048);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let v = match f {
                        Field::Address => values.address,
                        Field::Category => values.category,
                        Field::List => values.list,
                        Field::Entry => values.entry,
                    };
                    escape_into(&mut out, cut(v, MAX_VALUE_BYTES));
                }
            }
        }
        out
    }

    /// The whole HTTP response carrying the page.
    pub fn response(&self, values: &PageValues<'_>) -> Vec<u8> {
        let body = self.render(values);
        let mut head = String::with_capacity(320);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 403 Forbidden\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\n\
             Cache-Control: no-store\r\n\
             Connection: close\r\n\
             Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
             X-Content-Type-Options: nosniff\r\n\
             \r\n",
            body.len()
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

impl Default for Template {
    fn default() -> Self {
        // The default template is a constant checked by a test; parsing it cannot fail, but a
        // page naming nothing is still a page, never a panic.
        Template::parse(DEFAULT_TEMPLATE).unwrap_or(Template {
            parts: vec![Part::Text(DEFAULT_TEMPLATE.to_string())],
        })
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default()
}

/// Append `value` HTML-escaped: the five characters that can end text or an attribute value.
pub fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(address: &str) -> PageValues<'_> {
        PageValues {
            address,
            category: "phishing",
            list: "phishing-domains.txt",
            entry: "evil.example",
        }
    }

    /// Head and body of a response, read by httparse; checks the head's promises.
    fn read(resp: &[u8]) -> String {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = r.parse(resp).unwrap() else {
            panic!("incomplete head");
        };
        assert_eq!(r.version, Some(1));
        assert_eq!(r.code, Some(403));
        assert_eq!(r.reason, Some("Forbidden"));
        let h = |name: &str| {
            let found: Vec<&str> = r
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap())
                .collect();
            assert_eq!(found.len(), 1, "{name}");
            found[0].to_string()
        };
        assert_eq!(h("Connection"), "close");
        assert_eq!(h("Cache-Control"), "no-store");
        assert_eq!(h("Content-Type"), "text/html; charset=utf-8");
        let body = &resp[head_len..];
        assert_eq!(h("Content-Length"), body.len().to_string());
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[test]
    fn default_page() {
        let t = Template::default();
        assert_eq!(Template::parse(DEFAULT_TEMPLATE).as_ref(), Ok(&t));
        let body = read(&t.response(&values("http://evil.example/login.php?a=1&b=2")));
        assert!(body.contains("<code>http://evil.example/login.php?a=1&amp;b=2</code>"));
        assert!(body.contains("<dd>phishing</dd>"));
        assert!(body.contains("<dd>phishing-domains.txt</dd>"));
        assert!(body.contains("<code>evil.example</code>"));
        // Self-contained: nothing to fetch.
        for external in ["src=", "href=", "url(", "@import", "http-equiv"] {
            assert!(!DEFAULT_TEMPLATE.contains(external), "{external}");
        }
    }

    #[test]
    fn hostile_values() {
        let t = Template::parse("<a title=\"{{address}}\">{{address}}</a><p title='{{list}}'>")
            .unwrap();
        let evil = "\"><script>alert('x')</script><a href=\"//evil";
        let body = read(&t.response(&PageValues {
            address: evil,
            list: "' onmouseover='alert(1)",
            ..PageValues::default()
        }));
        let escaped =
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;a href=&quot;//evil";
        assert_eq!(
            body,
            format!(
                "<a title=\"{escaped}\">{escaped}</a><p title='&#39; onmouseover=&#39;alert(1)'>"
            )
        );
        // A value that looks like a placeholder stays text; a long one is cut at a character.
        let t = Template::parse("[{{ entry }}]").unwrap();
        let v = PageValues {
            entry: "{{list}}",
            ..PageValues::default()
        };
        assert_eq!(t.render(&v), "[{{list}}]");
        let long = "é".repeat(MAX_VALUE_BYTES);
        let v = PageValues {
            entry: &long,
            ..PageValues::default()
        };
        assert_eq!(
            t.render(&v),
            format!("[{}]", "é".repeat(MAX_VALUE_BYTES / 2))
        );
    }

    #[test]
    fn refused_templates() {
        assert_eq!(
            Template::parse("<p>\n  ok {{list}} and {{url}}</p>"),
            Err(TemplateError::UnknownPlaceholder {
                name: "url".into(),
                line: 2,
                column: 19
            })
        );
        let e = Template::parse("é{{category}}\n\nx {{address").unwrap_err();
        assert_eq!(e, TemplateError::Unclosed { line: 3, column: 3 });
        assert_eq!(
            e.to_string(),
            "block page template: '{{' at line 3, column 3 is not closed by '}}'"
        );
        assert_eq!(
            Template::parse("{{}}").unwrap_err().to_string(),
            "block page template: unknown placeholder {{}} at line 1, column 1 (known: address, category, list, entry)"
        );
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert_eq!(
            Template::parse(&big),
            Err(TemplateError::TooLong(MAX_TEMPLATE_BYTES + 1))
        );
    }

    proptest! {
        // Whatever the values, the inserted text has no markup character, and unescaping it
        // gives the value back (cut to the cap).
        #[test]
        fn escaping_round_trips(address in "[^|]{0,200}", list in "[^|]{0,50}") {
            let t = Template::parse("{{address}}|{{list}}").unwrap();
            let page = t.render(&PageValues { address: &address, list: &list, ..PageValues::default() });
            prop_assert!(!page.contains(['<', '>', '"', '\'']));
            let unescape = |s: &str| s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                .replace("&#39;", "'").replace("&amp;", "&");
            let parts: Vec<String> = page.split('|').map(unescape).collect();
            prop_assert_eq!(parts, vec![address, list]);
        }

        // Any text: parsed or refused, never a panic; a parsed template renders its text back
        // when it has no placeholder.
        #[test]
        fn parse_never_panics(text in ".{0,200}") {
            if let (Ok(t), false) = (Template::parse(&text), text.contains("{{")) {
                prop_assert_eq!(t.render(&PageValues::default()), text);
            }
        }
    }
}
