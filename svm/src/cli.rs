//! Command-line interface. Every command ends with an [`Exit`] (documented in
//! docs/admin-guide.md), as admins know them from kesl-control / KAVSHELL.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{daemon, replay};

/// How a command ended: the process exit code of every `svm` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: a mandatory argument is missing.
    MissingArgument,
    /// 2: general error (I/O, unreadable capture or file, connection, TLS, server error).
    General,
    /// 3: `svm rules check --strict` skipped rules.
    RulesSkipped,
    /// 3: `svm state probe` (run by the daemon on its own state file): another process holds
    /// the store ([`crate::store::PROBE_IN_USE`]).
    InUse,
    /// 4: syntax error in arguments or an input document (bad arguments, invalid policy).
    Syntax,
    /// 9: wrong operation (admin commands: nothing to allow, already blocked, version mismatch,
    /// role not allowed).
    WrongOperation,
    /// 255 (KAVSHELL's -1): not supported here (`svm isolation` against a daemon without an
    /// inventory).
    NotSupported,
}

impl Exit {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::MissingArgument => 1,
            Exit::General => 2,
            Exit::RulesSkipped | Exit::InUse => 3,
            Exit::Syntax => 4,
            Exit::WrongOperation => 9,
            Exit::NotSupported => 255,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// svm: the security virtual machine.
#[derive(Debug, Parser)]
#[command(
    name = "svm",
    version,
    about = "svm: network threat protection for the VMs of one hypervisor host"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon on live interfaces (AF_PACKET) until SIGTERM or SIGINT.
    Run {
        /// The configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
        /// When the state store (`state_dir/state.redb`) is damaged or empty, keep it as
        /// `state.redb.damaged-<unix seconds>` and start a new store (the policy file and no
        /// blocks). A readable store is kept whatever this says.
        #[arg(long)]
        reset_state: bool,
        /// Log filter: a level (error, warn, info, debug, trace) or `tracing` directives
        /// (`info,svm::api=debug`); without it `RUST_LOG`, else info.
        #[arg(long, value_name = "FILTER")]
        log_level: Option<String>,
    },
    /// Replay a capture through the engine and report what the SVM would have done.
    Replay(ReplayArgs),
    /// Policy documents.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Blocked hosts of the running daemon.
    #[command(subcommand)]
    Blocked(crate::admin_cli::BlockedCommand),
    /// Status of the running daemon.
    Status(crate::admin_cli::ClientArgs),
    /// Signature rules (Suricata/Snort rule language).
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Signed application databases (rules, address lists, attack definitions).
    #[command(subcommand)]
    Db(crate::db::cmd::DbCommand),
    /// The daemon's state store.
    #[command(subcommand)]
    State(StateCommand),
    /// Web address lists (malicious and phishing domains, URLs, IP hosts).
    #[command(subcommand)]
    Urls(crate::urls_cmd::UrlsCommand),
    /// Certificates of the management API (CA, server, admin and read-only clients).
    #[command(subcommand)]
    Pki(crate::pki_cmd::PkiCommand),
    /// Events of the running daemon (`svm events tail [--follow]`).
    #[command(subcommand)]
    Events(crate::events_cmd::EventsCommand),
    /// Network isolation of the running daemon's protected VMs.
    #[command(subcommand)]
    Isolation(crate::isolation_cmd::IsolationCommand),
    /// Write the man pages (`man/`) and shell completions (`completions/`: bash, zsh, fish)
    /// into DIR, for packaging (`make deb`).
    #[command(hide = true)]
    DistFiles {
        /// The output directory.
        dir: PathBuf,
    },
}

/// `svm rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rule files and report loaded and skipped rules with reasons.
    Check(crate::rules_cmd::CheckArgs),
}

/// `svm policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (YAML or JSON); print every problem with its path.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the built-in default policy as a commented YAML template.
    Default,
    /// Print the running daemon's policy as YAML.
    Show {
        /// Connection.
        #[command(flatten)]
        client: crate::admin_cli::ClientArgs,
    },
    /// Validate a policy file and push it to the running daemon.
    Push {
        /// The policy file.
        file: PathBuf,
        /// Connection.
        #[command(flatten)]
        client: crate::admin_cli::ClientArgs,
    },
}

/// Checksum validation (`-k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Checksums {
    /// Do not validate checksums (captures taken with checksum offload have bad ones).
    #[default]
    None,
    /// Validate IPv4, TCP, UDP and ICMP checksums; packets with a bad one are not inspected.
    All,
}

