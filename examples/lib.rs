//! Runnable examples; see the `examples/*.rs` files, run with `cargo run -p timecoin-examples --example NAME`.
