//! `vigil`: the resident CLI.
fn main() {}
