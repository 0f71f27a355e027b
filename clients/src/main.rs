//! candidatectl: placeholder until the clients issue lands (CLI, `check`, `load`).
fn main() {}
