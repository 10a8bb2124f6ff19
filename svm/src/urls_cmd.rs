//! `svm urls check FILE...` and `svm urls lookup --url-list CATEGORY=FILE... ADDRESS...`: the
//! web address lists as the engine reads them (docs/web-addresses.md).
//!
//! `check` exit codes: 0 every file read and compiled with no unreadable line; 4 an unreadable
//! line or a list refused (it names a public suffix); 2 a file could not be read.
//! `lookup` prints one line per address, `ADDRESS<TAB>match<TAB>FILE<TAB>CATEGORY<TAB>ENTRY`,
//! `ADDRESS<TAB>trusted<TAB>ENTRY` or `ADDRESS<TAB>no match`, and exits 0; unreadable lines of
//! a list are reported on standard error and the rest of the list is used; a list that cannot
//! be read or is refused ends the command (2 or 4) before any address is looked up.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use webaddr::{AddressSetBuilder, Category, EntryKind, Format, ListInfo, Verdict};

use crate::cli::Exit;

/// `svm urls ...`
#[derive(Debug, Subcommand)]
pub enum UrlsCommand {
    /// Read address list files and report entries, unreadable lines and the compiled size.
    Check(CheckArgs),
    /// Look addresses (URLs, host names, IP addresses) up in lists: which list and entry match.
    Lookup(LookupArgs),
}

/// `svm urls check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// List files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Line format: `auto` (domains, URLs, hosts-file and adblock lines) or `dataset`
    /// (Suricata dataset string file, base64 a line).
    #[arg(long, default_value = "auto")]
    pub format: Format,
}

/// `svm urls lookup` arguments.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Lists as `CATEGORY=FILE` (malware, phishing, scam, custom or another name); repeatable,
    /// and several may follow one `--url-list`. The first list given wins when two name the
    /// same entry.
    #[arg(long = "url-list", value_name = "CATEGORY=FILE", num_args = 1.., action = clap::ArgAction::Append, required = true)]
    pub lists: Vec<String>,
    /// Trusted addresses (never blocked; they beat every list), in list file format.
    #[arg(long = "trusted", value_name = "FILE")]
    pub trusted: Vec<PathBuf>,
    /// Line format of the list files (see `svm urls check --help`).
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// Addresses: URLs (`http://host/path?query`), `host/path`, host names or IP addresses.
    /// They may follow the lists of the last `--url-list` directly: the first value that is not
    /// `CATEGORY=FILE` starts the addresses (or put `--` before them).
    pub addresses: Vec<String>,
}

/// Run `svm urls ...`; returns the exit code.
pub fn run(cmd: &UrlsCommand) -> Exit {
    match cmd {
        UrlsCommand::Check(args) => check(args),
        UrlsCommand::Lookup(args) => lookup(args),
    }
}

fn check(args: &CheckArgs) -> Exit {
    let mut code = Exit::Ok;
    for file in &args.files {
        let name = file.display();
        let loaded = match webaddr::load_file(file, args.format) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{name}: {e}");
                code = Exit::General;
                continue;
            }
        };
        let p = &loaded.parsed;
        for e in &p.errors {
            eprintln!("{name}:{}: {}", e.line, e.kind);
        }
        if !p.errors.is_empty() && code == Exit::Ok {
            code = Exit::Syntax;
        }
        let t0 = Instant::now();
        let mut b = AddressSetBuilder::new();
        let info = ListInfo {
            id: name.to_string(),
            category: Category::Custom,
            version: loaded.version.clone(),
        };
        if let Err(e) = b.add_list(info, p) {
            eprintln!("{name}: refused: {e}");
            if code == Exit::Ok {
                code = Exit::Syntax;
            }
            continue;
        }
        let set = b.build();
        let elapsed = t0.elapsed();
        println!(
            "{name}: {} lines, {} entries ({} domains, {} hosts, {} URLs, {} IP hosts), {} unreadable lines, {} ignored lines; version {}",
            p.lines,
            p.entries.len(),
            p.count(EntryKind::Domain),
            p.count(EntryKind::Host),
            p.count(EntryKind::Url),
            p.count(EntryKind::Ip),
            p.errors.len(),
            p.ignored_lines,
            loaded.version,
        );
        let per_entry = if p.entries.is_empty() {
            0.0
        } else {
            usize_f64(set.heap_bytes()) / usize_f64(p.entries.len())
        };
        println!(
            "{name}: compiled {} bytes ({:.1} bytes an entry, {} records) in {:.3} s",
            set.heap_bytes(),
            per_entry,
            set.records(),
            elapsed.as_secs_f64()
        );
    }
    code
}

