//! Security response headers: safe defaults, a typed CSP with per-request nonces, presets, HSTS
//! only where it belongs, banner removal, and handlers that can still override.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::secure_headers::SecureHeaders;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = ServiceBuilder::new()
//!     .layer(SecureHeaders::builder().build()?)
//!     .service(service_fn(|_req: Request<()>| async {
//!         let mut res = Response::new(String::from("not here"));
//!         *res.status_mut() = StatusCode::NOT_FOUND;
//!         res.headers_mut().insert("server", "my-framework/1.2".parse().unwrap());
//!         Ok::<_, std::convert::Infallible>(res)
//!     }));
//!
//! let req = Request::get("https://example.com/missing").body(())?;
//! let res = app.oneshot(req).await?;
//! // errors get the headers too, and the banner is gone
//! assert_eq!(res.status(), StatusCode::NOT_FOUND);
//! assert_eq!(res.headers()["x-frame-options"], "DENY");
//! assert_eq!(res.headers()["x-xss-protection"], "0");
//! assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
//! assert!(res.headers()["content-security-policy"].to_str()?.contains("frame-ancestors 'none'"));
//! assert!(!res.headers().contains_key("server"));
//! # Ok(())
//! # }
//! ```
//!
//! # The default set
//!
//! [`SecureHeaders::builder`] starts from helmet 8's set, tightened where current OWASP
//! guidance says so:
//!
//! | header | value |
//! |---|---|
//! | `Content-Security-Policy` | [`Csp::recommended`]: helmet 8's policy with `frame-ancestors 'none'` |
//! | `Cross-Origin-Opener-Policy` | `same-origin` |
//! | `Cross-Origin-Resource-Policy` | `same-origin` |
//! | `Origin-Agent-Cluster` | `?1` |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` |
//! | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains`, HTTPS requests only ([`Hsts`]) |
//! | `X-Content-Type-Options` | `nosniff` |
//! | `X-DNS-Prefetch-Control` | `off` |
//! | `X-Download-Options` | `noopen` |
//! | `X-Frame-Options` | `DENY` |
//! | `X-Permitted-Cross-Domain-Policies` | `none` |
//! | `X-XSS-Protection` | `0` |
//! | `Server`, `X-Powered-By` | removed |
//!
//! **Why `X-XSS-Protection: 0` and not `1; mode=block`.** The EchoTuner guide (and many older
//! guides) ask for `1; mode=block`. The XSS auditor that header switches on has been removed
//! from every current browser, and where it still runs it made sites *less* safe: attackers
//! used its selective blocking to disable legitimate scripts or to leak page content
//! (OWASP Secure Headers Project: "its use can introduce additional security issues on the
//! client side … it is recommended to set the header as `X-XSS-Protection: 0`"; helmet
//! switched to `0` in v4 for the same reason). `0` turns the auditor off in the old browsers
//! that still have it; the Content-Security-Policy does the real work.
//!
//! Other starting points: [`SecureHeaders::helmet`] (helmet 8 exactly),
//! [`SecureHeaders::owasp`] (the OWASP project's list) and [`SecureHeaders::api`] (JSON APIs).
//!
//! # Handlers stay in charge
//!
//! By default a header the handler set wins ([`Merge::KeepExisting`], helmet's semantics), so a
//! route that needs a looser policy sets its own. Each header can instead
//! [`Merge::Override`] or [`Merge::Append`] ([`SecureHeadersBuilder::merge`]), and a handler
//! can put a [`SkipSecureHeaders`] response extension on its response to leave some or all
//! headers off that one response.
//!
//! # Nonces
//!
//! With [`CspBuilder::nonce`] every request gets a fresh [`CspNonce`] in its extensions, and the
//! response's policy carries `'nonce-<it>'` in the chosen directives:
//!
//! ```
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::secure_headers::{Csp, CspNonce, SecureHeaders};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = SecureHeaders::builder()
//!     .csp(Csp::recommended().replace("script-src", ["'strict-dynamic'"]).nonce("script-src"))
//!     .build()?;
//! let app = ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<()>| async move {
//!     let nonce = req.extensions().get::<CspNonce>().copied();
//!     let body = format!("<script nonce=\"{}\">go()</script>", nonce.map(|n| n.to_string()).unwrap_or_default());
//!     Ok::<_, std::convert::Infallible>(Response::new(body))
//! }));
//!
//! let res = app.oneshot(Request::new(())).await?;
//! let csp = res.headers()["content-security-policy"].to_str()?.to_owned();
//! let body = res.into_body();
//! let nonce = &body[15..39];
//! assert!(csp.contains(&format!("script-src 'strict-dynamic' 'nonce-{nonce}'")));
//! # Ok(())
//! # }
//! ```
//!
//! # Where to put it
//!
//! The layer decorates whatever response comes back from the service it wraps, so put it
//! outside the layers that answer on their own (rate limiting's 429, CORS preflights, the
//! router's 404), as [`ServiceBuilder`](https://docs.rs/tower/latest/tower/struct.ServiceBuilder.html)'s
//! first layers or axum's `Router::layer`. An inner service's `Err` has no response to
//! decorate: turn errors into responses (axum's `HandleErrorLayer`) inside this layer.
//!
//! # Cost
//!
//! Every static value is rendered and parsed once, in [`SecureHeadersBuilder::build`]; a
//! response costs a few `HeaderMap` lookups and reference-count increments and no heap
//! allocation of the layer's own (the response's `HeaderMap` may grow, once, to fit the
//! set). A nonce costs the request-extension insert (three small allocations inside
//! `http::Extensions`) and the policy text (one). The response body type is unchanged: the
//! service returns the inner `Response<B>`.

