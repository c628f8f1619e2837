use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::Entry;
use http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY, STRICT_TRANSPORT_SECURITY,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;

use super::nonce::CspNonce;
use super::service::SecureHeadersService;
use super::{Merge, SecureHeadersBuilder, SkipSecureHeaders};
use crate::error::{ConfigError, ConfigErrors};

const REPORTING_ENDPOINTS: HeaderName = HeaderName::from_static("reporting-endpoints");
/// The most fields of its own a response may have for [`Shared::seed`] to put them back over a
/// clone of the static headers; a clone also has this much room for the fields added later.
const SEED_ROOM: usize = 32;

/// Adds security headers to every response of the wrapped service, and removes banners.
///
/// Built by [`SecureHeaders::builder`](super::SecureHeaders::builder) or a preset. Cloning is
/// cheap (one shared, immutable configuration).
#[derive(Clone)]
pub struct SecureHeadersLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for SecureHeadersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureHeadersLayer")
            .field(
                "headers",
                &self
                    .shared
                    .statics
                    .iter()
                    .map(|s| &s.name)
                    .collect::<Vec<_>>(),
            )
            .field("nonce", &self.shared.nonce)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SecureHeadersLayer {
    type Service = SecureHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecureHeadersService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

impl SecureHeadersLayer {
    /// The explicit step that gives a handler's responses this layer's static headers where
    /// they are made: put it around the handler, inside every layer that adds fields, and
    /// this layer adds nothing more to the responses it prefilled. See
    /// [`PrefillSecureHeadersLayer`](super::PrefillSecureHeadersLayer).
    pub fn prefill(&self) -> super::PrefillSecureHeadersLayer {
        super::PrefillSecureHeadersLayer {
            shared: self.shared.clone(),
        }
    }

    /// The headers this layer sends on a response to a plain request (no HSTS, no nonce),
    /// in order. Useful to check a configuration, or to decorate a response built outside
    /// the layer.
    pub fn static_headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.shared.statics.iter().map(|s| (&s.name, &s.value))
    }

    /// The `Strict-Transport-Security` value, if HSTS is on.
    pub fn hsts_value(&self) -> Option<&HeaderValue> {
        self.shared.hsts.as_ref().map(|h| &h.value)
    }

    /// The headers this layer removes from every response.
    pub fn removed_headers(&self) -> &[HeaderName] {
        &self.shared.remove
    }
}

/// One header with a value fixed at build time.
#[derive(Debug)]
pub(crate) struct Static {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
    pub(crate) merge: Merge,
}

/// A policy with a nonce: `pieces.join(nonce)`, or `fallback` (the policy without nonces,
/// stricter) should the spliced value fail to parse.
#[derive(Debug)]
pub(crate) struct Spliced {
    pub(crate) name: HeaderName,
    pub(crate) pieces: Box<[Bytes]>,
    pub(crate) len: usize,
    pub(crate) fallback: HeaderValue,
    pub(crate) merge: Merge,
}

/// The static headers as a map ready to clone into a response.
#[derive(Debug)]
pub(crate) struct Seed {
    headers: HeaderMap,
    /// The first static header, whose value in `headers` is a copy of the text no one else
    /// holds (not the one [`SecureHeadersLayer::static_headers`] hands out): a response that
    /// carries these very bytes was seeded by this layer's [prefill](SecureHeadersLayer::prefill).
    marker: HeaderName,
    /// Where those bytes are.
    marker_bytes: usize,
}

/// Everything the services of one layer share, immutable after build.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) statics: Box<[Static]>,
    pub(crate) spliced: Box<[Spliced]>,
    pub(crate) hsts: Option<Static>,
    pub(crate) hsts_always: bool,
    pub(crate) client_ip: crate::client_ip::ClientIpStrategy,
    pub(crate) remove: Box<[HeaderName]>,
    /// For long removal lists: a set to test the response's (few) names against.
    pub(crate) remove_set: Option<HashSet<HeaderName, foldhash::fast::RandomState>>,
    pub(crate) nonce: bool,
    /// How many headers a response may gain.
    pub(crate) reserve: usize,
    /// The static headers as a map, when every one of them yields to a value the response
    /// already has ([`Merge::KeepExisting`], the default): see [`seed`](Self::seed).
    pub(crate) seed: Option<Seed>,
}

