//! Input validation on allow-lists, and the text functions behind it.
//!
//! The EchoTuner guide validates input with a block-list (`'<script'`, `'javascript:'`,
//! `'data:'`), which dozens of known payloads walk past: `<img src=x onerror=…>`,
//! `java&#x09;script:`, fullwidth `＜script＞`. This module does it the way OWASP asks:
//!
//! - **Allow-lists.** Identifiers match an explicit [`Pattern`] of ASCII bytes with length
//!   bounds (no regex engine, no `\w` that lets `ａｂｃ` or `dév` through); URLs parse with
//!   the WHATWG parser and must use an allowed scheme ([`UrlRule`]); free text has length
//!   bounds in characters.
//! - **Canonical input first.** [`validate_plain_text`] judges a text after NFKC
//!   normalisation and character-reference decoding, so no encoding hides a tag, a handler
//!   or a script URL, and still accepts `O'Brian`, `a < b`, `I <3 jazz`, emoji and every
//!   script.
//! - **Refuse, don't rewrite, by default.** A broken rule refuses the request with an RFC 9457
//!   problem document naming the field and the rule, never the value, and one
//!   `input_validation_fail` security event. Rewriting is opt-in per field
//!   ([`Field::sanitize`]); escaping belongs at output ([`escape_html`]).
//!
//! # Functions
//!
//! ```
//! use tower_shield::sanitize::{escape_html, sanitize_filename, sanitize_text, validate_plain_text};
//!
//! assert!(validate_plain_text("I <3 jazz & rock'n'roll 🎷").is_ok());
//! assert!(validate_plain_text("<svg/onload=alert(1)>").is_err());
//! assert_eq!(escape_html("a < b"), "a &lt; b");
//! assert_eq!(sanitize_text("＜b＞bold\u{1b}[2J", 50), "&lt;b&gt;bold[2J");
//! assert_eq!(sanitize_filename("../secret.txt").unwrap(), "_secret.txt");
//! ```
//!
//! # The layer
//!
//! [`InputSanitizer::builder`] collects rules for headers ([`HeaderRule`]), query parameters
//! and JSON bodies ([`Field`]), per route (method and exact path, or a prefix ending in
//! `/*`). On a route with JSON-body rules the layer:
//!
//! 1. refuses a `Content-Type` other than `application/json` (or `…+json`) with **415**;
//! 2. refuses a `Content-Length` over the [body limit](InputSanitizerBuilder::body_limit)
//!    with **413** before reading a byte, and counts a body without one while it streams,
//!    refusing with 413 the moment it passes the limit;
//! 3. refuses invalid UTF-8, malformed JSON, a root that is not an object, nesting deeper than
//!    [`max_depth`](InputSanitizerBuilder::max_depth), more keys than
//!    [`max_keys`](InputSanitizerBuilder::max_keys), and a key given twice in one object
//!    (so that no two JSON parsers can disagree on the value) with **400**;
//! 4. checks each field rule, and refuses every broken one at once with **422**;
//! 5. hands the inner service the same body type, rebuilt from the buffered bytes with
//!    `B::from(bytes)` and an exact `Content-Length` (a field in sanitize mode rewritten;
//!    `Transfer-Encoding` and trailers dropped). A body that fails while it is read is
//!    refused with 400.
//!
//! Header and query rules are checked on every request their route matches, and refused with
//! **400**; a header or parameter with a rule must come exactly once. On routes with no body
//! rule the body is passed on unread and unbounded by this layer: bound it there with your
//! server's limit (axum's `DefaultBodyLimit`, tower-http's `RequestBodyLimitLayer`).
//!
//! Every refusal emits one `tracing` event at `WARN` on target `tower_shield::security`, with
//! `event = "input_validation_fail"`, `owasp = "input_validation_fail"`, `status`, and
//! `field` and `rule` (comma-separated when several broke): names from your configuration,
//! never a value from the request. The problem document lists the same under
//! `invalid-params` (`name`, `in`, `rule`, `reason`).
//!
//! The request body type must implement [`http_body::Body`] and `From<Bytes>`:
//! `axum::body::Body` does, so the layer goes straight onto an axum `Router`.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Method, Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::sanitize::{Field, InputSanitizer, Pattern};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = InputSanitizer::builder()
//!     .json_body(Method::POST, "/playlist/*", [
//!         Field::new("prompt").required().length(1, 500).plain_text(),
//!         Field::new("device_id").required().pattern(Pattern::ascii_id(1, 64)),
//!     ])
//!     .body_limit(64 * 1024)
//!     .build()?;
//! let app = ServiceBuilder::new().layer(layer).service(service_fn(
//!     |req: Request<Full<Bytes>>| async move {
//!         // The handler sees the validated body.
//!         let body = req.into_body().collect().await?.to_bytes();
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
//!     },
//! ));
//!
//! let post = |json: &'static str| {
//!     Request::post("/playlist/generate")
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from_static(json.as_bytes())))
//! };
//! let ok = app.clone().oneshot(post(r#"{"prompt":"jazz for O'Brian <3","device_id":"dev_1"}"#)?).await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//!
//! let bad = app.clone().oneshot(post(r#"{"prompt":"<img src=x onerror=alert(1)>","device_id":"dev_1"}"#)?).await?;
//! assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
//! let problem: serde_json::Value =
//!     serde_json::from_slice(&bad.into_body().collect().await?.to_bytes())?;
//! assert_eq!(problem["invalid-params"][0]["name"], "prompt");
//! assert_eq!(problem["invalid-params"][0]["rule"], "plain_text");
//! assert!(!problem.to_string().contains("onerror")); // the value is never echoed
//! # Ok(())
//! # }
//! ```

