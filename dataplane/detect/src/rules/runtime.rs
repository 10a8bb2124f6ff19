//! The rule engine's run-time errors, counted process-wide (every worker, and replay's): what
//! makes a loaded rule inspect less than it says, found only on traffic.
//!
//! - **inspection limit**: a buffer chain that used up its [`super::detect::MAX_INSPECT_STEPS`]
//!   (Suricata's `inspection_recursion_limit`): the rule gives up on that buffer, so a match
//!   further in is missed. A crafted buffer (thousands of candidate positions for a relative
//!   chain) reaches it.
//! - **regex size limit**: a `pcre` whose compiled form passes the size limits
//!   ([`super::pcre::PCRE_SIZE_LIMIT`]) when it is first used: the rule matches nothing from
//!   then on. Counted once per expression.
//!
//! Only the count is kept: an increment when it happens (rare), nothing on the way that does
//! not hit a limit. The daemon exports them (`svm_rule_runtime_errors_total{kind}`) and a
//! database set whose rules make them rise fails its probation (docs/databases.md).

use std::sync::atomic::{AtomicU64, Ordering};

static INSPECT_LIMIT: AtomicU64 = AtomicU64::new(0);
static REGEX_SIZE_LIMIT: AtomicU64 = AtomicU64::new(0);

/// The run-time errors since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeErrors {
    /// Buffer chains that used up their inspection steps.
    pub inspect_limit: u64,
    /// Expressions that did not compile within the size limits at first use.
    pub regex_size_limit: u64,
}

impl RuntimeErrors {
    /// Every kind.
    pub fn total(self) -> u64 {
        self.inspect_limit.saturating_add(self.regex_size_limit)
    }
}

/// The counts so far.
pub fn runtime_errors() -> RuntimeErrors {
    RuntimeErrors {
        inspect_limit: INSPECT_LIMIT.load(Ordering::Relaxed),
        regex_size_limit: REGEX_SIZE_LIMIT.load(Ordering::Relaxed),
    }
}

pub(crate) fn inspect_limit_hit() {
    INSPECT_LIMIT.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn regex_size_limit_hit() {
    REGEX_SIZE_LIMIT.fetch_add(1, Ordering::Relaxed);
}
