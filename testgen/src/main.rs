//! `svm-testgen`: write the deterministic test captures as pcap files.
//!
//! Exit codes: 0 success, 1 I/O error writing a file, 2 usage error.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use testgen::tunnel::{Encap, encapsulate};
use testgen::{Capture, Link, plan, scenarios};
use vlan::VlanId;

const USAGE: &str = "\
usage:
  svm-testgen demo OUT.pcap
  svm-testgen scenario NAME OUT.pcap [--vlan ID | --qinq OUTER.INNER | --untagged] [--ipv6]
                                      [--tunnel vxlan|geneve|gre-eth|gre-ip|erspan2|erspan3]
  svm-testgen all DIR
  svm-testgen list

Captures start at 2026-01-01T00:00:00Z. `scenario` defaults to VLAN 100; --ipv6 uses the
hosts' IPv6 addresses where the scenario has an IPv6 form. `all` writes every scenario on
VLAN 100 (NAME.pcap, and NAME_v6.pcap for IPv6 forms) plus demo.pcap. --tunnel wraps every
frame as a mirror or overlay carries it from 172.31.0.1 to 172.31.0.2 (ERSPAN names VLAN 23).";

enum Command {
    Help,
    Demo(PathBuf),
    Scenario {
        name: String,
        out: PathBuf,
        link: Link,
        ipv6: bool,
        tunnel: Option<Encap>,
    },
    All(PathBuf),
    List,
}

fn parse_vlan(s: &str) -> Result<VlanId, String> {
    let raw: u16 = s.parse().map_err(|_| format!("invalid VLAN id {s:?}"))?;
    VlanId::new(raw).map_err(|e| e.to_string())
}

fn parse(args: &[String]) -> Result<Command, String> {
    match args {
        [cmd, out] if cmd == "demo" => Ok(Command::Demo(PathBuf::from(out))),
        [cmd, dir] if cmd == "all" => Ok(Command::All(PathBuf::from(dir))),
        [cmd] if cmd == "list" => Ok(Command::List),
        [cmd] if cmd == "-h" || cmd == "--help" || cmd == "help" => Ok(Command::Help),
        [cmd, name, out, opts @ ..] if cmd == "scenario" => {
            let mut link = plan::vlan100();
            let mut ipv6 = false;
            let mut tunnel = None;
            let mut it = opts.iter();
            while let Some(opt) = it.next() {
                match opt.as_str() {
                    "--vlan" => {
                        let v = it.next().ok_or("--vlan needs an id")?;
                        link = Link::dot1q(parse_vlan(v)?);
                    }
                    "--qinq" => {
                        let v = it.next().ok_or("--qinq needs OUTER.INNER")?;
                        let (o, i) = v
                            .split_once('.')
                            .ok_or_else(|| format!("--qinq {v:?}: expected OUTER.INNER"))?;
                        link = Link::qinq(parse_vlan(o)?, parse_vlan(i)?);
                    }
                    "--untagged" => link = Link::untagged(),
                    "--ipv6" => ipv6 = true,
                    "--tunnel" => {
                        tunnel = Some(match it.next().map(String::as_str) {
                            Some("vxlan") => Encap::Vxlan,
                            Some("geneve") => Encap::Geneve,
                            Some("gre-eth") => Encap::GreEthernet,
                            Some("gre-ip") => Encap::GreIp,
                            Some("erspan2") => Encap::ErspanII { vlan: 23 },
                            Some("erspan3") => Encap::ErspanIII { vlan: 23 },
                            other => return Err(format!("unknown --tunnel {other:?}")),
                        });
                    }
                    other => return Err(format!("unknown option {other:?}")),
                }
            }
            Ok(Command::Scenario {
                name: name.clone(),
                out: PathBuf::from(out),
                link,
                ipv6,
                tunnel,
            })
        }
        _ => Err("missing or unexpected arguments".to_owned()),
    }
}

fn write(cap: &Capture, path: &Path) -> Result<(), ExitCode> {
    match cap.write_pcap(path) {
        Ok(()) => {
            println!("{}: {} frames", path.display(), cap.len());
            Ok(())
        }
        Err(e) => {
            eprintln!("svm-testgen: writing {}: {e}", path.display());
            Err(ExitCode::from(1))
        }
    }
}

fn run(cmd: Command) -> Result<(), ExitCode> {
    match cmd {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Demo(out) => write(&scenarios::demo(plan::BASE_US), &out),
        Command::List => {
            let v6: Vec<&str> = scenarios::all_v6().into_iter().map(|(n, _)| n).collect();
            for (name, _) in scenarios::all() {
                let note = if v6.contains(&name) { "  (--ipv6)" } else { "" };
                println!("{name}{note}");
            }
            println!("demo");
            Ok(())
        }
        Command::Scenario {
            name,
            out,
            link,
            ipv6,
            tunnel,
        } => {
            let f = match scenarios::by_name(&name, ipv6) {
                Some(f) => f,
                None if ipv6 && scenarios::by_name(&name, false).is_some() => {
                    eprintln!("svm-testgen: {name} has no IPv6 form; using IPv4 hosts");
                    scenarios::by_name(&name, false).ok_or(ExitCode::from(2))?
                }
                None => {
                    eprintln!("svm-testgen: unknown scenario {name:?} (see `svm-testgen list`)");
                    return Err(ExitCode::from(2));
                }
            };
            let cap = f(&link, plan::BASE_US);
            match tunnel {
                Some(encap) => write(&encapsulate(&cap, encap), &out),
                None => write(&cap, &out),
            }
        }
        Command::All(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("svm-testgen: creating {}: {e}", dir.display());
                return Err(ExitCode::from(1));
            }
            let link = plan::vlan100();
            for (name, f) in scenarios::all() {
                write(&f(&link, plan::BASE_US), &dir.join(format!("{name}.pcap")))?;
            }
            for (name, f) in scenarios::all_v6() {
                if name.ends_with("_v6") || name == "ipv6_ext_fragments" {
                    continue;
                }
                write(
                    &f(&link, plan::BASE_US),
                    &dir.join(format!("{name}_v6.pcap")),
                )?;
            }
            write(&scenarios::demo(plan::BASE_US), &dir.join("demo.pcap"))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(cmd) => cmd,
        Err(msg) => {
            eprintln!("svm-testgen: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
