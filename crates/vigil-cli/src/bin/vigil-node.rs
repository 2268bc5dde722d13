//! `vigil-node`: the community node. Everything is in `vigil_cli::node`.
fn main() -> std::process::ExitCode {
    vigil_cli::node::run(std::env::args_os())
}
