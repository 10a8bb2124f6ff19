//! The svm daemon and admin CLI: argument parsing, the replay driver, event output, and the
//! control plane (API, state store, events, NSX tagging).

#![forbid(unsafe_code)]

pub mod admin_cli;
pub mod api;
pub mod cli;
pub mod cli_config;
pub mod control;
pub mod daemon;
pub mod db;
pub mod eve;
pub mod events;
pub mod events_cmd;
pub mod https;
pub mod inventory;
pub mod isolation;
pub mod isolation_cmd;
pub mod isolation_eve;
pub mod logging;
pub mod nsx;
pub mod pki_cmd;
pub mod policy_cmd;
pub mod replay;
pub mod replay_progress;
pub mod rules_cmd;
pub mod rules_load;
pub mod secret;
pub mod store;
pub mod tls;
pub mod urls_cmd;
pub mod weblists;
