//! Exit codes a script can trust, and how an error finds its code.

use std::fmt;

use crate::rpc::RpcError;

/// Success.
pub const OK: u8 = 0;
/// Bad usage or input: an unknown flag, an unreadable file, a malformed amount or address, not enough
/// funds.
pub const USAGE: u8 = 1;
/// The node could not be reached, or refused the credentials.
pub const UNREACHABLE: u8 = 2;
/// The node answered with an error: a rejected transaction, an unknown txid, a bad parameter.
pub const REJECTED: u8 = 3;
/// Timed out: the transaction was not final in time, or the node did not answer in time.
pub const TIMEOUT: u8 = 4;
/// A receipt did not verify.
pub const INVALID: u8 = 5;

/// The exit-code table as `--help` prints it.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  usage or input error (bad flag, file, amount, address; insufficient funds)
  2  node unreachable, or auth failed (no cookie, wrong password)
  3  rejected by the node (its JSON-RPC error code and message are printed)
  4  timeout (not final within --timeout, or the node did not answer)
  5  the receipt does not verify";

/// A failure whose exit code is not the transport's: raised by the commands themselves.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or input (exit 1).
    Usage,
    /// Waited long enough (exit 4).
    Timeout,
    /// A receipt failed a check (exit 5).
    Invalid,
}

impl Failure {
    /// `message` as an error that exits with this failure's code.
    pub fn wrap(self, message: String) -> anyhow::Error {
        anyhow::Error::new(Tagged {
            failure: self,
            message,
        })
    }

    fn code(&self) -> u8 {
        match self {
            Failure::Usage => USAGE,
            Failure::Timeout => TIMEOUT,
            Failure::Invalid => INVALID,
        }
    }
}

#[derive(Debug)]
struct Tagged {
    failure: Failure,
    message: String,
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Tagged {}

/// The exit code of `error`: that of the first error in its chain that has one, else [`USAGE`].
pub fn code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(rpc) = cause.downcast_ref::<RpcError>() {
            return match rpc {
                RpcError::Unreachable { .. }
                | RpcError::Auth { .. }
                | RpcError::Protocol { .. } => UNREACHABLE,
                RpcError::Timeout { .. } => TIMEOUT,
                RpcError::Node { .. } => REJECTED,
            };
        }
        if let Some(tagged) = cause.downcast_ref::<Tagged>() {
            return tagged.failure.code();
        }
    }
    USAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn the_innermost_classified_error_decides_through_context() {
        let node: anyhow::Error = RpcError::Node {
            method: "sendrawtransaction".into(),
            code: -26,
            message: "dust".into(),
        }
        .into();
        let wrapped = Err::<(), _>(node).context("sending").unwrap_err();
        assert_eq!(code_of(&wrapped), REJECTED);
        assert_eq!(code_of(&Failure::Timeout.wrap("late".into())), TIMEOUT);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), USAGE);
        let down: anyhow::Error = RpcError::Auth {
            url: "u".into(),
            reason: "401".into(),
        }
        .into();
        assert_eq!(code_of(&down), UNREACHABLE);
    }
}
