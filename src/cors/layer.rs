use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use tower_layer::Layer;

use super::origin::{OriginPattern, is_public_suffix};
use super::preflight::{FORBIDDEN_METHODS, HeaderRule, Refusal, is_token, method_allowed};
use super::service::CorsService;
use super::{CorsBuilder, InnerHeaders, MaxAge, OriginFn};
use crate::error::{ConfigError, ConfigErrors};
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{EventLogged, SecurityEvent};

const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
/// Every response header of the CORS protocol, the ones an inner service's response loses.
const CORS_RESPONSE_HEADERS: [HeaderName; 7] = [
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
    ALLOW_PRIVATE_NETWORK,
];
/// Above this many exact origins, look them up in a hash map.
const LINEAR_EXACT: usize = 8;

/// Answers CORS preflights and adds CORS headers to every response of the wrapped service.
///
/// Built by [`Cors::builder`](super::Cors::builder). Cloning is cheap (one shared, immutable
/// configuration).
#[derive(Clone)]
pub struct CorsLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("CorsLayer")
            .field("any_origin", &s.any_origin)
            .field("origins", &s.exact)
            .field("patterns", &s.patterns)
            .field("origin_fn", &s.origin_fn.is_some())
            .field("allow_null", &s.allow_null)
            .field("credentials", &s.credentials)
            .field("methods", &s.methods_value)
            .field("headers", &s.header_rule)
            .field("expose", &s.expose)
            .field("max_age", &s.max_age)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

impl CorsLayer {
    /// Whether this layer allows `origin` (a request's `Origin` value, byte for byte).
    pub fn allows(&self, origin: &str) -> bool {
        self.shared.any_origin
            || HeaderValue::from_str(origin).is_ok_and(|v| self.shared.allowed(&v).is_some())
    }

    /// Whether responses carry `Access-Control-Allow-Credentials: true` for allowed origins.
    pub fn allows_credentials(&self) -> bool {
        self.shared.credentials
    }
}

/// Everything the services of one layer share, immutable after build.
pub(crate) struct Shared {
    /// The flood control of the events this layer emits.
    pub(crate) events: Arc<crate::security_log::Coalescer>,
    /// Public mode: `*`.
    pub(crate) any_origin: bool,
    /// Exact origins, as ready header values.
    exact: Box<[HeaderValue]>,
    exact_map: Option<HashMap<Bytes, HeaderValue, foldhash::fast::RandomState>>,
    patterns: Box<[OriginPattern]>,
    origin_fn: Option<OriginFn>,
    allow_null: bool,
    credentials: bool,
    methods: Box<[Method]>,
    methods_value: HeaderValue,
    header_rule: HeaderRule,
    /// Whether a preflight answer names the (checked) headers asked for.
    echo_headers: bool,
    /// Otherwise, the listed headers, if any.
    headers_value: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    preflight_status: StatusCode,
    inner_headers: InnerHeaders,
}

/// What to write on an actual response.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Public mode: `*` and the exposed headers.
    Any,
    /// This origin is allowed.
    Allowed(HeaderValue),
    /// No origin, or not allowed: `Vary: Origin` only.
    Refused,
}

impl Shared {
    /// The `Access-Control-Allow-Origin` value for this request origin, if it is allowed.
    pub(crate) fn allowed(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let bytes = origin.as_bytes();
        if let Some(map) = &self.exact_map {
            if let Some(v) = map.get(bytes) {
                return Some(v.clone());
            }
        } else if let Some(v) = self.exact.iter().find(|v| v.as_bytes() == bytes) {
            return Some(v.clone());
        }
        if self.patterns.iter().any(|p| p.matches_bytes(bytes)) {
            return Some(origin.clone());
        }
        if bytes == b"null" {
            return self.allow_null.then(|| HeaderValue::from_static("null"));
        }
        if let Some(f) = &self.origin_fn {
            // only what a browser could send: visible ASCII, no spaces or commas
            if bytes.iter().all(|&b| b.is_ascii_graphic() && b != b',') {
                if let Ok(s) = origin.to_str() {
                    if f(s) {
                        return Some(origin.clone());
                    }
                }
            }
        }
        None
    }

