//! Writes the seed corpus: `vigil-fuzz-seeds <dir>` creates `<dir>/<target>/seed-<n>`
//! (the committed corpus: `cargo run --manifest-path fuzz/Cargo.toml -p vigil-fuzz-seeds -- fuzz/corpus`).

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    for (target, seeds) in vigil_fuzz::seeds::all() {
        let d = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&d).expect("create the corpus directory");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), s).expect("write a seed");
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