impl Shared {
    /// Removes banners, then adds the headers, honouring merge rules and `SkipSecureHeaders`.
    pub(crate) fn apply(
        &self,
        headers: &mut HeaderMap,
        skip: Option<&SkipSecureHeaders>,
        prefilled: bool,
        hsts: bool,
        nonce: Option<&CspNonce>,
    ) {
        self.remove_banners(headers);
        if matches!(skip, Some(s) if s.skips_all()) {
            return;
        }
        let skipped = |name: &HeaderName| skip.is_some_and(|s| s.skips(name));
        if !prefilled && (skip.is_some() || !self.seed(headers)) {
            let _ = headers.try_reserve(self.reserve);
            for s in self.statics.iter() {
                if !skipped(&s.name) {
                    put(headers, &s.name, s.value.clone(), s.merge);
                }
            }
        }
        if let Some(nonce) = nonce {
            for s in self.spliced.iter() {
                if skipped(&s.name)
                    || (s.merge == Merge::KeepExisting && headers.contains_key(&s.name))
                {
                    continue;
                }
                let value = splice(s, nonce.as_bytes()).unwrap_or_else(|| s.fallback.clone());
                // moved, not cloned: cloning a fresh `Bytes` would allocate its shared header
                put(headers, &s.name, value, s.merge);
            }
        }
        if hsts {
            if let Some(h) = &self.hsts {
                if !skipped(&h.name) {
                    put(headers, &h.name, h.value.clone(), h.merge);
                }
            }
        }
    }

    /// Gives a response every static header at once; whether it did (only when its map would
    /// have to grow for them anyway, every static header yields to the response's own, and the
    /// response has few fields).
    ///
    /// Inserting into a `HeaderMap` hashes the name byte by byte; a clone of the prepared map
    /// brings the static headers with their hashes, and the response's own fields (usually a
    /// handful) are put back over them, so that they win as [`Merge::KeepExisting`] says.
    /// Whether `headers` were seeded by this layer's prefill step (see [`Seed::marker`]); a
    /// response that replaced that header with its own value is decorated header by header,
    /// to the same result.
    pub(crate) fn prefilled(&self, headers: &HeaderMap) -> bool {
        self.seed.as_ref().is_some_and(|seed| {
            headers
                .get(&seed.marker)
                .is_some_and(|v| v.as_bytes().as_ptr() as usize == seed.marker_bytes)
        })
    }

    pub(crate) fn seed(&self, headers: &mut HeaderMap) -> bool {
        let must_grow = headers.capacity().saturating_sub(headers.keys_len()) < self.reserve;
        let Some(seed) = self
            .seed
            .as_ref()
            .filter(|_| must_grow && headers.len() <= SEED_ROOM)
        else {
            return false;
        };
        let own = std::mem::replace(headers, seed.headers.clone());
        let mut last: Option<HeaderName> = None;
        for (name, value) in own {
            match name {
                Some(name) => {
                    let _ = headers.try_insert(name.clone(), value);
                    last = Some(name);
                }
                // further values of the same name
                None => {
                    if let Some(name) = &last {
                        let _ = headers.try_append(name.clone(), value);
                    }
                }
            }
        }
        true
    }

    fn remove_banners(&self, headers: &mut HeaderMap) {
        if self.remove.is_empty() {
            return;
        }
        crate::header_map::remove_listed(headers, self.remove.iter(), |k| match &self.remove_set {
            Some(set) => set.contains(k),
            None => self.remove.contains(k),
        });
    }
}

fn put(headers: &mut HeaderMap, name: &HeaderName, value: HeaderValue, merge: Merge) {
    // `try_*` never panic; a map at its size limit simply gets no more headers.
    match merge {
        Merge::KeepExisting => {
            if let Ok(Entry::Vacant(slot)) = headers.try_entry(name) {
                let _ = slot.try_insert(value);
            }
        }
        Merge::Override => {
            let _ = headers.try_insert(name.clone(), value);
        }
        Merge::Append => {
            let _ = headers.try_append(name.clone(), value);
        }
    }
}

