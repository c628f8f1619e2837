//! The named header sets, as plain data: `(name, value)` pairs, a CSP, HSTS and removals.

use super::Hsts;
use super::csp::{Csp, CspBuilder};

/// A preset before it becomes a builder.
pub(crate) struct Preset {
    pub(crate) headers: &'static [(&'static str, &'static str)],
    pub(crate) csp: CspBuilder,
    pub(crate) hsts: Hsts,
    pub(crate) remove: &'static [&'static str],
}

/// `Server` and `X-Powered-By`: the banners the default set removes.
pub(crate) const BANNERS: &[&str] = &["server", "x-powered-by"];

/// The OWASP Secure Headers Project's list of headers that disclose the server's software
/// (`ci/headers_remove.json`), for
/// [`SecureHeadersBuilder::remove_owasp_banners`](super::SecureHeadersBuilder::remove_owasp_banners).
pub const OWASP_REMOVE_LIST: &[&str] = &[
    "$wsep",
    "Host-Header",
    "K-Proxy-Request",
    "Liferay-Portal",
    "OracleCommerceCloud-Version",
    "Pega-Host",
    "Powered-By",
    "Product",
    "Server",
    "SourceMap",
    "X-AspNet-Version",
    "X-AspNetMvc-Version",
    "X-Atmosphere-error",
    "X-Atmosphere-first-request",
    "X-Atmosphere-tracking-id",
    "X-B3-ParentSpanId",
    "X-B3-Sampled",
    "X-B3-SpanId",
    "X-B3-TraceId",
    "X-BEServer",
    "X-CF-Powered-By",
    "X-CMS",
    "X-CalculatedBETarget",
    "X-Cocoon-Version",
    "X-Content-Encoded-By",
    "X-DiagInfo",
    "X-Envoy-Attempt-Count",
    "X-Envoy-External-Address",
    "X-Envoy-Internal",
    "X-Envoy-Original-Dst-Host",
    "X-Envoy-Upstream-Service-Time",
    "X-FEServer",
    "X-Framework",
    "X-Generated-By",
    "X-Generator",
    "X-Jitsi-Release",
    "X-Joomla-Version",
    "X-Kubernetes-PF-FlowSchema-UI",
    "X-Kubernetes-PF-PriorityLevel-UID",
    "X-LiteSpeed-Cache",
    "X-LiteSpeed-Purge",
    "X-LiteSpeed-Tag",
    "X-LiteSpeed-Vary",
    "X-Litespeed-Cache-Control",
    "X-Mod-Pagespeed",
    "X-Nextjs-Cache",
    "X-Nextjs-Matched-Path",
    "X-Nextjs-Page",
    "X-Nextjs-Redirect",
    "X-OWA-Version",
    "X-Old-Content-Length",
    "X-OneAgent-JS-Injection",
    "X-Page-Speed",
    "X-Php-Version",
    "X-Powered-By",
    "X-Powered-By-Plesk",
    "X-Powered-CMS",
    "X-Redirect-By",
    "X-Server-Powered-By",
    "X-SourceFiles",
    "X-SourceMap",
    "X-Turbo-Charged-By",
    "X-Umbraco-Version",
    "X-Varnish-Backend",
    "X-Varnish-Server",
    "X-dtAgentId",
    "X-dtHealthCheck",
    "X-dtInjectedServlet",
    "X-ruxit-JS-Agent",
];

/// The OWASP project's `Permissions-Policy` value: every powerful feature off, `sync-xhr`
/// same-origin only.
pub const OWASP_PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), \
cross-origin-isolated=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), \
gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), payment=(), \
picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(self), usb=(), \
web-share=(), xr-spatial-tracking=(), clipboard-read=(), clipboard-write=(), gamepad=(), hid=(), \
idle-detection=(), interest-cohort=(), serial=(), unload=()";

pub(crate) fn recommended() -> Preset {
    Preset {
        headers: &[
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("origin-agent-cluster", "?1"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-download-options", "noopen"),
            ("x-frame-options", "DENY"),
            ("x-permitted-cross-domain-policies", "none"),
            ("x-xss-protection", "0"),
        ],
        csp: Csp::recommended(),
        hsts: Hsts::default(),
        remove: BANNERS,
    }
}

pub(crate) fn helmet() -> Preset {
    Preset {
        headers: &[
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("origin-agent-cluster", "?1"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-download-options", "noopen"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-permitted-cross-domain-policies", "none"),
            ("x-xss-protection", "0"),
        ],
        csp: Csp::helmet(),
        hsts: Hsts::default(),
        remove: &["x-powered-by"],
    }
}

pub(crate) fn owasp() -> Preset {
    Preset {
        headers: &[
            ("cache-control", "no-store, max-age=0"),
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("permissions-policy", OWASP_PERMISSIONS_POLICY),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-frame-options", "deny"),
            ("x-permitted-cross-domain-policies", "none"),
        ],
        csp: Csp::owasp(),
        hsts: Hsts::default().max_age_secs(63_072_000),
        remove: OWASP_REMOVE_LIST,
    }
}

pub(crate) fn api() -> Preset {
    Preset {
        headers: &[
            ("cache-control", "no-store"),
            ("cross-origin-resource-policy", "same-origin"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
        ],
        csp: Csp::api(),
        hsts: Hsts::default(),
        remove: BANNERS,
    }
}