    /// The decision for an actual (non-preflight) request.
    pub(crate) fn decide(&self, headers: &HeaderMap) -> Decision {
        if self.any_origin {
            return Decision::Any;
        }
        let mut origins = headers.get_all(ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (Some(origin), None) => match self.allowed(origin) {
                Some(v) => Decision::Allowed(v),
                None => Decision::Refused,
            },
            _ => Decision::Refused,
        }
    }

    /// Writes the CORS headers of an actual response.
    pub(crate) fn decorate(&self, headers: &mut HeaderMap, decision: Decision) {
        let keep = self.inner_headers == InnerHeaders::Keep
            && headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN);
        if !keep {
            crate::header_map::remove_listed(headers, &CORS_RESPONSE_HEADERS, |k| {
                CORS_RESPONSE_HEADERS.contains(k)
            });
        }
        let origin = match decision {
            Decision::Any => {
                if !keep {
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                    if let Some(e) = &self.expose {
                        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
                    }
                }
                return;
            }
            Decision::Allowed(origin) => Some(origin),
            Decision::Refused => None,
        };
        add_vary(headers, "origin");
        if keep {
            return;
        }
        if let Some(origin) = origin {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if self.credentials {
                headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if let Some(e) = &self.expose {
                headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
            }
        }
    }

    /// Checks a preflight request (already known to be one) and answers it.
    pub(crate) fn preflight<B>(&self, headers: &HeaderMap) -> Response<ShieldBody<B>> {
        match self.check_preflight(headers) {
            Ok(origin) => self.preflight_ok(headers, origin),
            Err(refusal) => {
                let origin = headers.get(ORIGIN).map_or(&b""[..], |v| v.as_bytes());
                let method = headers
                    .get(ACCESS_CONTROL_REQUEST_METHOD)
                    .map_or(&b""[..], |v| v.as_bytes());
                SecurityEvent::cors_refused(origin, refusal.reason())
                    .method(method)
                    .emit_via(&self.events);
                let mut response = Problem::new(StatusCode::FORBIDDEN)
                    .detail("cross-origin request refused")
                    .into_response();
                // logged above; the SecurityLog layer must not log this 403 again
                response.extensions_mut().insert(EventLogged);
                if !self.any_origin {
                    response
                        .headers_mut()
                        .insert(VARY, HeaderValue::from_static("origin"));
                }
                response
            }
        }
    }

    fn check_preflight(&self, headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
        let mut origins = headers.get_all(ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(o), None) => o,
            _ => return Err(Refusal::Origin),
        };
        let origin = if self.any_origin {
            HeaderValue::from_static("*")
        } else {
            self.allowed(origin).ok_or(Refusal::Origin)?
        };
        let mut methods = headers.get_all(ACCESS_CONTROL_REQUEST_METHOD).iter();
        match (methods.next(), methods.next()) {
            (Some(m), None) if method_allowed(m, &self.methods) => {}
            _ => return Err(Refusal::Method),
        }
        self.header_rule
            .check(headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS).iter())?;
        Ok(origin)
    }

    fn preflight_ok<B>(&self, request: &HeaderMap, origin: HeaderValue) -> Response<ShieldBody<B>> {
        let mut response = Response::new(ShieldBody::empty());
        *response.status_mut() = self.preflight_status;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone());
        let echoed = match (&self.headers_value, self.echo_headers) {
            (Some(list), false) => {
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, list.clone());
                false
            }
            (None, false) => false,
            (_, true) => {
                // "any": name exactly the (checked) headers asked for; a literal `*` would not
                // cover Authorization and means nothing with credentials
                let mut asked = request.get_all(ACCESS_CONTROL_REQUEST_HEADERS).iter();
                match (asked.next(), asked.next()) {
                    (None, _) => {}
                    (Some(one), None) => {
                        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, one.clone());
                    }
                    (Some(first), Some(second)) => {
                        let mut joined = Vec::with_capacity(64);
                        for v in [first, second].into_iter().chain(asked) {
                            if !joined.is_empty() {
                                joined.push(b',');
                            }
                            joined.extend_from_slice(v.as_bytes());
                        }
                        if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(joined)) {
                            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
                        }
                    }
                }
                true
            }
        };
        if let Some(max_age) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        let vary = match (self.any_origin, echoed) {
            (false, false) => Some("origin"),
            (false, true) => Some("origin, access-control-request-headers"),
            (true, true) => Some("access-control-request-headers"),
            (true, false) => None,
        };
        if let Some(v) = vary {
            headers.insert(VARY, HeaderValue::from_static(v));
        }
        response
    }
}