fn splice(s: &Spliced, nonce: &[u8]) -> Option<HeaderValue> {
    // exact capacity, so `Bytes::from` takes the buffer over without a second allocation
    let mut out = Vec::with_capacity(s.len + nonce.len() * s.pieces.len().saturating_sub(1));
    for (i, p) in s.pieces.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(nonce);
        }
        out.extend_from_slice(p);
    }
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

fn header_name(errors: &mut ConfigErrors, setting: &'static str, name: &str) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(
                setting,
                format!("`{}` is not a valid header name", name.escape_debug()),
            );
            None
        }
    }
}

fn header_value(
    errors: &mut ConfigErrors,
    setting: &'static str,
    name: &str,
    value: &str,
) -> Option<HeaderValue> {
    match HeaderValue::from_str(value) {
        Ok(v) => Some(crate::header_map::prepared(v)),
        Err(_) => {
            errors.push(
                setting,
                format!(
                    "the value of `{name}` (`{}`) is not a valid header value",
                    value.escape_debug()
                ),
            );
            None
        }
    }
}

/// Reporting-Endpoints keys are structured-field keys: `[a-z*][a-z0-9_.*-]*`.
fn valid_endpoint_name(name: &str) -> bool {
    let b = name.as_bytes();
    matches!(b.first(), Some(b'a'..=b'z' | b'*'))
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
}

/// Fields this layer may send that take exactly one value, so [`Merge::Append`] would break
/// them.
const SINGLE_VALUE: [&str; 11] = [
    "strict-transport-security",
    "x-frame-options",
    "x-content-type-options",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
    "origin-agent-cluster",
    "x-dns-prefetch-control",
    "x-download-options",
    "x-permitted-cross-domain-policies",
    "x-xss-protection",
];