/// `svm replay` arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub pcap: PathBuf,
    /// Policy file (YAML or JSON); the built-in default policy applies without it.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Write events as EVE JSON lines to this file, or `-` for standard output.
    #[arg(long)]
    pub eve: Option<String>,
    /// Emulate the inline appliance (drops are real); without it the SVM acts as on a mirror port.
    #[arg(long)]
    pub inline: bool,
    /// Write the frames the SVM forwards (inline) to this capture.
    #[arg(long, value_name = "OUT.pcap")]
    pub write_forwarded: Option<PathBuf>,
    /// Write the frames the SVM injects (resets) to this capture.
    #[arg(long, value_name = "OUT.pcap")]
    pub write_injected: Option<PathBuf>,
    /// Write the injected frames that go back to the sender of the frame that caused them (the
    /// reset to the attacker) to this capture.
    #[arg(long, value_name = "OUT.pcap")]
    pub write_injected_to_source: Option<PathBuf>,
    /// Write the injected frames that go on to the receiver of the frame that caused them (the
    /// reset to the attacked host) to this capture.
    #[arg(long, value_name = "OUT.pcap")]
    pub write_injected_to_destination: Option<PathBuf>,
    /// Checksum validation.
    #[arg(short = 'k', value_enum, default_value_t = Checksums::None)]
    pub checksums: Checksums,
    /// Replay the capture N times from memory (for throughput measurement); each pass is
    /// shifted in time past the previous one.
    #[arg(long = "loop", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: u32,
    /// Write the summary as JSON to this file as well.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Signature rule files for the activity scanner (repeatable; several files may follow one
    /// `--rules`, so a shell glob works).
    #[arg(long = "rules", value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    pub rules: Vec<PathBuf>,
    /// A Suricata `threshold.config` (suppress, threshold, event_filter).
    #[arg(long, value_name = "FILE")]
    pub threshold_file: Option<PathBuf>,
    /// Suricata-style settings, repeatable: `stream.midstream=true|false`,
    /// `stream.inline=true` (inline inspection timing), `stream.async-oneside=true|false`,
    /// `stream.reassembly.depth=SIZE`, `stream.reassembly.memcap=SIZE` (per worker, 1mb..=64gb),
    /// `stream.reassembly.urgent.policy=inline|oob|gap|drop` and
    /// `stream.reassembly.urgent.oob-limit-policy=inline|gap|drop` (TCP urgent data),
    /// `app-layer.protocols.tls.encryption-handling=default|bypass|full`
    /// (`full` keeps inspecting encrypted TLS payload),
    /// `app-layer.protocols.dns.tcp.detection-ports.dp=PORTS` and `...dns.udp...` (the ports
    /// DNS is recognised on: `53`, `[53, 1053]`, `1024:65535`), `threshold-file=PATH`,
    /// `action-order=drop,alert,...`,
    /// `vars.address-groups.NAME=VALUE`, `vars.port-groups.NAME=VALUE`, `flows.max=N` (the flow
    /// table's cap, 1024..=2^26, as the daemon's setting). A bad value, no `=` or an unknown
    /// key is refused (exit 4), every problem named; the worker's keys are the daemon's
    /// (`dataplane::settings`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Suricata's `--simulate-ips`: `drop`/`reject` rules drop the packet (EVE `alert.action`
    /// `blocked`, the frame is not forwarded), whatever the policy's action; inspection has
    /// inline timing. Without it and without `--inline`, TCP data is parsed and inspected as
    /// Suricata does in IDS mode: once the peer acknowledged it.
    #[arg(long)]
    pub simulate_ips: bool,
    /// Read rule variables (`vars.address-groups`, `vars.port-groups`) and `action-order` from
    /// a `suricata.yaml`.
    #[arg(long, value_name = "SURICATA.YAML")]
    pub vars: Option<PathBuf>,
    /// Workers, fed by the live dataplane's symmetric address hash over one block table, one
    /// frame at a time in capture order (deterministic).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Capacity of the block table (the daemon's `max_blocks`). When full, a detection block
    /// evicts the detection block closest to expiry.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_blocks: u32,
    /// Protected VMs (the daemon configuration's `inventory` list, alone or in a whole daemon
    /// configuration): what isolation, manual or automatic, applies to.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Isolate a VM of the inventory from the capture's first frame, for MINUTES (default 480).
    #[arg(long, value_name = "VM[:MINUTES]")]
    pub isolate: Vec<String>,
    /// An exclusion of the `--isolate` isolations, in the policy's form (a mapping, or a list of
    /// them; `[]` for none); without any, the DNS/DHCP client and server profiles.
    #[arg(long, value_name = "YAML")]
    pub isolate_exclude: Vec<String>,
    /// Web address lists as `CATEGORY=FILE` (malware, phishing, scam, custom or another name),
    /// added to the policy's `web_address_scan.url_lists`; the web address scan runs with the
    /// policy's settings (in standard mode a listed address is blocked).
    #[arg(long = "url-list", value_name = "CATEGORY=FILE", num_args = 1.., action = clap::ArgAction::Append)]
    pub url_lists: Vec<String>,
    /// Progress on standard error: `auto` shows it when standard error is a terminal and the
    /// replay has run for a second (long captures), `never` hides it.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
}

