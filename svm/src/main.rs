//! `svm`: a thin shell over [`svm::cli`].

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    svm::cli::main()
}