pub(crate) fn compile(b: SecureHeadersBuilder) -> Result<SecureHeadersLayer, ConfigError> {
    let mut errors = ConfigErrors::default();
    let merge_of = |name: &HeaderName| {
        b.merges
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
            .map_or(b.default_merge, |(_, m)| *m)
    };

    let remove: Vec<HeaderName> = b
        .remove
        .iter()
        .filter_map(|n| header_name(&mut errors, "secure_headers.remove", n))
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });

    let mut statics = Vec::new();
    for (n, v) in &b.headers {
        let Some(name) = header_name(&mut errors, "secure_headers.header", n) else {
            continue;
        };
        if name == CONTENT_SECURITY_POLICY || name == CONTENT_SECURITY_POLICY_REPORT_ONLY {
            errors.push(
                "secure_headers.header",
                format!("set `{name}` with `csp(Csp::builder()…)` so it is checked (and can carry nonces)"),
            );
            continue;
        }
        if name == STRICT_TRANSPORT_SECURITY {
            errors.push(
                "secure_headers.header",
                "set HSTS with `hsts(Hsts::new()…)` so it is sent only over HTTPS",
            );
            continue;
        }
        // A value written into the program is shared as it is: cloning it per response counts
        // no references.
        let value = match v {
            std::borrow::Cow::Borrowed(text)
                if text
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) =>
            {
                Some(HeaderValue::from_static(text))
            }
            _ => header_value(&mut errors, "secure_headers.header", n, v),
        };
        if let Some(value) = value {
            statics.push(Static {
                merge: merge_of(&name),
                name,
                value,
            });
        }
    }

    let (has_csp, has_csp_ro) = (b.csp.is_some(), b.csp_report_only.is_some());
    let mut spliced = Vec::new();
    let mut nonce = false;
    let mut report_groups: Vec<String> = Vec::new();
    for (setting, name, csp) in [
        ("secure_headers.csp", CONTENT_SECURITY_POLICY, b.csp),
        (
            "secure_headers.csp_report_only",
            CONTENT_SECURITY_POLICY_REPORT_ONLY,
            b.csp_report_only,
        ),
    ] {
        if let Some(c) = &csp {
            report_groups.extend(c.report_groups().map(str::to_owned));
        }
        let Some(csp) = csp.and_then(|c| errors.take(c.build_as(setting))) else {
            continue;
        };
        for w in csp.warnings() {
            tracing::warn!(target: "tower_shield::secure_headers", setting, "{w}");
        }
        let merge = merge_of(&name);
        let Some(fallback) = header_value(&mut errors, setting, name.as_str(), &csp.to_string())
        else {
            continue;
        };
        if csp.uses_nonce() {
            nonce = true;
            let pieces: Vec<Bytes> = csp.pieces().into_iter().map(Bytes::from).collect();
            spliced.push(Spliced {
                len: pieces.iter().map(Bytes::len).sum(),
                pieces: pieces.into_boxed_slice(),
                name,
                fallback,
                merge,
            });
        } else {
            statics.push(Static {
                name,
                value: fallback,
                merge,
            });
        }
    }
    // the policies first (enforced, then report-only), then the rest in the builder's order
    csp_first(&mut statics);

    if !b.reporting_endpoints.is_empty() {
        let mut value = String::new();
        for (i, (name, url)) in b.reporting_endpoints.iter().enumerate() {
            if !valid_endpoint_name(name) {
                errors.push(
                    "secure_headers.reporting_endpoint",
                    format!(
                        "`{}` is not an endpoint name (lower-case letters, digits, `_-.*`)",
                        name.escape_debug()
                    ),
                );
            }
            if url.is_empty()
                || url
                    .bytes()
                    .any(|c| !c.is_ascii_graphic() || c == b'"' || c == b'\\')
            {
                errors.push(
                    "secure_headers.reporting_endpoint",
                    format!(
                        "`{}` is not a URL (no spaces, quotes or backslashes)",
                        url.escape_debug()
                    ),
                );
            }
            if b.reporting_endpoints[..i].iter().any(|(n, _)| n == name) {
                errors.push(
                    "secure_headers.reporting_endpoint",
                    format!("endpoint `{name}` is declared twice"),
                );
            }
            if i > 0 {
                value.push_str(", ");
            }
            value.push_str(&format!("{name}=\"{url}\""));
        }
        if let Some(value) = header_value(
            &mut errors,
            "secure_headers.reporting_endpoint",
            "reporting-endpoints",
            &value,
        ) {
            statics.push(Static {
                merge: merge_of(&REPORTING_ENDPOINTS),
                name: REPORTING_ENDPOINTS,
                value,
            });
        }
    }
    for g in &report_groups {
        if !b.reporting_endpoints.iter().any(|(n, _)| n == g) {
            errors.push(
                "secure_headers.csp",
                format!("`report-to {g}` names no endpoint; add `reporting_endpoint(\"{g}\", \"https://…\")`"),
            );
        }
    }

    let hsts = match b.hsts {
        Some(h) => {
            if h.preload && (!h.include_subdomains || h.max_age < 31_536_000) {
                errors.push(
                    "secure_headers.hsts",
                    "`preload` needs `includeSubDomains` and a max-age of at least one year (31536000 s)",
                );
            }
            header_value(
                &mut errors,
                "secure_headers.hsts",
                "strict-transport-security",
                &h.render(),
            )
            .map(|value| {
                (
                    Static {
                        name: STRICT_TRANSPORT_SECURITY,
                        value,
                        merge: merge_of(&STRICT_TRANSPORT_SECURITY),
                    },
                    h.always,
                )
            })
        }
        None => None,
    };

    for (i, s) in statics.iter().enumerate() {
        if statics[..i].iter().any(|t| t.name == s.name) {
            errors.push(
                "secure_headers.header",
                format!("`{}` is set twice", s.name),
            );
        }
        if remove.contains(&s.name) {
            errors.push(
                "secure_headers.remove",
                format!(
                    "`{}` is both sent and removed; drop it from one of the lists",
                    s.name
                ),
            );
        }
    }
    for s in &spliced {
        if remove.contains(&s.name) {
            errors.push(
                "secure_headers.remove",
                format!("`{}` is both sent and removed", s.name),
            );
        }
    }
    if hsts.is_some() && remove.contains(&STRICT_TRANSPORT_SECURITY) {
        errors.push(
            "secure_headers.remove",
            "`strict-transport-security` is both sent and removed",
        );
    }

    for (n, _) in &b.merges {
        match HeaderName::from_bytes(n.as_bytes()) {
            Err(_) => errors.push(
                "secure_headers.merge",
                format!("`{}` is not a valid header name", n.escape_debug()),
            ),
            Ok(name) => {
                let sent = statics.iter().any(|s| s.name == name)
                    || spliced.iter().any(|s| s.name == name)
                    || (hsts.is_some() && name == STRICT_TRANSPORT_SECURITY);
                // a header whose own value failed above is reported there already
                let failed = b.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n))
                    || (has_csp && name == CONTENT_SECURITY_POLICY)
                    || (has_csp_ro && name == CONTENT_SECURITY_POLICY_REPORT_ONLY)
                    || (!b.reporting_endpoints.is_empty() && name == REPORTING_ENDPOINTS);
                if !sent && !failed {
                    errors.push(
                        "secure_headers.merge",
                        format!("a merge rule for `{name}`, which this layer does not send"),
                    );
                }
            }
        }
    }

    // Two values of a field that takes one do not add up: a structured-field item
    // (`Cross-Origin-*-Policy`, `Origin-Agent-Cluster`) no longer parses and is ignored, and
    // the others are read as their first value or as an error.
    let sent = statics
        .iter()
        .map(|s| (&s.name, s.merge))
        .chain(spliced.iter().map(|s| (&s.name, s.merge)))
        .chain(hsts.iter().map(|(h, _)| (&h.name, h.merge)));
    for (name, merge) in sent {
        if merge == Merge::Append && SINGLE_VALUE.contains(&name.as_str()) {
            errors.push(
                "secure_headers.merge",
                format!(
                    "`{name}` takes one value: Merge::Append would send the response's and \
                     this layer's, which browsers ignore or misread; use KeepExisting or Override"
                ),
            );
        }
    }

    let reserve = statics.len() + spliced.len() + usize::from(hsts.is_some());
    let seed = statics
        .iter()
        .all(|s| s.merge == Merge::KeepExisting)
        .then(|| {
            // A clone keeps this table's size: room for the response's fields and those added
            // after this layer, so that only the entries grow once the response's are back.
            let mut headers = HeaderMap::with_capacity(statics.len() + SEED_ROOM);
            for (i, s) in statics.iter().enumerate() {
                let value = if i == 0 {
                    // the marker's own copy, cloned once so that clones only count references
                    crate::header_map::prepared(HeaderValue::from_bytes(s.value.as_bytes()).ok()?)
                } else {
                    s.value.clone()
                };
                let _ = headers.try_append(s.name.clone(), value);
            }
            let marker = statics.first()?.name.clone();
            let marker_bytes = headers.get(&marker)?.as_bytes().as_ptr() as usize;
            Some(Seed {
                headers,
                marker,
                marker_bytes,
            })
        })
        .flatten();
    let remove_set = (remove.len() > 8).then(|| remove.iter().cloned().collect());
    errors.finish(|| {
        let (hsts, hsts_always) = match hsts {
            Some((s, always)) => (Some(s), always),
            None => (None, false),
        };
        SecureHeadersLayer {
            shared: Arc::new(Shared {
                statics: statics.into_boxed_slice(),
                spliced: spliced.into_boxed_slice(),
                hsts,
                hsts_always,
                client_ip: b.client_ip,
                remove: remove.into_boxed_slice(),
                remove_set,
                nonce,
                reserve,
                seed,
            }),
        }
    })
}

/// Moves the CSP headers (if any) to the front, enforced first.
fn csp_first(statics: &mut [Static]) {
    statics.sort_by_key(|s| {
        if s.name == CONTENT_SECURITY_POLICY {
            0
        } else if s.name == CONTENT_SECURITY_POLICY_REPORT_ONLY {
            1
        } else {
            2
        }
    });
}
