//! Command-line interface. Exit codes (documented in docs/admin-guide.md), as admins know them
//! from kesl-control / KAVSHELL:
//! - 0 success
//! - 1 a mandatory argument is missing
//! - 2 general error (I/O, unreadable capture, ...)
//! - 4 syntax error (bad arguments, invalid policy)
//! - 9 wrong operation (admin commands: nothing to allow, already blocked, version mismatch,
//!   role not allowed)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{daemon, replay};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a mandatory argument is missing.
pub const EXIT_MISSING_ARGUMENT: u8 = 1;
/// Exit code: general error.
pub const EXIT_GENERAL: u8 = 2;
/// Exit code: syntax error in arguments or an input document.
pub const EXIT_SYNTAX: u8 = 4;

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
    /// Print the built-in default policy as YAML-compatible JSON.
    Default,
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
    /// `stream.reassembly.depth=SIZE`, `app-layer.protocols.tls.encryption-handling=default|bypass|full`
    /// (`full` keeps inspecting encrypted TLS payload), `threshold-file=PATH`,
    /// `action-order=drop,alert,...`,
    /// `vars.address-groups.NAME=VALUE`, `vars.port-groups.NAME=VALUE`, `flows.max=N` (the flow
    /// table's cap, 1024..=2^26, as the daemon's setting). Unknown keys are
    /// reported on standard error and ignored.
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
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EXIT_OK,
                ErrorKind::MissingRequiredArgument
                | ErrorKind::MissingSubcommand
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => EXIT_MISSING_ARGUMENT,
                _ => EXIT_SYNTAX,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli))
}

fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Run {
            config,
            reset_state,
        } => match daemon::run(&config, reset_state) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("svm run: {e}");
                e.exit_code()
            }
        },
        Command::Replay(args) => match replay::run(&args) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("svm replay: {e}");
                e.exit_code()
            }
        },
        Command::Policy(PolicyCommand::Check { file }) => match policy::Policy::load(&file) {
            Ok(p) => {
                println!(
                    "{}: valid (mode {:?}, attack blocker {}, {} exclusions)",
                    file.display(),
                    p.mode,
                    if p.attack_blocker.enabled {
                        "on"
                    } else {
                        "off"
                    },
                    p.exclusions.len()
                );
                EXIT_OK
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("{}: {line}", file.display());
                }
                EXIT_SYNTAX
            }
        },
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
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("svm state check: {e}");
                    EXIT_GENERAL
                }
            }
        }
        Command::State(StateCommand::Probe { file }) => match crate::store::probe(&file) {
            Ok(s) => {
                println!("{}", crate::store::summary_line(&s));
                EXIT_OK
            }
            Err(e) if crate::store::in_use(&e) => {
                eprintln!("{e}");
                u8::try_from(crate::store::PROBE_IN_USE).unwrap_or(EXIT_GENERAL)
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_GENERAL
            }
        },
        Command::Policy(PolicyCommand::Default) => {
            println!("{}", policy::Policy::default().to_json());
            EXIT_OK
        }
    }
}
