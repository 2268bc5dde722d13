//! `vigil-node`: the community node.
fn main() {}
