//! `threshold`, `detection_filter` and `threshold.config` (`threshold`, `event_filter`,
//! `suppress`), with the per-track counters they need.
//!
//! Semantics follow Suricata's `detect-engine-threshold.c`; a window opens at the first match
//! of a track key and lasts `seconds`:
//! - `limit`: alert on the first `count` matches of the window.
//! - `threshold`: alert on every `count`-th match of the window.
//! - `both`: alert once, on the `count`-th match of the window.
//! - `detection_filter`: alert on every match after the `count`-th of the window.
//! - `backoff` (`track by_flow` only, no window): alert on the `count`-th match, then on the
//!   `count * multiplier`-th, the `count * multiplier²`-th, ...; the other matches are silent.
//! - `rate_filter` (threshold.config only): every match alerts; from the match that makes more
//!   than `count` in the window on, the rule's action is `new_action` for `timeout` seconds.
//!
//! A match that does not alert still has its action applied (Suricata's silent match).
//! `by_both` counts the address pair whichever way a packet goes, as Suricata's IP pair table.
//!
//! State is keyed by (rule, track value). `by_flow` counters live in the caller's per-flow
//! [`FlowRuleState`](super::FlowRuleState) instead, so they vanish with the flow.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::time::Timestamp;

use super::ast::RuleAction;
use super::vars::{AddrSet, Vars};

/// Most (rule, key) counters kept. When full, expired entries are pruned; if it is still full the
/// match is let through as if unthresholded (fail-open: an alert too many rather than a lost one)
/// and [`ThresholdState::overflows`] counts it.
pub const MAX_THRESHOLD_ENTRIES: usize = 1 << 20;

/// `type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ThresholdType {
    /// `limit`.
    Limit,
    /// `threshold`.
    Threshold,
    /// `both`.
    Both,
    /// `detection_filter`.
    DetectionFilter,
    /// `backoff` with this `multiplier`.
    Backoff(u32),
    /// `rate_filter`: the action taken while the rate is exceeded, for `timeout` seconds.
    Rate {
        /// `new_action`.
        new_action: RuleAction,
        /// `timeout`, seconds.
        timeout: u32,
    },
}

/// What a threshold decides for one match.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Alert, with the rule's action.
    Alert,
    /// No alert; the rule's action still applies.
    Silent,
    /// Alert (unless the action is `pass`) with this action instead of the rule's.
    Action(RuleAction),
}

/// `track`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Track {
    /// `by_src`.
    BySrc,
    /// `by_dst`.
    ByDst,
    /// `by_rule`.
    ByRule,
    /// `by_both`: the (src, dst) pair.
    ByBoth,
    /// `by_flow`.
    ByFlow,
}

/// A threshold or detection filter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ThresholdSpec {
    /// Type.
    pub kind: ThresholdType,
    /// Track.
    pub track: Track,
    /// `count`.
    pub count: u32,
    /// `seconds`.
    pub seconds: u32,
}

/// Why a threshold option or config line is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// A required setting is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// A setting has a bad value.
    #[error("invalid `{0}` value `{1}`")]
    Invalid(&'static str, String),
    /// A setting we do not know.
    #[error("unknown setting `{0}`")]
    Unknown(String),
}