mod csp;
mod future;
mod layer;
mod nonce;
mod prefill;
mod presets;
mod service;

use std::borrow::Cow;
use std::time::Duration;

use crate::client_ip::ClientIpStrategy;
use http::HeaderName;
use http::header::{CONTENT_SECURITY_POLICY, STRICT_TRANSPORT_SECURITY};

pub use csp::{Csp, CspBuilder};
pub use future::ResponseFuture;
pub use layer::SecureHeadersLayer;
pub use nonce::CspNonce;
pub use prefill::{PrefillFuture, PrefillSecureHeadersLayer, PrefillSecureHeadersService};
pub use presets::{OWASP_PERMISSIONS_POLICY, OWASP_REMOVE_LIST};
pub use service::SecureHeadersService;

use crate::error::ConfigError;
use presets::Preset;

type Str = Cow<'static, str>;

/// Entry point: [`SecureHeaders::builder`] and the presets.
#[derive(Debug, Clone, Copy)]
pub struct SecureHeaders;

impl SecureHeaders {
    /// The crate's default set (see the [module docs](self)).
    pub fn builder() -> SecureHeadersBuilder {
        SecureHeadersBuilder::from_preset(presets::recommended())
    }

    /// helmet 8.3's `helmet()` exactly: its CSP (byte for byte), COOP and CORP `same-origin`,
    /// `Origin-Agent-Cluster: ?1`, `Referrer-Policy: no-referrer`, HSTS one year with
    /// subdomains, `nosniff`, `X-DNS-Prefetch-Control: off`, `X-Download-Options: noopen`,
    /// `X-Frame-Options: SAMEORIGIN`, `X-Permitted-Cross-Domain-Policies: none`,
    /// `X-XSS-Protection: 0`; `X-Powered-By` removed. For people migrating from Express.
    pub fn helmet() -> SecureHeadersBuilder {
        SecureHeadersBuilder::from_preset(presets::helmet())
    }

