//! The web address lists the engine runs with: `svm replay --url-list CATEGORY=FILE...`, the
//! daemon configuration's `web_address_scan.url_lists`, and the policy's own `url_lists`,
//! compiled with the policy's trusted addresses into one [`AddressSet`] every worker shares.
//!
//! Lists of a category the policy's `categories` leaves out are not compiled. An unreadable line
//! of a list is reported (file and line) and the rest of the list is used, as `svm urls lookup`
//! does; a file that cannot be read, or a list refused because it names a public suffix, fails
//! the whole load with its configuration key, so a reload keeps the running set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use webaddr::{AddressSet, AddressSetBuilder, Category, Format, ListInfo};

/// One list file to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSpec {
    /// Its category.
    pub category: String,
    /// The file.
    pub path: PathBuf,
    /// Where it was named (`--url-list`, `web_address_scan.url_lists[2]`), for problems.
    pub key: String,
}

impl ListSpec {
    /// Read `CATEGORY=FILE`.
    pub fn parse(spec: &str, key: String) -> Result<ListSpec, String> {
        let Some((category, file)) = spec.split_once('=') else {
            return Err(format!("{key}: {spec:?}: expected CATEGORY=FILE"));
        };
        category
            .parse::<Category>()
            .map_err(|e| format!("{key}: {spec:?}: {e}"))?;
        if file.is_empty() {
            return Err(format!("{key}: {spec:?}: expected CATEGORY=FILE"));
        }
        Ok(ListSpec {
            category: category.to_ascii_lowercase(),
            path: PathBuf::from(file),
            key,
        })
    }
}

/// The lists a policy adds, with their policy keys.
pub fn policy_specs(w: &policy::WebAddressScan) -> Vec<ListSpec> {
    w.url_lists
        .iter()
        .enumerate()
        .map(|(i, l)| ListSpec {
            category: l.category.clone(),
            path: PathBuf::from(&l.path),
            key: format!("web_address_scan.url_lists[{i}]"),
        })
        .collect()
}

/// The policy's block page template, checked as the block page builder reads it (placeholders
/// known and closed); the problem with its policy path.
pub fn check_block_page(w: &policy::WebAddressScan) -> Option<policy::PolicyError> {
    let text = w.block_page.as_deref()?;
    dataplane::blockpage::Template::parse(text)
        .err()
        .map(|e| policy::PolicyError {
            path: "web_address_scan.block_page".into(),
            message: e.to_string(),
        })
}

/// A compiled set and what went into it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The set the workers share.
    pub set: Arc<AddressSet>,
    /// Lists compiled.
    pub lists: usize,
    /// Entries compiled.
    pub entries: usize,
    /// Lists left out because the policy's `categories` does not name theirs.
    pub left_out: Vec<String>,
    /// Unreadable lines (`FILE:LINE: reason`), not used.
    pub warnings: Vec<String>,
    /// Seconds spent reading and compiling.
    pub seconds: f64,
}

impl Loaded {
    /// One line for logs and summaries.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "web address lists: {} lists, {} entries in {:.3} s",
            self.lists, self.entries, self.seconds
        );
        if !self.warnings.is_empty() {
            s.push_str(&format!(
                ", {} unreadable lines not used",
                self.warnings.len()
            ));
        }
        if !self.left_out.is_empty() {
            s.push_str(&format!(
                "; left out (category not in the policy's categories): {}",
                self.left_out.join(", ")
            ));
        }
        s
    }
}

/// Read and compile `specs` with the policy's categories and trusted addresses; every problem
/// (file unreadable, list refused) with its key.
pub fn load(specs: &[ListSpec], w: &policy::WebAddressScan) -> Result<Loaded, Vec<String>> {
    let t0 = Instant::now();
    let mut b = AddressSetBuilder::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut left_out = Vec::new();
    let (mut lists, mut entries) = (0, 0);
    for spec in specs {
        if !w.applies_to(&spec.category) {
            left_out.push(format!("{}={}", spec.category, spec.path.display()));
            continue;
        }
        let name = spec.path.display().to_string();
        let loaded = match webaddr::load_file(&spec.path, Format::Auto) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("{}: {name}: {e}", spec.key));
                continue;
            }
        };
        warnings.extend(
            loaded
                .parsed
                .errors
                .iter()
                .map(|e| format!("{name}:{}: {} (line not used)", e.line, e.kind)),
        );
        let Ok(category) = spec.category.parse::<Category>() else {
            problems.push(format!("{}: bad category {:?}", spec.key, spec.category));
            continue;
        };
        let info = ListInfo {
            id: name.clone(),
            category,
            version: loaded.version,
        };
        entries += loaded.parsed.entries.len();
        if let Err(e) = b.add_list(info, &loaded.parsed) {
            problems.push(format!("{}: refused: {e}", spec.key));
            continue;
        }
        lists += 1;
    }
    if !w.trusted.is_empty() {
        let text = w.trusted.join("\n");
        let parsed = webaddr::parse_list(text.as_bytes(), Format::Auto);
        if let Err(e) = b.add_trusted("web_address_scan.trusted", &parsed) {
            problems.push(format!("web_address_scan.trusted: {e}"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Loaded {
        set: Arc::new(b.build()),
        lists,
        entries,
        left_out,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_trusted_and_problems() {
        let d = tempfile::tempdir().unwrap();
        let mal = d.path().join("mal.txt");
        std::fs::write(&mal, "bad.example\nnot a host!\n").unwrap();
        let ph = d.path().join("ph.txt");
        std::fs::write(&ph, "phish.example\n").unwrap();
        let specs = vec![
            ListSpec::parse(&format!("malware={}", mal.display()), "--url-list".into()).unwrap(),
            ListSpec::parse(&format!("phishing={}", ph.display()), "--url-list".into()).unwrap(),
        ];
        let mut w = policy::WebAddressScan {
            trusted: vec!["good.bad.example".into()],
            ..Default::default()
        };
        let l = load(&specs, &w).unwrap();
        assert_eq!((l.lists, l.entries), (2, 2));
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.set.lookup_host(b"x.bad.example").is_listed());
        assert!(matches!(
            l.set.lookup_host(b"a.good.bad.example"),
            webaddr::Verdict::Trusted { .. }
        ));
        w.categories = vec!["phishing".into()];
        let l = load(&specs, &w).unwrap();
        assert_eq!(l.lists, 1);
        assert!(!l.set.lookup_host(b"bad.example").is_listed());
        assert!(l.set.lookup_host(b"phish.example").is_listed());
        assert_eq!(l.left_out.len(), 1);

        let gone = vec![ListSpec {
            category: "malware".into(),
            path: d.path().join("gone.txt"),
            key: "web_address_scan.url_lists[0]".into(),
        }];
        let e = load(&gone, &policy::WebAddressScan::default()).unwrap_err();
        assert!(e[0].starts_with("web_address_scan.url_lists[0]: "), "{e:?}");
        assert!(ListSpec::parse("malware", "--url-list".into()).is_err());
        let w = policy::WebAddressScan {
            block_page: Some("<p>{{adress}}</p>".into()),
            ..Default::default()
        };
        let e = check_block_page(&w).unwrap();
        assert_eq!(e.path, "web_address_scan.block_page");
        assert!(e.message.contains("adress"), "{}", e.message);
        assert!(ListSpec::parse("Bad Cat=x", "--url-list".into()).is_err());
    }
}
