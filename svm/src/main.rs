//! `svm`: a thin shell over [`svm::cli`].

fn main() -> std::process::ExitCode {
    svm::cli::main()
}