fn usize_f64(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}

/// Whether a value of `--url-list` reads as `CATEGORY=FILE` (a category is letters, digits,
/// `-` and `_`), not as an address that follows the lists.
fn is_list_spec(value: &str) -> bool {
    value.split_once('=').is_some_and(|(c, f)| {
        !c.is_empty()
            && !f.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Read a list for `lookup`: its unreadable lines go to standard error and the rest is used; an
/// unreadable file is the exit code.
fn load_for_lookup(path: &Path, format: Format) -> Result<webaddr::LoadedList, Exit> {
    let name = path.display();
    let loaded = webaddr::load_file(path, format).map_err(|e| {
        eprintln!("{name}: {e}");
        Exit::General
    })?;
    for e in &loaded.parsed.errors {
        eprintln!("{name}:{}: {} (line not used)", e.line, e.kind);
    }
    Ok(loaded)
}

fn lookup(args: &LookupArgs) -> Exit {
    // `--url-list a=x b=y ADDRESS...`: clap gives the addresses to the option; take them back.
    let first_address = args
        .lists
        .iter()
        .position(|v| !is_list_spec(v))
        .unwrap_or(args.lists.len());
    let (lists, trailing) = args.lists.split_at(first_address);
    let addresses: Vec<&String> = trailing.iter().chain(&args.addresses).collect();
    if lists.is_empty() || addresses.is_empty() {
        eprintln!("svm urls lookup: expected --url-list CATEGORY=FILE... and at least one ADDRESS");
        return Exit::MissingArgument;
    }
    let mut b = AddressSetBuilder::new();
    for spec in lists {
        let Some((category, file)) = spec.split_once('=') else {
            eprintln!("svm urls lookup: --url-list {spec}: expected CATEGORY=FILE");
            return Exit::Syntax;
        };
        let category = match category.parse::<Category>() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("svm urls lookup: --url-list {spec}: {e}");
                return Exit::Syntax;
            }
        };
        let loaded = match load_for_lookup(file.as_ref(), args.format) {
            Ok(l) => l,
            Err(code) => return code,
        };
        let info = ListInfo {
            id: file.to_string(),
            category,
            version: loaded.version,
        };
        if let Err(e) = b.add_list(info, &loaded.parsed) {
            eprintln!("{file}: refused: {e}");
            return Exit::Syntax;
        }
    }
    for file in &args.trusted {
        let name = file.display();
        let loaded = match load_for_lookup(file, args.format) {
            Ok(l) => l,
            Err(code) => return code,
        };
        if let Err(e) = b.add_trusted(&name.to_string(), &loaded.parsed) {
            eprintln!("{name}: refused: {e}");
            return Exit::Syntax;
        }
    }
    let set = b.build();
    for address in addresses {
        match set.lookup_url(address.as_bytes()) {
            Verdict::Listed(m) => println!(
                "{address}\tmatch\t{}\t{}\t{}",
                m.list.id, m.list.category, m.entry
            ),
            Verdict::Trusted { entry } => println!("{address}\ttrusted\t{entry}"),
            Verdict::NoMatch => println!("{address}\tno match"),
        }
    }
    Exit::Ok
}
