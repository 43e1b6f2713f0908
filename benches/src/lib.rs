//! Criterion benchmarks of the encode/flush path across crates: see `benches/encode_flush.rs`
//! and `docs/benchmarks.md` for the measured figures and how to reproduce them.
