//! `vigil-bench`: Vigil's benchmarks at community scale.
//!
//! ```text
//! vigil-bench load --residents 1000 --json load-1000.json
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil_bench::load;

/// Vigil's benchmarks at community scale.
#[derive(Debug, Parser)]
#[command(name = "vigil-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play N residents against one node for a compressed day and report
    /// handshakes/s, bundles/s, alert latency, node memory and disk, refusals
    /// and a durability check.
    Load(load::LoadArgs),
    /// Run a node (the relay_node example's stack) and print its enrolment
    /// code; stops when stdin closes. Used by `load` to measure a node in its
    /// own process.
    #[command(hide = true)]
    ServeNode(load::ServeNodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load::main(args),
        Command::ServeNode(args) => load::serve_node(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
