//! Criterion benchmarks of the encode/flush path across crates; see `benches/`.
