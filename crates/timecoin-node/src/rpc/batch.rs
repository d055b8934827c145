//! Calls of one JSON-RPC batch run concurrently.
//!
//! jsonrpsee runs a batch's calls one after another. A batch of `sendrawtransaction` calls then costs
//! one round trip to the engine thread per transaction, and each reaches the engine alone, so its
//! signature is checked alone too. Run together, they arrive in one engine batch and are verified as
//! one signature batch. JSON-RPC 2.0 lets a server process a batch's calls in any order and
//! concurrently; the answers still come back in the order asked. The batch length is bounded by
//! [`RpcConfig::max_batch_len`](super::RpcConfig), so is the concurrency.

use futures::future::join_all;
use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::Request;

/// Wraps jsonrpsee's own service; single calls and notifications pass through unchanged.
#[derive(Clone, Debug)]
pub(crate) struct ConcurrentBatch<S> {
    inner: S,
    max_response_bytes: usize,
}

impl<S> ConcurrentBatch<S> {
    pub(crate) fn new(inner: S, max_response_bytes: u32) -> Self {
        ConcurrentBatch {
            inner,
            max_response_bytes: usize::try_from(max_response_bytes).unwrap_or(usize::MAX),
        }
    }
}

impl<S> RpcServiceT for ConcurrentBatch<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let inner = self.inner.clone();
        let limit = self.max_response_bytes;
        async move {
            let mut calls = Vec::new();
            let mut notifications = Vec::new();
            // Each entry keeps its place: a call's answer, or an error for an entry that was not one.
            let mut slots = Vec::new();
            for entry in batch {
                match entry {
                    Ok(BatchEntry::Call(request)) => {
                        slots.push(None);
                        calls.push(inner.call(request));
                    }
                    Ok(BatchEntry::Notification(n)) => notifications.push(inner.notification(n)),
                    Err(err) => {
                        let (err, id) = err.into_parts();
                        slots.push(Some(MethodResponse::error(id, err)));
                    }
                }
            }
            let got_notification = !notifications.is_empty();
            let (answers, _) = futures::join!(join_all(calls), join_all(notifications));
            let mut answers = answers.into_iter();
            let mut response = BatchResponseBuilder::new_with_limit(limit);
            for slot in slots {
                let Some(answer) = slot.or_else(|| answers.next()) else {
                    break;
                };
                if let Err(too_big) = response.append(answer) {
                    return too_big;
                }
            }
            if response.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(response.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