/// Parse the value of `threshold:` (`detection_filter` when `df`).
pub fn parse_spec(value: &str, df: bool) -> Result<ThresholdSpec, ThresholdError> {
    let mut kind = if df {
        Some(ThresholdType::DetectionFilter)
    } else {
        None
    };
    let (mut track, mut count, mut seconds, mut multiplier) = (None, None, None, None);
    for part in value.split(',') {
        let mut it = part.split_whitespace();
        let (Some(k), v) = (it.next(), it.next()) else {
            continue;
        };
        let v = v.unwrap_or("");
        match k {
            "type" if !df => {
                kind = Some(match v {
                    "limit" => ThresholdType::Limit,
                    "threshold" => ThresholdType::Threshold,
                    "both" => ThresholdType::Both,
                    "backoff" => ThresholdType::Backoff(0),
                    _ => return Err(ThresholdError::Invalid("type", v.into())),
                })
            }
            "track" => track = Some(parse_track(v)?),
            "count" => {
                count = Some(
                    v.parse::<u32>()
                        .map_err(|_| ThresholdError::Invalid("count", v.into()))?,
                )
            }
            "seconds" => {
                seconds = Some(
                    v.parse::<u32>()
                        .map_err(|_| ThresholdError::Invalid("seconds", v.into()))?,
                )
            }
            "multiplier" => {
                multiplier = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|m| *m > 0)
                        .ok_or_else(|| ThresholdError::Invalid("multiplier", v.into()))?,
                )
            }
            other => return Err(ThresholdError::Unknown(other.into())),
        }
    }
    let kind = kind.ok_or(ThresholdError::Missing("type"))?;
    let track = track.ok_or(ThresholdError::Missing("track"))?;
    let count = count.ok_or(ThresholdError::Missing("count"))?;
    if kind == ThresholdType::Backoff(0) {
        // Suricata: backoff counts per flow, has a multiplier and no time window.
        if track != Track::ByFlow {
            return Err(ThresholdError::Invalid(
                "track",
                "backoff needs by_flow".into(),
            ));
        }
        if seconds.is_some() {
            return Err(ThresholdError::Unknown("seconds".into()));
        }
        if count == 0 {
            return Err(ThresholdError::Invalid("count", "0".into()));
        }
        let m = multiplier.ok_or(ThresholdError::Missing("multiplier"))?;
        return Ok(ThresholdSpec {
            kind: ThresholdType::Backoff(m),
            track,
            count,
            seconds: 0,
        });
    }
    if multiplier.is_some() {
        return Err(ThresholdError::Unknown("multiplier".into()));
    }
    Ok(ThresholdSpec {
        kind,
        track,
        count,
        seconds: seconds.ok_or(ThresholdError::Missing("seconds"))?,
    })
}

fn parse_track(v: &str) -> Result<Track, ThresholdError> {
    Ok(match v {
        "by_src" => Track::BySrc,
        "by_dst" => Track::ByDst,
        "by_rule" => Track::ByRule,
        "by_both" => Track::ByBoth,
        "by_flow" => Track::ByFlow,
        _ => return Err(ThresholdError::Invalid("track", v.into())),
    })
}

/// Which address a `suppress` line with `ip` looks at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SuppressTrack {
    /// No `track`: suppress every alert of the rule.
    All,
    /// `by_src`.
    BySrc,
    /// `by_dst`.
    ByDst,
    /// `by_either`.
    ByEither,
}

/// A `suppress` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppress {
    /// `gen_id` (0: any).
    pub gid: u32,
    /// `sig_id` (0: any).
    pub sid: u32,
    /// `track`.
    pub track: SuppressTrack,
    /// `ip` (any when absent).
    pub ip: AddrSet,
}

/// A `threshold` / `event_filter` line: replaces the rule's own threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdOverride {
    /// `gen_id` (0: any).
    pub gid: u32,
    /// `sig_id` (0: any).
    pub sid: u32,
    /// The threshold.
    pub spec: ThresholdSpec,
}

/// A parsed `threshold.config`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThresholdConfig {
    /// `suppress` lines.
    pub suppress: Vec<Suppress>,
    /// `threshold` and `event_filter` lines.
    pub thresholds: Vec<ThresholdOverride>,
}

/// A bad `threshold.config` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {directive}: {detail}")]
pub struct ThresholdConfigError {
    /// 1-based line.
    pub line: usize,
    /// `suppress`, `threshold`, ... or the unknown word.
    pub directive: String,
    /// What is wrong.
    pub detail: String,
}