    /// The OWASP Secure Headers Project's recommended set (`ci/headers_add.json`):
    /// `Cache-Control: no-store, max-age=0`, its CSP ([`Csp::owasp`]),
    /// `Cross-Origin-Embedder-Policy: require-corp`, COOP and CORP `same-origin`,
    /// [`OWASP_PERMISSIONS_POLICY`], `Referrer-Policy: no-referrer`, HSTS
    /// `max-age=63072000; includeSubDomains`, `nosniff`, `X-DNS-Prefetch-Control: off`,
    /// `X-Frame-Options: deny`, `X-Permitted-Cross-Domain-Policies: none`; every header of
    /// [`OWASP_REMOVE_LIST`] removed.
    ///
    /// One deliberate difference: OWASP's list also has `Clear-Site-Data:
    /// "cache","cookies","storage"`, and its own best-practice text says to send it on the
    /// logout response only (on every response it would log every user out on every request).
    /// Set it in your logout handler.
    pub fn owasp() -> SecureHeadersBuilder {
        SecureHeadersBuilder::from_preset(presets::owasp())
    }

    /// For JSON APIs (after the OWASP REST Security Cheat Sheet): `Cache-Control: no-store`,
    /// `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`,
    /// `Cross-Origin-Resource-Policy: same-origin`, `Referrer-Policy: no-referrer`,
    /// HSTS one year with subdomains, `X-Content-Type-Options: nosniff`,
    /// `X-Frame-Options: DENY`; `Server` and `X-Powered-By` removed.
    pub fn api() -> SecureHeadersBuilder {
        SecureHeadersBuilder::from_preset(presets::api())
    }

    /// A builder that sends nothing and removes nothing, to assemble a set by hand.
    pub fn empty() -> SecureHeadersBuilder {
        SecureHeadersBuilder {
            headers: Vec::new(),
            merges: Vec::new(),
            default_merge: Merge::KeepExisting,
            csp: None,
            csp_report_only: None,
            hsts: None,
            client_ip: ClientIpStrategy::peer(),
            remove: Vec::new(),
            reporting_endpoints: Vec::new(),
        }
    }
}

/// What to do when the response already carries a header this layer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Merge {
    /// Keep the response's value and add nothing (the default: the handler wins).
    #[default]
    KeepExisting,
    /// Replace every value the response carries with this layer's.
    Override,
    /// Add this layer's value after the response's. For `Content-Security-Policy` this means
    /// both policies apply (a browser enforces every policy it receives). A field that takes
    /// one value (`X-Frame-Options`, `Strict-Transport-Security`, `Cross-Origin-*-Policy`…)
    /// cannot be appended to: two values would make browsers ignore or misread it, so
    /// [`build`](SecureHeadersBuilder::build) refuses it, naming the field.
    Append,
}

/// When `Strict-Transport-Security` is sent.
///
/// The value defaults to `max-age=31536000; includeSubDomains` (helmet 8; one year), never
/// `preload` unless asked. It is sent only when the request is known to have come over HTTPS:
/// its URI has the `https` scheme (HTTP/2 and absolute-form requests), or it came from a
/// [trusted proxy](SecureHeadersBuilder::client_ip) that says `X-Forwarded-Proto: https`
/// (or `Forwarded: proto=https`); or always with [`Hsts::always`]. Never for a request whose
/// host is `localhost`, `*.localhost`, `127.0.0.0/8` or `[::1]`: a browser that gets HSTS
/// from a development server on localhost refuses plain HTTP there for a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Hsts {
    max_age: u64,
    include_subdomains: bool,
    preload: bool,
    always: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Hsts {
            max_age: 31_536_000,
            include_subdomains: true,
            preload: false,
            always: false,
        }
    }
}

impl Hsts {
    /// One year, with subdomains, HTTPS requests only.
    pub fn new() -> Self {
        Self::default()
    }

    /// `max-age` (whole seconds). `Duration::ZERO` tells browsers to forget the policy.
    pub fn max_age(self, max_age: Duration) -> Self {
        self.max_age_secs(max_age.as_secs())
    }

