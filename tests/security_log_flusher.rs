//! The flusher thread: a flood that stops is summarised without waiting for another event.
//!
//! In a test binary of its own: the flusher logs from its own thread, so this binary installs
//! a process-wide subscriber.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tower_shield::security_log::{Coalescer, SecurityEvent};

#[test]
fn a_flood_that_stops_is_summarised_without_another_event() {
    let subscriber = common::CaptureSubscriber::default();
    tracing::subscriber::set_global_default(subscriber.clone()).unwrap();
    let coalescer = Arc::new(Coalescer::new(1, Duration::from_millis(200), 16).unwrap());
    let _flusher = coalescer.spawn_flusher(Duration::from_millis(20)).unwrap();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..4 {
        SecurityEvent::rate_limit_exceeded("ip", "ip", Some(ip), None, false).emit_via(&coalescer);
    }
    // The first passed; three are counted, and nothing else is ever emitted.
    let deadline = Instant::now() + Duration::from_secs(5);
    let summary = loop {
        let events = subscriber.events();
        if let Some(summary) = events.iter().find(|e| e.field("suppressed").is_some()) {
            break summary.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no summary after 5 s: {events:?}"
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(summary.field("suppressed"), Some("3"));
    assert_eq!(summary.field("event"), Some("rate_limit_exceeded"));
    assert_eq!(
        subscriber.events().len(),
        2,
        "the first event and its summary"
    );
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