impl ThresholdConfig {
    /// Parse a file's text. Every bad line is reported; good lines are kept.
    pub fn parse(text: &str, vars: &Vars) -> (ThresholdConfig, Vec<ThresholdConfigError>) {
        let mut cfg = ThresholdConfig::default();
        let mut errs = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (directive, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let err = |detail: String| ThresholdConfigError {
                line: i + 1,
                directive: directive.to_owned(),
                detail,
            };
            match directive {
                "suppress" => match parse_suppress(rest, vars) {
                    Ok(s) => cfg.suppress.push(s),
                    Err(e) => errs.push(err(e)),
                },
                "threshold" | "event_filter" => match parse_override(rest) {
                    Ok(t) => cfg.thresholds.push(t),
                    Err(e) => errs.push(err(e)),
                },
                "rate_filter" => match parse_rate(rest) {
                    Ok(t) => cfg.thresholds.push(t),
                    Err(e) => errs.push(err(e)),
                },
                _ => errs.push(err("unknown directive".into())),
            }
        }
        (cfg, errs)
    }

    /// Does a suppress line silence this alert?
    pub fn suppressed(&self, gid: u32, sid: u32, src: IpAddr, dst: IpAddr) -> bool {
        self.suppress.iter().any(|s| {
            (s.gid == 0 || s.gid == gid)
                && (s.sid == 0 || s.sid == sid)
                && match s.track {
                    SuppressTrack::All => true,
                    SuppressTrack::BySrc => s.ip.contains(src),
                    SuppressTrack::ByDst => s.ip.contains(dst),
                    SuppressTrack::ByEither => s.ip.contains(src) || s.ip.contains(dst),
                }
        })
    }

    /// The override for a rule, most specific first (exact sid, then sid 0).
    pub fn override_for(&self, gid: u32, sid: u32) -> Option<ThresholdSpec> {
        let exact = self
            .thresholds
            .iter()
            .find(|t| t.gid == gid && t.sid == sid);
        exact
            .or_else(|| {
                self.thresholds
                    .iter()
                    .find(|t| (t.gid == 0 || t.gid == gid) && t.sid == 0)
            })
            .map(|t| t.spec)
    }
}

fn kv(rest: &str) -> Vec<(&str, &str)> {
    rest.split(',')
        .filter_map(|p| {
            let p = p.trim();
            let (k, v) = p.split_once(char::is_whitespace)?;
            Some((k.trim(), v.trim()))
        })
        .collect()
}

fn ids(pairs: &[(&str, &str)]) -> Result<(u32, u32), String> {
    let get = |k: &str| -> Result<u32, String> {
        let v = pairs
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("missing `{k}`"))?;
        v.parse().map_err(|_| format!("invalid `{k}` value `{v}`"))
    };
    Ok((get("gen_id")?, get("sig_id")?))
}

fn parse_suppress(rest: &str, vars: &Vars) -> Result<Suppress, String> {
    let pairs = kv(rest);
    let (gid, sid) = ids(&pairs)?;
    let mut track = SuppressTrack::All;
    let mut ip = AddrSet::any();
    for (k, v) in &pairs {
        match *k {
            "gen_id" | "sig_id" => {}
            "track" => {
                track = match *v {
                    "by_src" => SuppressTrack::BySrc,
                    "by_dst" => SuppressTrack::ByDst,
                    "by_either" => SuppressTrack::ByEither,
                    _ => return Err(format!("invalid `track` value `{v}`")),
                }
            }
            "ip" => ip = vars.address(v).map_err(|e| format!("`ip`: {e}"))?,
            other => return Err(format!("unknown setting `{other}`")),
        }
    }
    if track != SuppressTrack::All && ip.is_any() && !pairs.iter().any(|(k, _)| *k == "ip") {
        return Err("`track` needs `ip`".into());
    }
    Ok(Suppress {
        gid,
        sid,
        track,
        ip,
    })
}

fn parse_override(rest: &str) -> Result<ThresholdOverride, String> {
    let pairs = kv(rest);
    let (gid, sid) = ids(&pairs)?;
    let spec_text: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| *k != "gen_id" && *k != "sig_id")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let spec = parse_spec(&spec_text.join(","), false).map_err(|e| e.to_string())?;
    Ok(ThresholdOverride { gid, sid, spec })
}

