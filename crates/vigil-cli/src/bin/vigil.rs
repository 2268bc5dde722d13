//! `vigil`: the resident CLI. Everything is in `vigil_cli::resident`.
fn main() -> std::process::ExitCode {
    vigil_cli::resident::run(std::env::args_os())
}