/// When `svm replay` shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Progress {
    /// On a terminal, once the replay has run for a second.
    #[default]
    Auto,
    /// Never.
    Never,
}

/// `svm state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Read a state store (`state_dir/state.redb`) whole, in a child process, and say what it
    /// holds or why it cannot be read; exit 0 when readable, 2 when not. Stop the daemon first:
    /// a running daemon holds the file.
    Check {
        /// The state file.
        file: PathBuf,
    },
    /// Read a state store in this process (what `check` runs; redb may abort on a damaged
    /// file).
    #[command(hide = true)]
    Probe {
        /// The state file.
        file: PathBuf,
    },
}

/// Run the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return parse_exit(e.kind()).into();
        }
    };
    run(cli).into()
}

/// The exit of an argument error: help and version are not errors; a missing argument or
/// subcommand is 1; anything else (bad value, unknown flag) a syntax error.
fn parse_exit(kind: clap::error::ErrorKind) -> Exit {
    use clap::error::ErrorKind;
    match kind {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
        ErrorKind::MissingRequiredArgument
        | ErrorKind::MissingSubcommand
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Exit::MissingArgument,
        _ => Exit::Syntax,
    }
}

fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Run {
            config,
            reset_state,
            log_level,
        } => match crate::logging::init(log_level.as_deref())
            .map_err(|e| eprintln!("svm run: {e}"))
            .map(|()| daemon::run(&config, reset_state))
        {
            Err(()) => Exit::Syntax,
            Ok(r) => match r {
                Ok(()) => Exit::Ok,
                Err(e) => {
                    tracing::error!("svm run: {e}");
                    e.exit_code()
                }
            },
        },
        Command::Replay(args) => match replay::run(&args) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!("svm replay: {e}");
                e.exit_code()
            }
        },
        Command::Policy(PolicyCommand::Check { file }) => policy_check(&file),
        Command::Policy(PolicyCommand::Push { file, client }) => {
            crate::admin_cli::policy_push(&file, &client)
        }
        Command::Blocked(cmd) => crate::admin_cli::blocked(cmd),
        Command::Status(client) => crate::admin_cli::status(&client),
        Command::Rules(RulesCommand::Check(args)) => crate::rules_cmd::check(&args),
        Command::Db(cmd) => crate::db::cmd::run(cmd),
        Command::State(StateCommand::Check { file }) => {
            let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("svm"));
            match crate::store::check(&exe, &file) {
                Ok(s) => {
                    println!("{}: readable: {s}", file.display());
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("svm state check: {e}");
                    Exit::General
                }
            }
        }
        Command::State(StateCommand::Probe { file }) => match crate::store::probe(&file) {
            Ok(s) => {
                println!("{}", crate::store::summary_line(&s));
                Exit::Ok
            }
            Err(e) if crate::store::in_use(&e) => {
                eprintln!("{e}");
                Exit::InUse
            }
            Err(e) => {
                eprintln!("{e}");
                Exit::General
            }
        },
        Command::Urls(cmd) => crate::urls_cmd::run(&cmd),
        Command::Pki(cmd) => crate::pki_cmd::run(&cmd),
        Command::DistFiles { dir } => match dist_files(&dir) {
            Ok(n) => {
                println!("wrote {n} files under {}", dir.display());
                Exit::Ok
            }
            Err(e) => {
                eprintln!("svm dist-files: {}: {e}", dir.display());
                Exit::General
            }
        },
        Command::Events(cmd) => crate::events_cmd::run(&cmd),
        Command::Isolation(cmd) => crate::isolation_cmd::run(cmd),
        Command::Policy(PolicyCommand::Default) => crate::policy_cmd::default(),
        Command::Policy(PolicyCommand::Show { client }) => crate::policy_cmd::show(&client),
    }
}

