//! `validate_plain_text` against `ammonia::clean` (the closest anchor: an HTML sanitiser) on
//! the same inputs, and the InputSanitizer layer's cost for a 500-character JSON body against
//! the bare handler, in one run.
//! Ids: `sanitize/text/<input>/{validate_plain_text,ammonia_clean}` and
//! `sanitize/layer/<case>/{input_sanitizer,bare}`.
//!
//! Needs the `rich-text` feature (for ammonia):
//! `cargo bench --bench sanitize --features rich-text -- --warm-up-time 1 --measurement-time 3 --noplot`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};
use tower_shield::sanitize::validate_plain_text;

fn prompt_ascii() -> String {
    let base = "Upbeat indie rock for a long summer drive with friends, windows down, \
                some 90s classics mixed in & a few O'Brian-style folk songs; no ballads please. ";
    base.repeat(4)[..500].to_owned()
}

fn prompt_unicode() -> String {
    "静かな夜のための日本のジャズ、ピアノとサックス 🎷🎹 موسيقى هادئة للمساء "
        .repeat(12)
        .chars()
        .take(500)
        .collect()
}

fn text(c: &mut Criterion) {
    let hostile =
        "<a href=\"java&#x09;script:alert(1)\">click</a> <img src=x onerror=alert(1)> ".repeat(7);
    let inputs = [
        ("ascii_500", prompt_ascii()),
        ("unicode_500", prompt_unicode()),
        ("hostile", hostile),
    ];
    for (name, input) in &inputs {
        let mut group = c.benchmark_group(format!("sanitize/text/{name}"));
        group.bench_function("validate_plain_text", |b| {
            b.iter(|| validate_plain_text(black_box(input)).is_ok())
        });
        group.bench_function("ammonia_clean", |b| {
            b.iter(|| ammonia::clean(black_box(input)).len())
        });
        group.finish();
    }
}

/// One request through `svc`, polled to completion with a no-op waker; returns the status.
fn once<S>(svc: &mut S, body: &Bytes) -> StatusCode
where
    S: Service<Request<Full<Bytes>>, Response = Response<()>, Error = Infallible>,
{
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(body.clone()))
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            return res.status();
        }
    }
}

fn layer(c: &mut Criterion) {
    let handler = || {
        service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(Response::new(())) })
    };
    let layer = tower_shield::config::echotuner_input_rules()
        .build()
        .unwrap();
    for (name, prompt) in [
        ("ascii_500", prompt_ascii()),
        ("unicode_500", prompt_unicode()),
    ] {
        let body = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "prompt": prompt, "session_id": "session_0123456789", "device_id": "device_0123456789"
            }))
            .unwrap(),
        );
        let mut ours =
            tower::util::MapResponse::new(layer.layer(handler()), |r: Response<_>| r.map(|_| ()));
        assert_eq!(once(&mut ours, &body), StatusCode::OK);
        let mut bare = handler();
        let mut group = c.benchmark_group(format!("sanitize/layer/{name}"));
        group.bench_function("input_sanitizer", |b| {
            b.iter(|| once(&mut ours, black_box(&body)))
        });
        group.bench_function("bare", |b| b.iter(|| once(&mut bare, black_box(&body))));
        group.finish();
    }
}

criterion_group!(benches, text, layer);
criterion_main!(benches);