/// Adds `token` to the response's `Vary`, unless it is there already or `Vary` is `*`.
pub(crate) fn add_vary(headers: &mut HeaderMap, token: &'static str) {
    let mut present = false;
    for value in headers.get_all(VARY) {
        present = true;
        for t in value.as_bytes().split(|&b| b == b',') {
            let t = t.trim_ascii();
            if t == b"*" || t.eq_ignore_ascii_case(token.as_bytes()) {
                return;
            }
        }
    }
    if !present {
        headers.insert(VARY, HeaderValue::from_static(token));
        return;
    }
    // one combined line: the response's names, then ours
    let mut combined = Vec::with_capacity(64);
    for value in headers.get_all(VARY) {
        for t in value.as_bytes().split(|&b| b == b',') {
            let t = t.trim_ascii();
            if !t.is_empty() {
                combined.extend_from_slice(t);
                combined.extend_from_slice(b", ");
            }
        }
    }
    combined.extend_from_slice(token.as_bytes());
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(combined)) {
        headers.insert(VARY, v);
    }
}

pub(crate) fn compile(b: CorsBuilder) -> Result<CorsLayer, ConfigError> {
    let mut errors = ConfigErrors::default();
    let credentials = b.credentials;
    let mut any_origin = false;
    let mut allow_null = b.allow_null;
    let mut exact: Vec<HeaderValue> = Vec::new();
    let mut patterns: Vec<OriginPattern> = Vec::new();

    for entry in &b.origins {
        match entry.as_str() {
            "*" => {
                if credentials {
                    errors.push(
                        super::CORS_ALLOW_ORIGIN_SETTING,
                        format!(
                            "`*` (any origin) together with credentials ({} is true) can never \
                             work: browsers refuse `Access-Control-Allow-Origin: *` on a \
                             credentialed request. List the origins that may call the API, or \
                             turn credentials off for a public API",
                            super::CORS_ALLOW_CREDENTIALS_SETTING
                        ),
                    );
                }
                any_origin = true;
                continue;
            }
            "null" => {
                if b.allow_null {
                    allow_null = true;
                } else {
                    errors.push(
                        super::CORS_ALLOW_ORIGIN_SETTING,
                        "`null` is sent by sandboxed frames, `file:` and `data:` documents, so \
                         allowing it allows any attacker; remove it (or, knowing this, call \
                         `dangerously_allow_null_origin`)",
                    );
                }
                continue;
            }
            _ => {}
        }
        let pattern = match OriginPattern::parse(entry) {
            Ok(p) => p,
            Err(e) => {
                errors.push(super::CORS_ALLOW_ORIGIN_SETTING, format!("origin {e}"));
                continue;
            }
        };
        if credentials && !pattern.is_secure() {
            errors.push(
                super::CORS_ALLOW_ORIGIN_SETTING,
                format!(
                    "`{entry}` is plain http with credentials: anyone on the network path can \
                     put script on that origin and read the API as the user. Use https \
                     (only localhost may use http)"
                ),
            );
        }
        if let Some(suffix) = pattern.subdomains_of() {
            if credentials && is_public_suffix(suffix) {
                errors.push(
                    super::CORS_ALLOW_ORIGIN_SETTING,
                    format!(
                        "`{entry}` covers every site under the public suffix `{suffix}`, which \
                         anyone can register; with credentials any of them could read the API \
                         as the user. List your own origins"
                    ),
                );
            }
        }
        if patterns.iter().any(|p| p.as_str() == pattern.as_str()) {
            continue;
        }
        if let Some(origin) = pattern.as_origin() {
            match HeaderValue::from_str(origin.as_str()) {
                Ok(v) => exact.push(crate::header_map::prepared(v)),
                Err(_) => errors.push(
                    super::CORS_ALLOW_ORIGIN_SETTING,
                    format!("`{entry}` is not a header value"),
                ),
            }
        }
        patterns.push(pattern);
    }
    // exact origins are looked up on their own; `patterns` keeps only wildcards
    patterns.retain(|p| p.as_origin().is_none());
    exact.dedup();

    if any_origin && (!exact.is_empty() || !patterns.is_empty() || b.origin_fn.is_some()) {
        errors.push(
            super::CORS_ALLOW_ORIGIN_SETTING,
            "`*` (any origin) together with a list of origins: choose one",
        );
    }
    if any_origin && allow_null {
        // `*` covers `null` already
        allow_null = false;
    }
    let none_listed = exact.is_empty() && patterns.is_empty() && !any_origin && !allow_null;
    if none_listed && b.origin_fn.is_none() && !b.origins.iter().any(|o| o == "null") {
        let hint = if credentials {
            " (with credentials `*` is not possible either)"
        } else {
            " or `*` for a public API"
        };
        errors.push(
            super::CORS_ALLOW_ORIGIN_SETTING,
            format!(
                "no origin is allowed: list the origins that may call the API, such as \
                 `https://app.example.com`{hint}"
            ),
        );
    }
    if b.origin_fn.is_some() && credentials && !b.origin_fn_with_credentials {
        errors.push(
            "cors.allow_origin_fn",
            "an origin predicate with credentials lets every origin it wrongly accepts read \
             your users' data; use origins and patterns, or call \
             `dangerously_allow_origin_fn_with_credentials`",
        );
    }

    let mut methods: Vec<Method> = Vec::new();
    for m in &b.methods {
        if m == "*" {
            errors.push(
                "cors.allow_methods",
                "`*` is not a method: list the methods (a browser takes `*` literally with credentials)",
            );
            continue;
        }
        if !is_token(m.as_bytes()) {
            errors.push(
                "cors.allow_methods",
                format!("`{}` is not a method name", m.escape_debug()),
            );
            continue;
        }
        let upper = m.to_ascii_uppercase();
        if FORBIDDEN_METHODS.contains(&upper.as_str()) {
            errors.push(
                "cors.allow_methods",
                format!("`{m}` is a method browsers never send"),
            );
            continue;
        }
        if upper != *m
            && ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
                .contains(&upper.as_str())
        {
            errors.push(
                "cors.allow_methods",
                format!(
                    "`{m}`: methods are compared byte for byte and browsers send this one in \
                     upper case; did you mean `{upper}`?"
                ),
            );
            continue;
        }
        if let Ok(method) = Method::from_bytes(m.as_bytes()) {
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    let methods_value = join(methods.iter().map(Method::as_str))
        .filter(|_| !methods.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static("GET, HEAD, POST"));

    let mut listed: Vec<HeaderName> = Vec::new();
    let mut any_header = b.any_header;
    for h in &b.headers {
        if h == "*" {
            any_header = true;
            continue;
        }
        match header_name(h) {
            Some(name) if name.as_str().starts_with("access-control-") => errors.push(
                "cors.allow_headers",
                format!("`{h}` is a CORS protocol header, not one a request may carry"),
            ),
            Some(name) => {
                if !listed.contains(&name) {
                    listed.push(name);
                }
            }
            None => errors.push(
                "cors.allow_headers",
                format!("`{}` is not a header name", h.escape_debug()),
            ),
        }
    }
    let headers_value = join(listed.iter().map(HeaderName::as_str)).filter(|v| !v.is_empty());
    let header_rule = HeaderRule {
        listed: listed.into_boxed_slice(),
        any: any_header,
    };

    let mut exposed: Vec<String> = Vec::new();
    for h in &b.expose {
        if h == "*" {
            if credentials {
                errors.push(
                    "cors.expose_headers",
                    "`*` with credentials exposes a header literally named `*`: list the headers",
                );
            }
            exposed.push("*".into());
            continue;
        }
        match header_name(h) {
            Some(name) if name.as_str().starts_with("access-control-") => errors.push(
                "cors.expose_headers",
                format!("`{h}` is a CORS protocol header; browsers never expose it"),
            ),
            Some(name) => {
                if !exposed
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(name.as_str()))
                {
                    exposed.push(h.clone());
                }
            }
            None => errors.push(
                "cors.expose_headers",
                format!("`{}` is not a header name", h.escape_debug()),
            ),
        }
    }
    let expose = join(exposed.iter().map(String::as_str)).filter(|v| !v.is_empty());

    let max_age = match b.max_age {
        MaxAge(Some(s)) if s > MaxAge::MAX_SECONDS => {
            errors.push(
                "cors.max_age",
                format!(
                    "{s} s is more than any browser keeps a preflight (at most {} s)",
                    MaxAge::MAX_SECONDS
                ),
            );
            None
        }
        MaxAge(Some(s)) => Some(HeaderValue::from(s)),
        MaxAge(None) => None,
    };
    if b.preflight_status != StatusCode::NO_CONTENT && b.preflight_status != StatusCode::OK {
        errors.push(
            "cors.preflight_status",
            format!(
                "{} is not a preflight success status: use 204 or 200",
                b.preflight_status.as_u16()
            ),
        );
    }

    let exact_map = (exact.len() > LINEAR_EXACT).then(|| {
        exact
            .iter()
            .map(|v| (Bytes::copy_from_slice(v.as_bytes()), v.clone()))
            .collect()
    });
    errors.finish(|| CorsLayer {
        shared: Arc::new(Shared {
            events: b.coalescer.unwrap_or_default(),
            any_origin,
            exact: exact.into_boxed_slice(),
            exact_map,
            patterns: patterns.into_boxed_slice(),
            origin_fn: b.origin_fn,
            allow_null,
            credentials,
            methods: methods.into_boxed_slice(),
            methods_value: crate::header_map::prepared(methods_value),
            echo_headers: header_rule.any,
            header_rule,
            headers_value: headers_value.map(crate::header_map::prepared),
            expose: expose.map(crate::header_map::prepared),
            max_age,
            preflight_status: b.preflight_status,
            inner_headers: b.inner_headers,
        }),
    })
}

fn header_name(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// `a, b, c` as a header value.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    HeaderValue::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_merge() {
        let mut h = HeaderMap::new();
        add_vary(&mut h, "origin");
        assert_eq!(h[VARY], "origin");
        add_vary(&mut h, "origin");
        assert_eq!(h.get_all(VARY).iter().count(), 1);

        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        h.append(VARY, HeaderValue::from_static("accept-language ,"));
        add_vary(&mut h, "origin");
        assert_eq!(h[VARY], "Accept-Encoding, accept-language, origin");
        assert_eq!(h.get_all(VARY).iter().count(), 1);

        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("*"));
        add_vary(&mut h, "origin");
        assert_eq!(h[VARY], "*");

        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("accept, Origin"));
        add_vary(&mut h, "origin");
        assert_eq!(h[VARY], "accept, Origin");
    }
}
