//! The `collapse` binary. Everything lives in the `collapse_cli` library (which links
//! the built-in plugin crates), so that out-of-tree plugin crates can build their own
//! binary with the same three lines.

fn main() -> std::process::ExitCode {
    collapse_cli::run()
}