/// `rate_filter gen_id G, sig_id S, track T, count C, seconds N, new_action A, timeout T`.
fn parse_rate(rest: &str) -> Result<ThresholdOverride, String> {
    let pairs = kv(rest);
    let (gid, sid) = ids(&pairs)?;
    let (mut track, mut count, mut seconds, mut new_action, mut timeout) =
        (None, None, None, None, None);
    let num = |k: &str, v: &str| -> Result<u32, String> {
        v.parse().map_err(|_| format!("invalid `{k}` value `{v}`"))
    };
    for (k, v) in &pairs {
        match *k {
            "gen_id" | "sig_id" => {}
            "track" => track = Some(parse_track(v).map_err(|e| e.to_string())?),
            "count" => count = Some(num(k, v)?),
            "seconds" => seconds = Some(num(k, v)?),
            "timeout" => timeout = Some(num(k, v)?),
            "new_action" => {
                new_action = Some(match *v {
                    "alert" => RuleAction::Alert,
                    "drop" => RuleAction::Drop,
                    "reject" => RuleAction::Reject,
                    "pass" => RuleAction::Pass,
                    _ => return Err(format!("invalid `new_action` value `{v}`")),
                })
            }
            other => return Err(format!("unknown setting `{other}`")),
        }
    }
    let missing = |k: &str| format!("missing `{k}`");
    Ok(ThresholdOverride {
        gid,
        sid,
        spec: ThresholdSpec {
            kind: ThresholdType::Rate {
                new_action: new_action.ok_or_else(|| missing("new_action"))?,
                timeout: timeout.ok_or_else(|| missing("timeout"))?,
            },
            track: track.ok_or_else(|| missing("track"))?,
            count: count.ok_or_else(|| missing("count"))?,
            seconds: seconds.ok_or_else(|| missing("seconds"))?,
        },
    })
}

/// A counter window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    start: Timestamp,
    count: u32,
    started: bool,
    /// `backoff`: the match count that alerts next (0: not set yet).
    next: u32,
    /// `rate_filter`: when the new action took over, while it holds.
    action_since: Option<Timestamp>,
}

impl Window {
    /// Count a match at `now`; returns what it may do.
    pub fn hit(&mut self, spec: &ThresholdSpec, now: Timestamp) -> Decision {
        match spec.kind {
            ThresholdType::Backoff(m) => return self.backoff(spec.count, m),
            ThresholdType::Rate {
                new_action,
                timeout,
            } => return self.rate(spec, new_action, timeout, now),
            _ => {}
        }
        let in_window =
            self.started && now.since(self.start) <= u64::from(spec.seconds) * Timestamp::SECOND;
        if !in_window {
            self.started = true;
            self.start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        let alert = match spec.kind {
            ThresholdType::Limit => self.count <= spec.count,
            ThresholdType::Threshold => {
                if self.count >= spec.count {
                    self.count = 0;
                    true
                } else {
                    false
                }
            }
            ThresholdType::Both => self.count == spec.count,
            ThresholdType::DetectionFilter => self.count > spec.count,
            ThresholdType::Backoff(_) | ThresholdType::Rate { .. } => true,
        };
        if alert {
            Decision::Alert
        } else {
            Decision::Silent
        }
    }

    /// Suricata's `TYPE_BACKOFF`: alert on match `count`, then each time the count reaches
    /// the previous alert's times `multiplier` (saturating); silent once the count is
    /// `u32::MAX`.
    fn backoff(&mut self, count: u32, multiplier: u32) -> Decision {
        if self.next == 0 {
            self.next = count.max(1);
        }
        if self.count == u32::MAX {
            return Decision::Silent;
        }
        self.count += 1;
        if self.count == self.next {
            self.next = self.next.saturating_mul(multiplier);
            return Decision::Alert;
        }
        Decision::Silent
    }

    /// Suricata's `IsThresholdReached` for `rate_filter`: while the new action holds (until
    /// `timeout` seconds after it took over) every match takes it; otherwise matches are
    /// counted in a window of `seconds`, and the one that makes more than `count` switches
    /// to the new action.
    fn rate(
        &mut self,
        spec: &ThresholdSpec,
        new_action: RuleAction,
        timeout: u32,
        now: Timestamp,
    ) -> Decision {
        if let Some(since) = self.action_since {
            if now.since(since) <= u64::from(timeout) * Timestamp::SECOND {
                return Decision::Action(new_action);
            }
            self.action_since = None;
        }
        let in_window =
            self.started && now.since(self.start) < u64::from(spec.seconds) * Timestamp::SECOND;
        if !in_window {
            self.started = true;
            self.start = now;
            self.count = 1;
            return Decision::Alert;
        }
        self.count = self.count.saturating_add(1);
        if self.count > spec.count {
            self.action_since = Some(now);
            return Decision::Action(new_action);
        }
        Decision::Alert
    }

    fn expired(&self, spec: &ThresholdSpec, now: Timestamp) -> bool {
        let secs = match spec.kind {
            // No window: the entry is as old as the flow; by_flow entries never come here.
            ThresholdType::Backoff(_) => return false,
            ThresholdType::Rate { timeout, .. } => spec.seconds.max(timeout),
            _ => spec.seconds,
        };
        now.since(self.action_since.unwrap_or(self.start)) > u64::from(secs) * Timestamp::SECOND
    }
}

/// The key a threshold counts by (except `by_flow`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TrackKey {
    /// One address.
    Addr(IpAddr),
    /// A pair.
    Pair(IpAddr, IpAddr),
    /// The rule as a whole.
    Rule,
}

