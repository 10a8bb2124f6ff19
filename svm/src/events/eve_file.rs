//! EVE JSON lines in a file that rotates by size: `eve.json` -> `eve.json.1` -> ... ->
//! `eve.json.<keep>` (the oldest is deleted).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::record::Record;

/// A size-rotated EVE file.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    written: u64,
    // Raised by SIGHUP: open the path again before the next write (logrotate renamed it).
    hup: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl RotatingFile {
    /// Append to `path`, rotating when a write would take it past `max_bytes`, keeping `keep`
    /// rotated files.
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        let written = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        RotatingFile {
            path,
            max_bytes,
            keep,
            file: None,
            written,
            hup: None,
        }
    }

    /// Open the path again after every SIGHUP, so that after an outside rotation (logrotate's
    /// rename) the events go to a new file at the configured path.
    pub fn reopen_on_sighup(mut self) -> std::io::Result<Self> {
        let hup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, std::sync::Arc::clone(&hup))?;
        self.hup = Some(hup);
        Ok(self)
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(self.rotated(self.keep)).or_else(ignore_missing)?;
            for n in (1..self.keep).rev() {
                std::fs::rename(self.rotated(n), self.rotated(n + 1)).or_else(ignore_missing)?;
            }
            std::fs::rename(&self.path, self.rotated(1)).or_else(ignore_missing)?;
        }
        self.written = 0;
        Ok(())
    }

    /// Append one event as a line.
    pub fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        if self
            .hup
            .as_ref()
            .is_some_and(|h| h.swap(false, std::sync::atomic::Ordering::Relaxed))
        {
            self.file = None;
            self.written = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        }
        let mut line = serde_json::to_vec(&rec.value).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&line)?;
        }
        self.written += line.len() as u64;
        Ok(())
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::record::Severity;
    use dataplane::time::Timestamp;

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        let mut f = RotatingFile::new(path.clone(), 300, 2);
        for _ in 0..10 {
            let r = Record::new(Timestamp(0), "x", Severity::Info, serde_json::Map::new());
            f.write(&r).unwrap();
        }
        assert!(path.exists());
        assert!(dir.path().join("eve.json.1").exists());
        assert!(dir.path().join("eve.json.2").exists());
        assert!(!dir.path().join("eve.json.3").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 300);
    }
    #[test]
    fn a_sighup_after_a_rename_opens_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        let mut f = RotatingFile::new(path.clone(), u64::MAX, 0)
            .reopen_on_sighup()
            .unwrap();
        let rec = |t: &str| Record::new(Timestamp(0), t, Severity::Info, serde_json::Map::new());
        f.write(&rec("before")).unwrap();
        std::fs::rename(&path, dir.path().join("eve.json.1")).unwrap();
        // Without the signal the open file (now eve.json.1) is kept.
        f.write(&rec("renamed")).unwrap();
        assert!(!path.exists());
        signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
        f.write(&rec("after")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("eve.json.1")).unwrap();
        assert!(
            new.contains("\"after\"") && !new.contains("before"),
            "{new}"
        );
        assert!(
            old.contains("\"before\"") && old.contains("\"renamed\""),
            "{old}"
        );
    }
}
