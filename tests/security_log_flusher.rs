//! A flood that stops is summarised without waiting for another event: by the flusher thread
//! a server may start, or by the log layer on its next request.
//!
//! In a test binary of its own: the flusher logs from its own thread, so this binary installs
//! a process-wide subscriber.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tower_shield::security_log::{Coalescer, SecurityEvent, SecurityLog};

/// The process-wide subscriber every test of this binary reads (set once).
fn subscriber() -> &'static common::CaptureSubscriber {
    static SUBSCRIBER: OnceLock<common::CaptureSubscriber> = OnceLock::new();
    SUBSCRIBER.get_or_init(|| {
        let subscriber = common::CaptureSubscriber::default();
        tracing::subscriber::set_global_default(subscriber.clone()).unwrap();
        subscriber
    })
}

/// The first summary (an event with `suppressed`) about `ip`, waiting up to 10 s for it.
fn summary_of(ip: &str) -> common::Captured {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = subscriber().events();
        let about = |e: &&common::Captured| e.field("client_ip") == Some(ip);
        if let Some(summary) = events
            .iter()
            .filter(about)
            .find(|e| e.field("suppressed").is_some())
        {
            return summary.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no summary after 10 s: {events:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The events about `ip` so far.
fn events_of(ip: &str) -> usize {
    subscriber()
        .events()
        .iter()
        .filter(|e| e.field("client_ip") == Some(ip))
        .count()
}

#[test]
fn a_flood_that_stops_is_summarised_without_another_event() {
    subscriber();
    let coalescer = Arc::new(Coalescer::new(1, Duration::from_millis(500), 16).unwrap());
    let _flusher = coalescer.spawn_flusher(Duration::from_millis(20)).unwrap();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..4 {
        SecurityEvent::rate_limit_exceeded("ip", "ip", Some(ip), None, false).emit_via(&coalescer);
    }
    // The first passed; three are counted, and nothing else is ever emitted.
    let summary = summary_of("192.0.2.7");
    assert_eq!(summary.field("suppressed"), Some("3"));
    assert_eq!(summary.field("event"), Some("rate_limit_exceeded"));
    assert_eq!(events_of("192.0.2.7"), 2, "the first event and its summary");
    assert_eq!(coalescer.pending(), 0);
}

#[test]
fn a_security_log_layer_summarises_a_stopped_flood_on_its_next_request() {
    use tower::{ServiceExt, service_fn};

    subscriber();
    // A short window, so the test is quick (but long enough that the three events below fall
    // in one). No thread: the layer flushes when a request comes after the window.
    let coalescer = Arc::new(Coalescer::new(1, Duration::from_millis(300), 16).unwrap());
    let layer = SecurityLog::builder()
        .coalescer(coalescer.clone())
        .build()
        .unwrap();
    let ip: IpAddr = "192.0.2.8".parse().unwrap();
    for _ in 0..3 {
        SecurityEvent::rate_limit_exceeded("ip", "ip", Some(ip), None, false)
            .emit_via(layer.coalescer());
    }
    thread::sleep(Duration::from_millis(400));
    assert_eq!(
        events_of("192.0.2.8"),
        1,
        "nothing flushes without a request"
    );
    let service = tower::Layer::layer(
        &layer,
        service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(service.oneshot(http::Request::new(())))
        .unwrap();
    // That request reported the two suppressed.
    assert_eq!(summary_of("192.0.2.8").field("suppressed"), Some("2"));
    assert_eq!(events_of("192.0.2.8"), 2);
    assert_eq!(coalescer.pending(), 0);
}

#[test]
fn the_flusher_ends_with_its_coalescer() {
    let coalescer = Arc::new(Coalescer::new(1, Duration::from_secs(60), 16).unwrap());
    let flusher = coalescer.spawn_flusher(Duration::from_millis(10)).unwrap();
    drop(coalescer);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !flusher.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the flusher outlived its coalescer"
        );
        thread::sleep(Duration::from_millis(10));
    }
}