    fn max_age_secs(mut self, secs: u64) -> Self {
        self.max_age = secs;
        self
    }

    /// Whether `includeSubDomains` is sent (default true).
    pub fn include_subdomains(mut self, yes: bool) -> Self {
        self.include_subdomains = yes;
        self
    }

    /// Adds `preload`. Only do this when the domain is being submitted to hstspreload.org:
    /// removal from browsers' preload lists takes months. Requires `includeSubDomains` and a
    /// `max-age` of at least one year (checked at build).
    pub fn preload(mut self) -> Self {
        self.preload = true;
        self
    }

    /// Sends HSTS on every response whatever the scheme (still never for localhost), for
    /// servers known to be reachable only over HTTPS.
    pub fn always(mut self) -> Self {
        self.always = true;
        self
    }

    fn render(&self) -> String {
        let mut s = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            s.push_str("; includeSubDomains");
        }
        if self.preload {
            s.push_str("; preload");
        }
        s
    }
}

/// A response extension that leaves this layer's headers off one response.
///
/// With axum, return `(Extension(SkipSecureHeaders::only([CONTENT_SECURITY_POLICY])), …)`
/// from a handler to send its own, looser policy even when the layer's CSP is
/// [`Merge::Override`]. Banner removal still applies.
#[derive(Debug, Clone, Default)]
pub struct SkipSecureHeaders {
    only: Option<Vec<HeaderName>>,
}

impl SkipSecureHeaders {
    /// Adds none of this layer's headers to this response.
    pub fn all() -> Self {
        SkipSecureHeaders { only: None }
    }

    /// Adds none of these headers (and the others as usual) to this response.
    pub fn only(names: impl IntoIterator<Item = HeaderName>) -> Self {
        SkipSecureHeaders {
            only: Some(names.into_iter().collect()),
        }
    }

    pub(crate) fn skips_all(&self) -> bool {
        self.only.is_none()
    }

    pub(crate) fn skips(&self, name: &HeaderName) -> bool {
        match &self.only {
            None => true,
            Some(names) => names.contains(name),
        }
    }
}

/// Builds a [`SecureHeadersLayer`]; see [`SecureHeaders`] for the starting points.
///
/// Nothing is checked until [`build`](Self::build), which reports every problem at once.
#[derive(Debug, Clone)]
#[must_use]
pub struct SecureHeadersBuilder {
    headers: Vec<(Str, Str)>,
    merges: Vec<(Str, Merge)>,
    default_merge: Merge,
    csp: Option<CspBuilder>,
    csp_report_only: Option<CspBuilder>,
    hsts: Option<Hsts>,
    client_ip: ClientIpStrategy,
    remove: Vec<Str>,
    reporting_endpoints: Vec<(Str, Str)>,
}

impl SecureHeadersBuilder {
    fn from_preset(p: Preset) -> Self {
        let mut b = SecureHeaders::empty();
        b.headers = p
            .headers
            .iter()
            .map(|(n, v)| (Str::Borrowed(*n), Str::Borrowed(*v)))
            .collect();
        b.csp = Some(p.csp);
        b.hsts = Some(p.hsts);
        b.remove = p.remove.iter().map(|n| Str::Borrowed(*n)).collect();
        b
    }