/// Load a policy file as `policy check` and `policy push` do: every problem on standard error,
/// each line prefixed with the file; an unreadable file is a general error (2), an invalid one a
/// syntax error (4).
pub fn load_policy(file: &std::path::Path) -> Result<policy::Policy, Exit> {
    policy::Policy::load(file).map_err(|e| {
        match &e {
            policy::LoadError::Io { source, .. } => {
                eprintln!("{}: cannot read: {source}", file.display());
                return Exit::General;
            }
            policy::LoadError::Invalid { .. } => {}
        }
        for line in e.to_string().lines() {
            eprintln!("{}: {line}", file.display());
        }
        Exit::Syntax
    })
}

fn policy_check(file: &std::path::Path) -> Exit {
    match load_policy(file) {
        Ok(p) => {
            println!(
                "{}: valid (mode {}, attack blocker {}, {} exclusions)",
                file.display(),
                p.mode,
                if p.attack_blocker.enabled {
                    "on"
                } else {
                    "off"
                },
                p.exclusions.len()
            );
            Exit::Ok
        }
        Err(code) => code,
    }
}

/// The man pages (`svm.1`, one `svm-SUB.1` per visible subcommand and `svm-SUB-SUBSUB.1` below
/// it) and the bash, zsh and fish completions, generated from the parser itself so they never
/// disagree with it. Returns how many files were written.
fn dist_files(dir: &std::path::Path) -> std::io::Result<usize> {
    use clap::CommandFactory;
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut n = 0;
    // `build` names every subcommand `svm-sub-subsub` (its display name), the page's title.
    fn pages(cmd: &clap::Command, man: &std::path::Path, n: &mut usize) -> std::io::Result<()> {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
        std::fs::write(man.join(format!("{name}.1")), out)?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() != "help" {
                pages(sub, man, n)?;
            }
        }
        Ok(())
    }
    pages(&cmd, &man, &mut n)?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "svm"),
        (clap_complete::Shell::Zsh, "_svm"),
        (clap_complete::Shell::Fish, "svm.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, "svm", &mut out);
        std::fs::write(comp.join(file), out)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let all = [
            (Exit::Ok, 0),
            (Exit::MissingArgument, 1),
            (Exit::General, 2),
            (Exit::RulesSkipped, 3),
            (Exit::InUse, 3),
            (Exit::Syntax, 4),
            (Exit::WrongOperation, 9),
            (Exit::NotSupported, 255),
        ];
        assert_eq!(i32::from(Exit::InUse.code()), crate::store::PROBE_IN_USE);
        let guide = include_str!("../../docs/admin-guide.md");
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(
                guide.contains(&format!("| {code} |")),
                "docs/admin-guide.md's table lacks exit code {code} ({e:?})"
            );
        }
    }

    #[test]
    fn policy_check_of_a_missing_file_is_a_general_error() {
        let missing =
            std::env::temp_dir().join(format!("svm-no-policy-{}.yaml", std::process::id()));
        assert_eq!(policy_check(&missing), Exit::General);
        let dir = std::env::temp_dir().join(format!("svm-bad-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("p.yaml");
        std::fs::write(&bad, "mode: sideways\n").unwrap();
        let code = policy_check(&bad);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, Exit::Syntax);
    }

    #[test]
    fn blocked_add_speaks_minutes() {
        let add = |minutes: &str| {
            Cli::try_parse_from(
                ["svm", "blocked", "add", "10.0.0.1", "--vlan", "100"]
                    .into_iter()
                    .chain(["--minutes", minutes]),
            )
        };
        for bad in ["0", "32769"] {
            let e = add(bad).unwrap_err();
            assert_eq!(parse_exit(e.kind()), Exit::Syntax);
            assert!(e.to_string().contains("1..=32768"), "{e}");
        }
        assert!(add("1").is_ok() && add("32768").is_ok());
    }
    #[test]
    fn dist_files_writes_a_page_per_command_and_three_completions() {
        let dir = tempfile::tempdir().unwrap();
        let n = dist_files(dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/svm-blocked-list.1")).unwrap();
        assert!(
            page.contains("svm\\-blocked\\-list") && page.contains("vlan"),
            "{page}"
        );
        assert!(dir.path().join("man/svm.1").exists());
        assert!(dir.path().join("man/svm-run.1").exists());
        assert!(!dir.path().join("man/svm-dist-files.1").exists(), "hidden");
        let bash = std::fs::read_to_string(dir.path().join("completions/svm")).unwrap();
        assert!(bash.contains("blocked") && bash.contains("--log-level"));
        assert!(dir.path().join("completions/_svm").exists());
        assert!(dir.path().join("completions/svm.fish").exists());
        let pages = std::fs::read_dir(dir.path().join("man")).unwrap().count();
        assert_eq!(n, pages + 3);
    }
}
