//! Shared by the benchmarks that drive services by hand.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls a future that is ready at once (every service benchmarked this way is), without a
/// runtime.
pub fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("every service in this benchmark answers at once"),
    }
}
