//! A global allocator that counts heap allocations per thread, so tests running in parallel do
//! not disturb each other. A test binary opts in with its own
//! `#[global_allocator] static A: common::alloc::Counting = common::alloc::Counting;`; in a
//! binary that does not, the counts stay at zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};

/// Forwards to `System`, counting every allocation (and reallocation) on the calling thread.
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed unchanged to `System`; the only addition is a bump of a
// const-initialised thread-local counter, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f`; its result and the heap allocations it made on this thread (dropping the result
/// afterwards is outside the count).
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let after = ALLOCATIONS.with(Cell::get);
    (result, after - before)
}

/// Allocations made on this thread while one request goes through `svc`, polled by hand with a
/// no-op waker (no runtime); the response is dropped afterwards, outside the count.
pub fn request_allocations<S, Q, B>(svc: &mut S, req: Request<Q>) -> usize
where
    S: tower::Service<Request<Q>, Response = Response<B>, Error = Infallible>,
{
    response_and_allocations(svc, req).1
}

/// [`request_allocations`], with the response, to look at outside the count.
pub fn response_and_allocations<S, Q, B>(svc: &mut S, req: Request<Q>) -> (Response<B>, usize)
where
    S: tower::Service<Request<Q>, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let ((ready, res), n) = allocations_during(|| {
        let ready = svc.poll_ready(&mut cx);
        let mut fut = pin!(svc.call(req));
        let res = loop {
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                break r;
            }
        };
        (ready, res)
    });
    assert!(matches!(ready, Poll::Ready(Ok(()))));
    match res {
        Ok(response) => (response, n),
        Err(never) => match never {},
    }
}
