//! The svm daemon and admin CLI: argument parsing, the replay driver, event output.

#![forbid(unsafe_code)]

pub mod cli;
pub mod eve;
pub mod replay;
pub mod rules_cmd;
