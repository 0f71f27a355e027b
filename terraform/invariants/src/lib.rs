//! No library: this crate holds the Terraform invariant tests (`tests/invariants/`), kept out of
//! the server crate so that they read facts from the code's public API, not from its sources.
