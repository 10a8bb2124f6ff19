//! Validate a policy file and print its canonical JSON, or every problem with its path.
//!
//! `cargo run -p policy --example validate -- policy/examples/demo.yaml`

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: validate <policy.yaml|policy.json>");
        return ExitCode::from(64);
    };
    match policy::Policy::load(std::path::Path::new(&path)) {
        Ok(p) => match serde_json::to_string_pretty(&p.to_json()) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e}");
            // EX_DATAERR: the input was read but is not valid.
            ExitCode::from(65)
        }
    }
}
