//! `vigil-bench`: Vigil's benchmarks at community scale.
//!
//! ```text
//! vigil-bench load --residents 1000 --json load-1000.json
//! vigil-bench attack --out docs/perf/attack.md
//! vigil-bench report --out target/vigil-report
//! vigil-bench ffi --python /tmp/venv-bench/bin/python --out docs/perf/ffi.md
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
    /// Honest residents sync and alert while attackers flood the node
    /// (unauthenticated registers and grant keys, forged residents, 17 MiB
    /// frames, garbage, pairing spam, million-entry `have` lists, many
    /// connections); reports each attack beside the unattacked run.
    ///
    /// Example: vigil-bench attack --out docs/perf/attack.md
    Attack(vigil_bench::attack::AttackArgs),
    /// What the app boundary costs: GATT decoding beside same-run
    /// references, `record_gatt` against `record` on sled, and `record`
    /// through the Python binding against the Rust call.
    ///
    /// Example: vigil-bench ffi --python /tmp/venv-bench/bin/python --out docs/perf/ffi.md
    Ffi(vigil_bench::ffi::FfiArgs),
    /// Run a node (the relay_node example's stack) and print its enrolment
    /// code; stops when stdin closes. Used by `load` to measure a node in its
    /// own process.
    #[command(hide = true)]
    ServeNode(load::ServeNodeArgs),
    /// Run every benchmark side by side (`cargo bench --workspace` and the
    /// simulation's seeds/s) and write report.md and sync.svg.
    ///
    /// Example: vigil-bench report --out target/vigil-report
    Report(ReportArgs),
}

/// Options of `report`.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Where report.md and sync.svg go.
    #[arg(long, default_value = "target/vigil-report")]
    out: std::path::PathBuf,
    /// Smoke sizes: checks the command works in a minute; the figures are
    /// not comparable with the targets.
    #[arg(long)]
    quick: bool,
    /// Simulation seeds to time on one core.
    #[arg(long, default_value_t = 200)]
    sim_seeds: u64,
}

fn report(args: ReportArgs) -> Result<ExitCode, String> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let md = vigil_bench::report::run(&vigil_bench::report::ReportOptions {
        workspace: workspace.canonicalize().unwrap_or(workspace),
        out_dir: args.out.clone(),
        quick: args.quick,
        sim_seeds: args.sim_seeds,
    })
    .map_err(|e| e.to_string())?;
    println!("{md}");
    eprintln!("report: wrote {}", args.out.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load::main(args),
        Command::Attack(args) => vigil_bench::attack::main(args),
        Command::Ffi(args) => vigil_bench::ffi::main(args),
        Command::ServeNode(args) => load::serve_node(args),
        Command::Report(args) => report(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
