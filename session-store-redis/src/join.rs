//! Runs a batch of futures concurrently (the `futures` crate's `join_all`, without the
//! dependency). On one server the multiplexed connection pipelines the requests; on a
//! Cluster they go to their nodes in parallel, where one pipeline could not span slots.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Most requests in flight for one listing or revocation.
pub(crate) const BATCH: usize = 128;

/// Every output, in input order.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future completed")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_keep_the_input_order() {
        let delays = [30u64, 0, 10];
        let out = join_all(delays.iter().map(|&ms| async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            ms
        }))
        .await;
        assert_eq!(out, delays);
    }
}
