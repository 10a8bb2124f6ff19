//! `svm urls check` and `svm urls lookup` (issue 17) on list files written here, in every line
//! format, and the lookup interface other checks rely on:
//! `ADDRESS<TAB>match<TAB>FILE<TAB>CATEGORY<TAB>ENTRY` or `ADDRESS<TAB>no match`, exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

use svm_e2e::{TempDir, svm_bin};

fn svm(args: &[&str]) -> Output {
    Command::new(svm_bin()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.path(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn lookup_prints_one_line_per_address() {
    let dir = TempDir::new("urls-lookup");
    let mal = write(
        &dir,
        "mal.txt",
        "# URLhaus-like\nevil.example\ngithub.com/bad/raw/x.exe\n1.2.3.4\nxn--bcher-kva.de\n",
    );
    let phish = write(
        &dir,
        "phish.hosts",
        "127.0.0.1 localhost\n0.0.0.0 login.bank.example\n",
    );
    let ads = write(
        &dir,
        "block.txt",
        "! adblock\n||tracker.example^\n||cdn.example/kit/\n",
    );
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("malware={mal}"),
        &format!("phishing={phish}"),
        "--url-list",
        &format!("custom={ads}"),
        "http://A.B.EVIL.example:8080/x?y#z",
        "https://github.com/bad//raw/./x.exe?dl=1",
        "github.com",
        "http://0x01020304/",
        "www.bücher.de",
        "login.bank.example",
        "www.login.bank.example",
        "https://cdn.example/kit/v2/a.js",
        "tracker.example",
        "example.org",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = [
        format!("http://A.B.EVIL.example:8080/x?y#z\tmatch\t{mal}\tmalware\tevil.example"),
        format!(
            "https://github.com/bad//raw/./x.exe?dl=1\tmatch\t{mal}\tmalware\tgithub.com/bad/raw/x.exe"
        ),
        "github.com\tno match".to_string(),
        format!("http://0x01020304/\tmatch\t{mal}\tmalware\t1.2.3.4"),
        format!("www.bücher.de\tmatch\t{mal}\tmalware\txn--bcher-kva.de"),
        format!("login.bank.example\tmatch\t{phish}\tphishing\tlogin.bank.example"),
        "www.login.bank.example\tno match".to_string(),
        format!("https://cdn.example/kit/v2/a.js\tmatch\t{ads}\tcustom\tcdn.example/kit/"),
        format!("tracker.example\tmatch\t{ads}\tcustom\ttracker.example"),
        "example.org\tno match".to_string(),
    ];
    let got: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(got, want);

    // Trusted addresses beat the lists; `--` also ends the lists.
    let trusted = write(&dir, "trusted.txt", "safe.evil.example\n");
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("malware={mal}"),
        "--trusted",
        &trusted,
        "--",
        "x.safe.evil.example",
        "evil.example",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!(
            "x.safe.evil.example\ttrusted\tsafe.evil.example\nevil.example\tmatch\t{mal}\tmalware\tevil.example\n"
        )
    );
}

#[test]
fn lookup_refuses_bad_lists_before_looking_up() {
    let dir = TempDir::new("urls-lookup-bad");
    let suffix = write(&dir, "suffix.txt", "evil.example\nco.uk\n");
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("scam={suffix}"),
        "x.example",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("line 2: \"co.uk\" is a public suffix"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        "malware=/nonexistent/list.txt",
        "x.example",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("mal ware={suffix}"),
        "--",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // An unreadable line is reported with its number; the rest of the list is used.
    let partly = write(&dir, "partly.txt", "a.example\nnot a host\nb.example\n");
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("custom={partly}"),
        "b.example",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains(&format!("{partly}:2: ")),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("b.example\tmatch\t"));
}

#[test]
fn check_reports_entries_unreadable_lines_and_size() {
    let dir = TempDir::new("urls-check");
    let good = write(
        &dir,
        "good.txt",
        "evil.example\n0.0.0.0 a.example b.example\n||c.example^\nhttp://d.example/p/q\n9.8.7.6\n\n",
    );
    let out = svm(&["urls", "check", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{good}: 6 lines, 6 entries (2 domains, 2 hosts, 1 URLs, 1 IP hosts), 0 unreadable lines, 1 ignored lines"
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{good}: compiled ")), "{stdout}");

    let bad = write(
        &dir,
        "bad.txt",
        "ok.example\n@@||allowed.example^\n%20x.example\n",
    );
    let out = svm(&["urls", "check", &bad]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{bad}:2: unsupported adblock rule (exception)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{bad}:3: not a host name")),
        "{stderr}"
    );

    let dataset = write(&dir, "set.b64", "ZXZpbC5leGFtcGxl\nZXZpbC5leGFtcGxlL2Rs\n");
    let out = svm(&["urls", "check", "--format", "dataset", &dataset]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 entries (1 domains, 0 hosts, 1 URLs, 0 IP hosts)"));

    let out = svm(&["urls", "check", "/nonexistent/list.txt"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lookup_against_the_shared_lists() {
    let shared = std::env::var_os("SVM_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let urls = shared.join("urls");
    assert!(
        urls.join("README.md").is_file(),
        "{} is missing",
        urls.display()
    );
    let f = |n: &str| urls.join(n).display().to_string();
    let out = svm(&[
        "urls",
        "lookup",
        "--url-list",
        &format!("malware={}", f("malware-urls.txt")),
        &format!("malware={}", f("malware-domains.txt")),
        &format!("phishing={}", f("phishing-domains.txt")),
        &format!("scam={}", f("scam-domains.txt")),
        "https://github.com/00094/string-remover/raw/refs/heads/main/rah.exe",
        "github.com",
        "http://WWW.benecharm.com/shop",
        "coonfrim21.regist3r2.cf",
        "www.google.com",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        got,
        [
            format!(
                "https://github.com/00094/string-remover/raw/refs/heads/main/rah.exe\tmatch\t{}\tmalware\tgithub.com/00094/string-remover/raw/refs/heads/main/rah.exe",
                f("malware-urls.txt")
            ),
            "github.com\tno match".to_string(),
            format!(
                "http://WWW.benecharm.com/shop\tmatch\t{}\tscam\twww.benecharm.com",
                f("scam-domains.txt")
            ),
            format!(
                "coonfrim21.regist3r2.cf\tmatch\t{}\tphishing\tcoonfrim21.regist3r2.cf",
                f("phishing-domains.txt")
            ),
            "www.google.com\tno match".to_string(),
        ]
    );
}
