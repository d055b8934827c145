//! JSON-RPC error codes (Bitcoin's where one applies) and the error objects methods return.

use jsonrpsee::types::ErrorObjectOwned;

use crate::NodeError;

/// The error codes the RPC answers with.
pub mod codes {
    /// A failure that fits no other code (Bitcoin's `RPC_MISC_ERROR`): the node stopped, a store read
    /// failed.
    pub const MISC: i32 = -1;
    /// The named block, transaction or output is not known (Bitcoin's `RPC_INVALID_ADDRESS_OR_KEY`).
    pub const NOT_FOUND: i32 = -5;
    /// A parameter has the right type but an unusable value (Bitcoin's `RPC_INVALID_PARAMETER`).
    pub const INVALID_PARAMETER: i32 = -8;
    /// A transaction or block did not decode (Bitcoin's `RPC_DESERIALIZATION_ERROR`).
    pub const DESERIALIZATION: i32 = -22;
    /// A transaction's inputs are missing or spent (Bitcoin's `RPC_VERIFY_ERROR`).
    pub const VERIFY: i32 = -25;
    /// A transaction broke a chain rule or the pool refused it (Bitcoin's `RPC_VERIFY_REJECTED`).
    pub const VERIFY_REJECTED: i32 = -26;
    /// The transaction is already in the chain (Bitcoin's `RPC_VERIFY_ALREADY_IN_CHAIN`).
    pub const ALREADY_IN_CHAIN: i32 = -27;
    /// The node is too far behind its peers to judge transactions (Bitcoin's `RPC_IN_WARMUP`).
    pub const WARMING_UP: i32 = -28;
    /// No such method (JSON-RPC).
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Wrong number or type of parameters (JSON-RPC).
    pub const INVALID_PARAMS: i32 = -32602;
}

/// An error object with `code` and `message`.
pub(crate) fn rpc_error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, None::<()>)
}

/// A failure of the node or its stores, as −1 with the reason.
pub(crate) fn node_error(e: impl Into<NodeError>) -> ErrorObjectOwned {
    rpc_error(codes::MISC, e.into().to_string())
}

/// A blocking task that did not finish (the runtime is shutting down).
pub(crate) fn join_error(e: tokio::task::JoinError) -> ErrorObjectOwned {
    rpc_error(codes::MISC, format!("the worker failed: {e}"))
}
