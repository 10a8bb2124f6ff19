//! The svm daemon and admin CLI: argument parsing, the replay driver, event output.

pub mod cli;
pub mod eve;
pub mod replay;
