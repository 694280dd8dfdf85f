//! The `collapse` command-line tool with the `landweber` plugin linked in.

// Inventory only sees crates that are linked into the binary: name the plugin crate.
use custom_estimator as _;

fn main() -> std::process::ExitCode {
    collapse_cli::run()
}