mod body;
mod filename;
mod layer;
#[cfg(feature = "rich-text")]
mod rich;
mod rules;
mod service;
mod text;
mod url;

use std::sync::Arc;

use http::Method;

pub use filename::{FilenameError, sanitize_filename};
pub use layer::InputSanitizerLayer;
#[cfg(feature = "rich-text")]
#[cfg_attr(docsrs, doc(cfg(feature = "rich-text")))]
pub use rich::RichText;
pub use rules::{Field, HeaderRule, Mode, Pattern};
pub use service::{InputSanitizerService, ResponseFuture};
pub use text::{PlainTextError, escape_html, sanitize_text, validate_plain_text};
pub use url::{UrlError, UrlRule};

use crate::error::{ConfigError, ConfigErrors};
use crate::route::Route;
use crate::security_log::Coalescer;
use layer::Shared;
use rules::{BodyRule, JsonLimits, QueryRule};

/// An opaque identifier (a device or session id): `^[A-Za-z0-9_-]{1,64}$`.
pub const ID_PATTERN: Pattern = Pattern::ascii_id(1, 64);

/// Entry point: [`InputSanitizer::builder`].
#[derive(Debug, Clone, Copy)]
pub struct InputSanitizer;

impl InputSanitizer {
    /// A builder with no rules, a 64 KiB body limit, JSON nesting up to 32 levels and up to
    /// 1,000 keys.
    pub fn builder() -> InputSanitizerBuilder {
        InputSanitizerBuilder {
            headers: Vec::new(),
            queries: Vec::new(),
            bodies: Vec::new(),
            body_limit: 64 * 1024,
            max_depth: 32,
            max_keys: 1000,
            coalescer: None,
        }
    }
}

/// Builds an [`InputSanitizerLayer`]; [`build`](Self::build) reports every problem at once.
#[derive(Debug, Clone)]
pub struct InputSanitizerBuilder {
    headers: Vec<HeaderRule>,
    queries: Vec<(Method, String, Vec<Field>)>,
    bodies: Vec<(Method, String, Vec<Field>)>,
    body_limit: usize,
    max_depth: usize,
    max_keys: usize,
    coalescer: Option<Arc<Coalescer>>,
}

