//! The `db:` section: the signed application databases the daemon installs, checks for on a
//! mirror and swaps in (docs/databases.md, [`crate::daemon::dbsync`]).

use std::path::PathBuf;

use super::reader::Mapping;

use super::DbSettings;
use super::files::Need;
use super::reader::Reader;

/// Default time between two checks of the mirror: an hour.
const DEFAULT_INTERVAL_SECS: u64 = 3600;
/// Default random delay added to each check, so appliances do not poll the mirror in step.
const DEFAULT_JITTER_SECS: u64 = 300;
/// Default cap on a downloaded bundle: ET Open with every shared list is well under 100 MiB.
const DEFAULT_MAX_BUNDLE: u64 = 512 << 20;
/// Default time for one download.
const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// Default probation of a set just swapped in: a minute of traffic shows a rule set that
/// floods alerts or drops everything, and a worker that dies on it.
const DEFAULT_PROBATION_SECS: u64 = 60;
/// Default alert rate bound in probation: ten times the rate before the swap ...
const DEFAULT_ALERT_RATE_FACTOR: u64 = 10;
/// ... and above 50 alerts a second (a quiet network's jump from 0 to a few alerts is normal).
const DEFAULT_ALERT_RATE_FLOOR: u64 = 50;

/// `db:`; `state_dir` gives the default `dir` (`STATE_DIR/db`).
pub(super) fn read(
    r: &mut Reader,
    m: &mut Mapping,
    state_dir: Option<&PathBuf>,
) -> Option<DbSettings> {
    let mut d = r.opt_section(m, "db")?;
    let p = "db";
    let dir = r.string(&mut d, "dir", "db.dir").map(PathBuf::from);
    let root = r.string(&mut d, "root", "db.root").map(PathBuf::from);
    let mirror = r.string(&mut d, "mirror", "db.mirror");
    if let Some(u) = &mirror
        && !u.starts_with("https://")
    {
        r.issue("db.mirror", "must be an https:// URL");
    }
    let ca = r
        .file(&mut d, "ca", "db.ca", Need::Certs)
        .map(PathBuf::from);
    if mirror.is_some() && ca.is_none() {
        r.issue(
            "db.ca",
            "required with db.mirror: the CA of the mirror's certificate",
        );
    }
    let interval_secs = r
        .uint(&mut d, "interval_secs", "db.interval_secs", 1, 7 * 86_400)
        .unwrap_or(DEFAULT_INTERVAL_SECS);
    let jitter_secs = r
        .uint(&mut d, "jitter_secs", "db.jitter_secs", 0, 86_400)
        .unwrap_or(DEFAULT_JITTER_SECS);
    let retry_min_secs = r
        .uint(&mut d, "retry_min_secs", "db.retry_min_secs", 1, 86_400)
        .unwrap_or(30);
    let max_bundle_bytes = r
        .uint(
            &mut d,
            "max_bundle_bytes",
            "db.max_bundle_bytes",
            1 << 10,
            16 << 30,
        )
        .unwrap_or(DEFAULT_MAX_BUNDLE);
    let timeout_secs = r
        .uint(&mut d, "timeout_secs", "db.timeout_secs", 1, 3600)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let probation_secs = r
        .uint(&mut d, "probation_secs", "db.probation_secs", 0, 86_400)
        .unwrap_or(DEFAULT_PROBATION_SECS);
    let alert_rate_factor = r
        .uint(
            &mut d,
            "alert_rate_factor",
            "db.alert_rate_factor",
            1,
            1_000_000,
        )
        .unwrap_or(DEFAULT_ALERT_RATE_FACTOR);
    let alert_rate_floor = r
        .uint(
            &mut d,
            "alert_rate_floor",
            "db.alert_rate_floor",
            0,
            100_000_000,
        )
        .unwrap_or(DEFAULT_ALERT_RATE_FLOOR);
    r.unknown(&d, p);
    let dir = dir.or_else(|| state_dir.map(|s| s.join("db")))?;
    Some(DbSettings {
        dir,
        root,
        mirror: mirror.map(|u| u.trim_end_matches('/').to_owned()),
        ca,
        interval_secs,
        jitter_secs,
        retry_min_secs,
        max_bundle_bytes,
        timeout_secs,
        probation_secs,
        alert_rate_factor,
        alert_rate_floor,
    })
}