/// Host/rule-tracked threshold counters, one per worker (or shared behind a lock by the caller),
/// and the worker's other cross-flow rule state: the hostbits.
#[derive(Debug, Default)]
pub struct ThresholdState {
    map: HashMap<(u32, TrackKey), (Window, ThresholdSpec)>,
    overflows: u64,
    /// `hostbits`.
    pub hosts: super::hostbits::HostBits,
}

impl ThresholdState {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Matches let through because the table was full.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no counter is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Count a match of rule `rule_idx` tracked by `key`; returns what it may do.
    pub fn hit(
        &mut self,
        rule_idx: u32,
        key: TrackKey,
        spec: &ThresholdSpec,
        now: Timestamp,
    ) -> Decision {
        // by_both: one pair whichever way the packet goes.
        let key = match key {
            TrackKey::Pair(a, b) if b < a => TrackKey::Pair(b, a),
            k => k,
        };
        if self.map.len() >= MAX_THRESHOLD_ENTRIES && !self.map.contains_key(&(rule_idx, key)) {
            self.map.retain(|_, (w, s)| !w.expired(s, now));
            if self.map.len() >= MAX_THRESHOLD_ENTRIES {
                self.overflows = self.overflows.saturating_add(1);
                return Decision::Alert;
            }
        }
        let (w, s) = self
            .map
            .entry((rule_idx, key))
            .or_insert((Window::default(), *spec));
        *s = *spec;
        w.hit(spec, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs_micros(s, 0)
    }

    fn run(spec: &str, df: bool, times: &[u64]) -> Vec<bool> {
        let spec = parse_spec(spec, df).unwrap();
        let mut st = ThresholdState::new();
        let key = TrackKey::Addr("10.0.0.1".parse().unwrap());
        times
            .iter()
            .map(|&s| st.hit(0, key, &spec, t(s)) == Decision::Alert)
            .collect()
    }

    #[test]
    fn limit_threshold_both_df() {
        let times = [0, 1, 2, 3, 4, 5];
        assert_eq!(
            run(
                "type limit, track by_src, count 2, seconds 60",
                false,
                &times
            ),
            [true, true, false, false, false, false]
        );
        assert_eq!(
            run(
                "type threshold, track by_src, count 2, seconds 60",
                false,
                &times
            ),
            [false, true, false, true, false, true]
        );
        assert_eq!(
            run(
                "type both, track by_src, count 3, seconds 60",
                false,
                &times
            ),
            [false, false, true, false, false, false]
        );
        assert_eq!(
            run("track by_src, count 2, seconds 60", true, &times),
            [false, false, true, true, true, true]
        );
    }

    #[test]
    fn window_expires() {
        assert_eq!(
            run(
                "type limit, track by_src, count 1, seconds 10",
                false,
                &[0, 5, 10, 11, 12, 30]
            ),
            [true, false, false, true, false, true]
        );
    }

    #[test]
    fn bad_specs() {
        assert_eq!(
            parse_spec("type limit, track by_src, count 1", false),
            Err(ThresholdError::Missing("seconds"))
        );
        assert!(matches!(
            parse_spec("type sometimes, track by_src, count 1, seconds 1", false),
            Err(ThresholdError::Invalid("type", _))
        ));
    }

    #[test]
    fn config_file() {
        let text = "# c\nsuppress gen_id 1, sig_id 1000001, track by_src, ip 145.254.160.237\n\
                    suppress gen_id 1, sig_id 7\n\
                    threshold gen_id 1, sig_id 9, type limit, track by_dst, count 1, seconds 60\n\
                    event_filter gen_id 0, sig_id 0, type both, track by_src, count 5, seconds 1\n\
                    rate_filter gen_id 1, sig_id 2, track by_rule, count 1, seconds 1, new_action drop, timeout 5\n\
                    bogus\nsuppress gen_id 1\n";
        let (cfg, errs) = ThresholdConfig::parse(text, &Vars::default());
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].directive, "bogus");
        assert_eq!(errs[1].line, 8);
        assert_eq!(
            cfg.override_for(1, 2)
                .map(|s| (s.kind, s.track, s.count, s.seconds)),
            Some((
                ThresholdType::Rate {
                    new_action: RuleAction::Drop,
                    timeout: 5
                },
                Track::ByRule,
                1,
                1
            ))
        );
        for bad in [
            "rate_filter gen_id 1, sig_id 2, track by_rule, count 1, seconds 1, timeout 5",
            "rate_filter gen_id 1, sig_id 2, track by_rule, count 1, seconds 1, new_action sdrop, timeout 5",
            "rate_filter gen_id 1, sig_id 2, track by_rule, count 1, new_action drop, timeout 5",
        ] {
            assert_eq!(
                ThresholdConfig::parse(bad, &Vars::default()).1.len(),
                1,
                "{bad}"
            );
        }
        let a: IpAddr = "145.254.160.237".parse().unwrap();
        let b: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(cfg.suppressed(1, 1000001, a, b));
        assert!(!cfg.suppressed(1, 1000001, b, a));
        assert!(cfg.suppressed(1, 7, b, b));
        assert_eq!(cfg.override_for(1, 9).unwrap().kind, ThresholdType::Limit);
        assert_eq!(cfg.override_for(1, 10).unwrap().kind, ThresholdType::Both);
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// One `key value` setting of a config line, from the file's own words and some others.
        fn setting() -> impl Strategy<Value = String> {
            const KEYS: [&str; 11] = [
                "gen_id",
                "sig_id",
                "track",
                "ip",
                "type",
                "count",
                "seconds",
                "new_action",
                "timeout",
                "multiplier",
                "bogus",
            ];
            let key = proptest::sample::select(&KEYS[..]);
            let value = prop_oneof![
                Just("1".to_owned()),
                Just("0".to_owned()),
                Just("4294967296".to_owned()),
                Just("by_src".to_owned()),
                Just("by_either".to_owned()),
                Just("limit".to_owned()),
                Just("backoff".to_owned()),
                Just("drop".to_owned()),
                Just("pass".to_owned()),
                Just("10.0.0.0/8".to_owned()),
                Just("[1.2.3.4,!$HOME_NET]".to_owned()),
                Just("$NOPE".to_owned()),
                "[ -~]{0,8}",
            ];
            (key, value).prop_map(|(k, v)| format!("{k} {v}"))
        }

