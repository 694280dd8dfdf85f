use custom_estimator as _;

fn main() -> std::process::ExitCode {
    collapse_cli::run()
}