    /// Sends `name: value`, replacing the value this builder had for `name`.
    /// `Content-Security-Policy` and `Strict-Transport-Security` have their own methods
    /// ([`csp`](Self::csp), [`hsts`](Self::hsts)).
    pub fn header(mut self, name: impl Into<Str>, value: impl Into<Str>) -> Self {
        let name = name.into();
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(entry) => entry.1 = value,
            None => self.headers.push((name, value)),
        }
        self
    }

    /// Stops sending `name` (any header of the set, including `Content-Security-Policy`,
    /// `Content-Security-Policy-Report-Only` and `Strict-Transport-Security`).
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if name.eq_ignore_ascii_case(CONTENT_SECURITY_POLICY.as_str()) {
            self.csp = None;
        }
        if name.eq_ignore_ascii_case("content-security-policy-report-only") {
            self.csp_report_only = None;
        }
        if name.eq_ignore_ascii_case(STRICT_TRANSPORT_SECURITY.as_str()) {
            self.hsts = None;
        }
        self
    }

    /// How `name` merges with a value the response already has (default
    /// [`Merge::KeepExisting`], or what [`default_merge`](Self::default_merge) says).
    pub fn merge(mut self, name: impl Into<Str>, merge: Merge) -> Self {
        self.merges.push((name.into(), merge));
        self
    }

    /// How every header without its own [`merge`](Self::merge) merges.
    pub fn default_merge(mut self, merge: Merge) -> Self {
        self.default_merge = merge;
        self
    }

    /// The enforced `Content-Security-Policy`, checked at build.
    pub fn csp(mut self, csp: CspBuilder) -> Self {
        self.csp = Some(csp);
        self
    }

    /// A `Content-Security-Policy-Report-Only` policy, sent beside the enforced one: try a
    /// stricter policy and watch its reports before enforcing it. Nonces go into both.
    pub fn csp_report_only(mut self, csp: CspBuilder) -> Self {
        self.csp_report_only = Some(csp);
        self
    }

    /// The `Strict-Transport-Security` policy (see [`Hsts`] for when it is sent).
    pub fn hsts(mut self, hsts: Hsts) -> Self {
        self.hsts = Some(hsts);
        self
    }

    /// Whose word is believed on whether a request came over HTTPS (for HSTS): the proxies
    /// `strategy` trusts, through `X-Forwarded-Proto` or `Forwarded: proto=` (the family of
    /// the header it reads; see [`ClientContext::is_https`]). Default
    /// [`ClientIpStrategy::peer`]: no forwarding header is believed. Give it the strategy of
    /// the other layers, and the request's [`ClientContext`] is resolved once for all.
    ///
    /// [`ClientContext`]: crate::client_ip::ClientContext
    /// [`ClientContext::is_https`]: crate::client_ip::ClientContext::is_https
    pub fn client_ip(mut self, strategy: ClientIpStrategy) -> Self {
        self.client_ip = strategy;
        self
    }

    /// Removes `name` from every response (a banner such as `Server`).
    pub fn remove(mut self, name: impl Into<Str>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// Removes every header of [`OWASP_REMOVE_LIST`] too.
    pub fn remove_owasp_banners(mut self) -> Self {
        self.remove
            .extend(OWASP_REMOVE_LIST.iter().map(|n| Str::Borrowed(*n)));
        self
    }

    /// Adds an endpoint to the `Reporting-Endpoints` header (`name="url"`), where a CSP's
    /// `report-to name` sends its violation reports.
    pub fn reporting_endpoint(mut self, name: impl Into<Str>, url: impl Into<Str>) -> Self {
        self.reporting_endpoints.push((name.into(), url.into()));
        self
    }

    /// Checks every setting and renders every value; returns the layer or every problem.
    pub fn build(self) -> Result<SecureHeadersLayer, ConfigError> {
        layer::compile(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_builds() {
        for b in [
            SecureHeaders::builder(),
            SecureHeaders::helmet(),
            SecureHeaders::owasp(),
            SecureHeaders::api(),
            SecureHeaders::empty(),
        ] {
            b.build().unwrap();
        }
    }

    #[test]
    fn hsts_renders() {
        assert_eq!(Hsts::new().render(), "max-age=31536000; includeSubDomains");
        assert_eq!(
            Hsts::new()
                .max_age(Duration::from_secs(63_072_000))
                .preload()
                .render(),
            "max-age=63072000; includeSubDomains; preload"
        );
        assert_eq!(
            Hsts::new().include_subdomains(false).render(),
            "max-age=31536000"
        );
    }
}
