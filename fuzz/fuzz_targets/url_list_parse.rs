//! Fuzz the web address list reader (`webaddr::parse_list`, both formats) and the set compiled
//! from it: no panic; every line is an entry, an ignored line or an error with its number
//! (nothing is lost silently); a list that compiles finds each of its own entries again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webaddr::{AddressSetBuilder, Category, EntryKind, Format, ListInfo, Verdict, parse_list};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Auto, Format::SuricataDataset] {
        let p = parse_list(data, format);
        let mut seen: Vec<usize> = p.entries.iter().map(|e| e.line).collect();
        seen.extend(p.errors.iter().map(|e| e.line));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len() + p.ignored_lines, p.lines, "a line was lost");
        assert!(seen.iter().all(|&l| l >= 1 && l <= p.lines));
        let mut b = AddressSetBuilder::new();
        let info = ListInfo {
            id: "fuzz".into(),
            category: Category::Custom,
            version: "0".into(),
        };
        if b.add_list(info, &p).is_err() {
            continue;
        }
        let set = b.build();
        for e in &p.entries {
            let v = match e.kind {
                EntryKind::Url => set.lookup_url(e.text.as_bytes()),
                _ => set.lookup_host(e.text.as_bytes()),
            };
            assert!(matches!(v, Verdict::Listed(_)), "{e:?} not found: {v:?}");
        }
    }
});