impl InputSanitizerBuilder {
    /// The coalescer of the security events this layer emits (default: a
    /// [`Coalescer::default`] of this layer's own); pass the log layer's
    /// ([`SecurityLogLayer::coalescer`](crate::security_log::SecurityLogLayer::coalescer)) to
    /// share its flood control and flushing.
    pub fn coalescer(mut self, coalescer: Arc<Coalescer>) -> Self {
        self.coalescer = Some(coalescer);
        self
    }

    /// Adds a header rule. Every rule whose routes match a request applies.
    pub fn header(mut self, rule: HeaderRule) -> Self {
        self.headers.push(rule);
        self
    }

    /// Query-parameter rules for `method` on `path` (exact, or a prefix ending in `/*`).
    /// Names and values are percent-decoded once (`+` is a space) before they are checked;
    /// a value that is not UTF-8 once decoded is refused. The first matching route's rules
    /// apply. Query parameters are only ever refused, never rewritten.
    pub fn query(
        mut self,
        method: Method,
        path: &str,
        fields: impl IntoIterator<Item = Field>,
    ) -> Self {
        self.queries
            .push((method, path.to_owned(), fields.into_iter().collect()));
        self
    }

    /// JSON-body rules for `method` on `path` (exact, or a prefix ending in `/*`): the body
    /// must be a JSON object within the limits and each field must pass its rule. The first
    /// matching route's rules apply. Members without a rule are passed on unchecked; with no
    /// fields at all, only the content type, size and shape are checked.
    pub fn json_body(
        mut self,
        method: Method,
        path: &str,
        fields: impl IntoIterator<Item = Field>,
    ) -> Self {
        self.bodies
            .push((method, path.to_owned(), fields.into_iter().collect()));
        self
    }

    /// The largest body accepted, in bytes (default 64 KiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The deepest nesting of JSON arrays and objects accepted (default 32).
    pub fn max_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels;
        self
    }

    /// The most object members accepted in one JSON body, at all depths (default 1,000).
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys;
        self
    }

    /// The layer, or every problem with the settings.
    pub fn build(self) -> Result<InputSanitizerLayer, ConfigError> {
        let mut errors = ConfigErrors::default();
        if self.body_limit == 0 {
            errors.push("sanitize.body_limit", "must be at least 1 byte");
        }
        if self.max_depth == 0 {
            errors.push("sanitize.max_depth", "must be at least 1 (the root object)");
        }
        if self.max_keys == 0 {
            errors.push("sanitize.max_keys", "must be at least 1");
        }
        let mut headers = Vec::new();
        for rule in self.headers {
            let mut problems = Vec::new();
            let compiled = rule.compile(&mut problems);
            for p in problems {
                errors.push("sanitize.header", p);
            }
            headers.extend(compiled);
        }
        let mut compile = |setting: &'static str,
                           in_query: bool,
                           rules: Vec<(Method, String, Vec<Field>)>|
         -> Vec<(Route, Vec<Field>)> {
            rules
                .into_iter()
                .map(|(method, path, fields)| {
                    let route = Route::new(method, &path);
                    if let Some(p) = route.problem() {
                        errors.push(setting, p);
                    }
                    // A body rule with no fields still checks type, size and shape.
                    if in_query && fields.is_empty() {
                        errors.push(setting, format!("route {path:?} has no field rules"));
                    }
                    for field in &fields {
                        for p in field.problems(in_query) {
                            errors.push(setting, p);
                        }
                    }
                    (route, fields)
                })
                .collect()
        };
        let queries = compile("sanitize.query", true, self.queries)
            .into_iter()
            .map(|(route, fields)| QueryRule { route, fields })
            .collect();
        let bodies = compile("sanitize.json_body", false, self.bodies)
            .into_iter()
            .map(|(route, fields)| BodyRule { route, fields })
            .collect();
        let shared = Shared {
            headers,
            queries,
            bodies,
            body_limit: self.body_limit,
            json: JsonLimits {
                max_depth: self.max_depth,
                max_keys: self.max_keys,
            },
            events: self.coalescer.unwrap_or_default(),
        };
        errors.finish(|| InputSanitizerLayer {
            shared: std::sync::Arc::new(shared),
        })
    }
}
