//! `timed`, the TimeCoin node daemon. The node engine (networking, RPC) is not built yet; until it is,
//! this binary only reports that, so no operator mistakes it for a running node.

fn main() -> std::process::ExitCode {
    eprintln!(
        "timed {}: the node engine is not built yet. Run a local network in-process with \
         `cargo run --release -p timecoin-examples --example local_network` (see README.md).",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
