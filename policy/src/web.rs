//! The `web_address_scan` section: web addresses (HTTP requests, TLS server names, DNS query
//! names) checked against address lists (docs/web-addresses.md).

use core::fmt;

/// What a listed address gets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum WebAction {
    /// Report only.
    Inform,
    /// Stop the request: HTTP gets the block page and resets, TLS resets, DNS its own answer.
    #[default]
    Block,
}

impl WebAction {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebAction::Inform => "inform",
            WebAction::Block => "block",
        }
    }
}

impl fmt::Display for WebAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a blocked DNS query is answered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum DnsAnswer {
    /// `0.0.0.0` / `::` with a short TTL (RFC 8914 Extended DNS Error 4, Forged Answer).
    #[default]
    Null,
    /// NXDOMAIN with an SOA (Extended DNS Error 15, Blocked).
    Nxdomain,
}

impl DnsAnswer {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DnsAnswer::Null => "null",
            DnsAnswer::Nxdomain => "nxdomain",
        }
    }
}

/// What happens to QUIC (HTTP/3) connections.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum QuicMode {
    /// Read the server name of the Initial and treat it as TLS's.
    #[default]
    Inspect,
    /// Drop every QUIC v1 Initial: browsers fall back to TCP, where the name is seen.
    Block,
}

impl QuicMode {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            QuicMode::Inspect => "inspect",
            QuicMode::Block => "block",
        }
    }
}

/// A list file the policy names: its category and its path on the appliance.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct UrlListRef {
    /// Category (`malware`, `phishing`, `scam`, `custom` or another name of lowercase letters,
    /// digits, `-` and `_`).
    pub category: String,
    /// Path of the list file on the appliance.
    pub path: String,
}

impl fmt::Display for UrlListRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.category, self.path)
    }
}

/// Longest block page template, in bytes (the block page builder's cap,
/// `dataplane::blockpage::MAX_TEMPLATE_BYTES`, which also checks the placeholders when the
/// policy is applied).
pub const MAX_BLOCK_PAGE: usize = 16 << 10;

/// Most entries of `url_lists`, `categories` and `trusted` each.
pub const MAX_WEB_ITEMS: usize = 10_000;

/// The web address scan.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct WebAddressScan {
    /// Whether addresses are looked up (when lists are loaded). Default on.
    pub enabled: bool,
    /// What a listed address gets. Default [`WebAction::Block`].
    pub action: WebAction,
    /// Categories that apply; empty: every loaded list.
    pub categories: Vec<String>,
    /// List files the policy adds to the daemon configuration's (and `--url-list`'s).
    pub url_lists: Vec<UrlListRef>,
    /// Trusted addresses (list syntax: a domain covers the names below it), never blocked; they
    /// beat every list.
    pub trusted: Vec<String>,
    /// The block page's HTML template (`{{address}}`, `{{category}}`, `{{list}}`, `{{entry}}`);
    /// `None`: the built-in page.
    pub block_page: Option<String>,
    /// How a blocked DNS query is answered. Default [`DnsAnswer::Null`].
    pub dns_answer: DnsAnswer,
    /// Answer `use-application-dns.net` with NXDOMAIN, so browsers keep DNS where it can be
    /// seen (Firefox's canary domain for DNS over HTTPS). Default on.
    pub doh_canary_nxdomain: bool,
    /// QUIC: inspect the Initial's server name, or block QUIC. Default [`QuicMode::Inspect`].
    pub quic: QuicMode,
}

impl Default for WebAddressScan {
    fn default() -> Self {
        WebAddressScan {
            enabled: true,
            action: WebAction::default(),
            categories: Vec::new(),
            url_lists: Vec::new(),
            trusted: Vec::new(),
            block_page: None,
            dns_answer: DnsAnswer::default(),
            doh_canary_nxdomain: true,
            quic: QuicMode::default(),
        }
    }
}

impl WebAddressScan {
    /// Whether a list of `category` applies.
    pub fn applies_to(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category)
    }

    /// Whether the compiled set must be built again: the lists, the categories or the trusted
    /// addresses differ (the action and the answers apply without a rebuild).
    pub fn same_list_inputs(&self, other: &WebAddressScan) -> bool {
        self.categories == other.categories
            && self.url_lists == other.url_lists
            && self.trusted == other.trusted
    }
}

/// Whether `s` is a category name: lowercase letters, digits, `-` and `_`, 1..=64 bytes.
pub fn is_category(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