        /// A line: a directive (known or not) and its settings, a comment, or a blank.
        fn line() -> impl Strategy<Value = String> {
            const DIRECTIVES: [&str; 6] = [
                "suppress",
                "threshold",
                "event_filter",
                "rate_filter",
                "config",
                "",
            ];
            let directive = proptest::sample::select(&DIRECTIVES[..]);
            prop_oneof![
                8 => (directive, proptest::collection::vec(setting(), 0..6))
                    .prop_map(|(d, s)| format!("{d} {}", s.join(", "))),
                1 => Just("# a comment, track by_src".to_owned()),
                1 => Just("   ".to_owned()),
            ]
        }

        fn track_word(t: Track) -> &'static str {
            match t {
                Track::BySrc => "by_src",
                Track::ByDst => "by_dst",
                Track::ByRule => "by_rule",
                Track::ByBoth => "by_both",
                Track::ByFlow => "by_flow",
            }
        }

        proptest! {
            /// Nothing is lost silently: each line that is neither blank nor a comment is kept
            /// as a suppress or threshold entry or reported with its own line number.
            #[test]
            fn every_line_kept_or_reported(lines in proptest::collection::vec(line(), 0..24)) {
                let text = lines.join("\n");
                let (cfg, errs) = ThresholdConfig::parse(&text, &Vars::default());
                let directive_lines: Vec<usize> = lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty() && !l.trim().starts_with('#'))
                    .map(|(i, _)| i + 1)
                    .collect();
                prop_assert_eq!(
                    cfg.suppress.len() + cfg.thresholds.len() + errs.len(),
                    directive_lines.len()
                );
                for e in &errs {
                    prop_assert!(directive_lines.contains(&e.line), "{:?}", e);
                }
            }

            /// A well-formed line, with its settings in any order, reads back as the values it
            /// was written from.
            #[test]
            fn written_lines_read_back(
                gid in any::<u32>(), sid in any::<u32>(),
                kind in prop_oneof![
                    Just(ThresholdType::Limit), Just(ThresholdType::Threshold), Just(ThresholdType::Both)
                ],
                track in prop_oneof![
                    Just(Track::BySrc), Just(Track::ByDst), Just(Track::ByRule),
                    Just(Track::ByBoth), Just(Track::ByFlow)
                ],
                count in any::<u32>(), seconds in any::<u32>(),
                net in (any::<[u8; 4]>(), 0u8..=32),
                order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
            ) {
                let kind_word = match kind {
                    ThresholdType::Limit => "limit",
                    ThresholdType::Threshold => "threshold",
                    _ => "both",
                };
                let settings = [
                    format!("gen_id {gid}"),
                    format!("sig_id {sid}"),
                    format!("type {kind_word}"),
                    format!("track {}", track_word(track)),
                    format!("count {count}"),
                    format!("seconds {seconds}"),
                ];
                let shuffled: Vec<&str> = order.iter().filter_map(|&i| settings.get(i)).map(String::as_str).collect();
                let ip = std::net::Ipv4Addr::from(net.0);
                let text = format!(
                    "threshold {}\nsuppress gen_id {gid}, sig_id {sid}, track by_dst, ip {ip}/{}\n",
                    shuffled.join(", "),
                    net.1
                );
                let (cfg, errs) = ThresholdConfig::parse(&text, &Vars::default());
                prop_assert!(errs.is_empty(), "{:?}", errs);
                prop_assert_eq!(
                    cfg.thresholds.first().map(|t| (t.gid, t.sid, t.spec)),
                    Some((gid, sid, ThresholdSpec { kind, track, count, seconds }))
                );
                let s = cfg.suppress.first();
                prop_assert_eq!(s.map(|s| (s.gid, s.sid, s.track)), Some((gid, sid, SuppressTrack::ByDst)));
                // The suppressed destinations are the prefix's, and only those: a destination
                // that differs in the prefix's last bit is not, even with a source inside it.
                let mask = u32::MAX.checked_shl(32 - u32::from(net.1)).unwrap_or(0);
                let inside = IpAddr::from(std::net::Ipv4Addr::from(u32::from(ip) & mask));
                let any_src = IpAddr::from([192, 0, 2, 1]);
                prop_assert!(cfg.suppressed(gid, sid, any_src, inside));
                if let Some(bit) = 1u32.checked_shl(32 - u32::from(net.1)).filter(|_| net.1 > 0) {
                    let outside = IpAddr::from(std::net::Ipv4Addr::from((u32::from(ip) & mask) ^ bit));
                    prop_assert!(!cfg.suppressed(gid, sid, inside, outside));
                }
            }
        }
    }
}
