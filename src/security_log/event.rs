//! [`SecurityEvent`]: the one vocabulary of security events, and its one way to the log.

use std::borrow::Cow;
use std::net::IpAddr;

use super::coalesce::Coalescer;
use super::escape::{DEFAULT_MAX_LEN, escape, escape_bytes};
use crate::client_ip::ClientIpError;

/// The `tracing` target of every security event.
pub const TARGET: &str = "tower_shield::security";

/// A security event: what happened (the guide's `event` name and the OWASP logging-vocabulary
/// name), to whom, and why. Every layer of this crate reports through this one type, so every
/// log line about security has the same field names.
///
/// Build one with a constructor, add the client address or a reason, and
/// [`emit_via`](Self::emit_via) a [`Coalescer`] (each layer has its own) to log it:
///
/// ```
/// use std::net::IpAddr;
/// use tower_shield::security_log::{Coalescer, SecurityEvent};
///
/// let ip: IpAddr = "203.0.113.7".parse()?;
/// let event = SecurityEvent::auth_attempt(false, Some("ts_live_3f9a")).client_ip(ip);
/// assert_eq!(event.event_name(), "auth_attempt");
/// assert_eq!(event.owasp(), "authn_login_fail");
/// assert_eq!(event.level(), tracing::Level::WARN);
/// event.emit_via(&Coalescer::default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Fields
///
/// Every event is a `tracing` event with target [`TARGET`] (`tower_shield::security`) and the
/// fields `event`, `owasp`, `client_ip`, `reason`, `status` and `suppressed` (the last four
/// only when set; `suppressed` marks a [flood summary](Coalescer)), plus the fields of its
/// kind:
///
/// | constructor | `event` | `owasp` | level | more fields |
/// |---|---|---|---|---|
/// | [`rate_limit_exceeded`](Self::rate_limit_exceeded) | `rate_limit_exceeded` | `excess_rate_limit_exceeded` | WARN | `policy`, `scope`, `subject_hash`, `dry_run` |
/// | [`device_rotation_refused`](Self::device_rotation_refused) | `rate_limit_exceeded` | `excess_rate_limit_exceeded` | WARN | `policy = "device-rotation"`, `scope = "ip"`, `dry_run` |
/// | [`blocked_address`](Self::blocked_address) | `suspicious_activity` | `authz_fail` | WARN | |
/// | [`client_unidentified`](Self::client_unidentified) (no peer address) | `client_unidentified` | `sys_misconfiguration` | ERROR | `error` |
/// | [`client_unidentified`](Self::client_unidentified) (bad forwarding header) | `input_validation_fail` | `input_validation_fail` | WARN | `field`, `rule` |
/// | [`input_validation_fail`](Self::input_validation_fail) | `input_validation_fail` | `input_validation_fail` | WARN | `field`, `rule` |
/// | [`auth_attempt`](Self::auth_attempt)`(true, …)` | `auth_attempt` | `authn_login_success` | INFO | `success = true`, `key_prefix` |
/// | [`auth_attempt`](Self::auth_attempt)`(false, …)` | `auth_attempt` | `authn_login_fail` | WARN | `success = false`, `key_prefix`, `attempts_left` |
/// | [`auth_unavailable`](Self::auth_unavailable) | `auth_attempt` | `authn_login_fail` | ERROR | `success = false`, `key_prefix` |
/// | [`access_denied`](Self::access_denied) | `auth_attempt` | `authz_fail` | WARN | `success = false`, `key_prefix` |
/// | [`auth_lockout`](Self::auth_lockout) | `auth_attempt` | `authn_login_lock` | WARN | `success = false`, `key_prefix`, `retry_after_secs` |
/// | [`cors_refused`](Self::cors_refused) | `cors_refused` | `malicious_cors` | WARN | `origin`, `method` |
/// | [`suspicious_activity`](Self::suspicious_activity) | `suspicious_activity` | `malicious_…` ([`Malicious`]) | WARN | |
///
/// OWASP rates `authz_fail` CRITICAL; it is logged at WARN here because a refused address or
/// a 403 is routine on the public internet. `sys_misconfiguration` is not in the OWASP
/// vocabulary (which has no name for "the server cannot tell clients apart"); it is an
/// operator error, logged at ERROR.
///
/// # Safety of the fields
///
/// Every text field is passed through [`escape`](super::escape::escape) (control characters,
/// line separators and bidi controls made visible, at most 256 bytes, cut with a marker)
/// and recorded as a `&str` value, never with `%` (`Display`), so no formatter can be made to
/// print a forged line or a terminal escape. Client addresses and hashes are formatted by
/// this crate. Do not put secrets in any field: `key_prefix` is the public identifier part
/// of a key, never the key.
///
/// # Flood control
///
/// [`emit_via`](Self::emit_via) a [`Coalescer`] lets the first 5 identical events per minute through, and at most
/// 100 distinct events of each kind, and counts the rest into summary events carrying
/// `suppressed = N`; see [`Coalescer`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[must_use = "an event is logged only when emitted"]
pub struct SecurityEvent<'a> {
    kind: Kind<'a>,
    client_ip: Option<IpAddr>,
    reason: Option<Cow<'a, str>>,
    status: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind<'a> {
    RateLimitExceeded {
        policy: Cow<'a, str>,
        scope: Cow<'a, str>,
        subject_hash: Option<u32>,
        dry_run: bool,
    },
    BlockedAddress,
    ClientUnidentified {
        error: &'static str,
    },
    InputValidationFail {
        field: Cow<'a, [u8]>,
        rule: Cow<'a, str>,
    },
    AuthAttempt {
        outcome: Auth,
        key_prefix: Option<Cow<'a, [u8]>>,
        attempts_left: Option<u32>,
    },
    CorsRefused {
        origin: Cow<'a, [u8]>,
        method: Option<Cow<'a, [u8]>>,
    },
    Suspicious {
        kind: Malicious,
    },
    StoreDegraded {
        on_failure: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Auth {
    Success,
    Fail,
    Forbidden,
    Locked { retry_after_secs: u64 },
    Unavailable,
}

/// The OWASP `malicious_*` events, for [`SecurityEvent::suspicious_activity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malicious {
    /// `malicious_excess_404`: many requests for resources that do not exist (scanning).
    Excess404,
    /// `malicious_extraneous`: input the application does not expect (extra fields,
    /// parameters, headers), or anything else suspicious.
    Extraneous,
    /// `malicious_attack_tool`: a known attack tool's signature (user agent, payloads).
    AttackTool,
    /// `malicious_sqli`: an SQL injection attempt. Log the rule and the parameter name,
    /// never the payload.
    Sqli,
    /// `malicious_cors`: a cross-origin request from an origin that is not allowed.
    Cors,
    /// `malicious_direct_reference`: an attempt to reach an object the user may not see by
    /// changing its identifier.
    DirectReference,
    /// `malicious_csrf`: a request that failed the CSRF check.
    Csrf,
    /// `malicious_csp_violation`: a Content-Security-Policy violation report.
    CspViolation,
}

impl Malicious {
    /// The OWASP vocabulary name.
    pub const fn owasp(self) -> &'static str {
        match self {
            Malicious::Excess404 => "malicious_excess_404",
            Malicious::Extraneous => "malicious_extraneous",
            Malicious::AttackTool => "malicious_attack_tool",
            Malicious::Sqli => "malicious_sqli",
            Malicious::Cors => "malicious_cors",
            Malicious::DirectReference => "malicious_direct_reference",
            Malicious::Csrf => "malicious_csrf",
            Malicious::CspViolation => "malicious_csp_violation",
        }
    }
}

impl<'a> SecurityEvent<'a> {
    fn of(kind: Kind<'a>) -> Self {
        SecurityEvent {
            kind,
            client_ip: None,
            reason: None,
            status: None,
        }
    }

    /// A request refused by a rate-limit `policy` (its name) of `scope` (`ip`, `session`,
    /// `device`, `global`, `custom`). `subject_hash` is the short keyed hash of the session or
    /// device id the limit was keyed on (see [`subject_hash`](super::subject_hash)), never the
    /// id. With `dry_run` the request was let through.
    pub fn rate_limit_exceeded(
        policy: impl Into<Cow<'a, str>>,
        scope: impl Into<Cow<'a, str>>,
        client_ip: Option<IpAddr>,
        subject_hash: Option<u32>,
        dry_run: bool,
    ) -> Self {
        SecurityEvent {
            client_ip,
            ..SecurityEvent::of(Kind::RateLimitExceeded {
                policy: policy.into(),
                scope: scope.into(),
                subject_hash,
                dry_run,
            })
        }
    }

    /// A client refused because it presented too many new device ids (policy
    /// `device-rotation`, scope `ip`).
    pub fn device_rotation_refused(client_ip: IpAddr, dry_run: bool) -> Self {
        SecurityEvent::rate_limit_exceeded("device-rotation", "ip", Some(client_ip), None, dry_run)
    }

    /// A request from a blocked address, refused.
    pub fn blocked_address(client_ip: IpAddr) -> Self {
        SecurityEvent {
            client_ip: Some(client_ip),
            reason: Some(Cow::Borrowed("blocked address")),
            ..SecurityEvent::of(Kind::BlockedAddress)
        }
    }

    /// The client address of a request could not be determined.
    ///
    /// [`ClientIpError::MissingPeer`] is the operator's error (the server passes no peer
    /// address): `client_unidentified` at ERROR, with the fix as `reason`. Every other error
    /// comes from the request's forwarding header: `input_validation_fail` with `field` the
    /// header and `rule` the error (`client_ip.malformed`, `client_ip.obfuscated`,
    /// `client_ip.too_many_entries`, `client_ip.missing_hops`). Neither records the header's
    /// content.
    pub fn client_unidentified(error: &ClientIpError) -> SecurityEvent<'static> {
        let (header, rule) = match error {
            ClientIpError::MissingPeer => {
                return SecurityEvent {
                    reason: Some(Cow::Borrowed(
                        "the request has no peer address: serve with axum's \
                         into_make_service_with_connect_info::<SocketAddr>() and the axum \
                         feature, or insert a PeerAddr request extension",
                    )),
                    ..SecurityEvent::of(Kind::ClientUnidentified {
                        error: "missing_peer",
                    })
                };
            }
            ClientIpError::Malformed { header, .. } => (header, "client_ip.malformed"),
            ClientIpError::Obfuscated { header, .. } => (header, "client_ip.obfuscated"),
            ClientIpError::TooManyEntries { header, .. } => (header, "client_ip.too_many_entries"),
            ClientIpError::MissingHops { header, .. } => (header, "client_ip.missing_hops"),
        };
        SecurityEvent {
            reason: Some(Cow::Owned(error.to_string())),
            ..SecurityEvent::of(Kind::InputValidationFail {
                field: Cow::Borrowed(header.as_str().as_bytes()),
                rule: Cow::Borrowed(rule),
            })
        }
    }

    /// Input refused by a validation `rule` (a rule id such as `max_length` or
    /// `device_id.pattern`) on `field` (a header, JSON field or parameter name). Record the
    /// rule and the field's *name*, never the refused value.
    pub fn input_validation_fail<F>(field: &'a F, rule: impl Into<Cow<'a, str>>) -> Self
    where
        F: AsRef<[u8]> + ?Sized,
    {
        SecurityEvent::of(Kind::InputValidationFail {
            field: Cow::Borrowed(field.as_ref()),
            rule: rule.into(),
        })
    }

    /// An authentication attempt and its outcome. `key_prefix` is the public, non-secret
    /// identifier of the credential (an API key's id part), if one was presented and parsed.
    pub fn auth_attempt(success: bool, key_prefix: Option<&'a str>) -> Self {
        SecurityEvent::of(Kind::AuthAttempt {
            outcome: if success { Auth::Success } else { Auth::Fail },
            key_prefix: key_prefix.map(|p| Cow::Borrowed(p.as_bytes())),
            attempts_left: None,
        })
    }

    /// An authenticated (or anonymous) request refused access (a 403): `auth_attempt` with
    /// `owasp = "authz_fail"`.
    pub fn access_denied(key_prefix: Option<&'a str>) -> Self {
        SecurityEvent::of(Kind::AuthAttempt {
            outcome: Auth::Forbidden,
            key_prefix: key_prefix.map(|p| Cow::Borrowed(p.as_bytes())),
            attempts_left: None,
        })
    }

    /// An authentication attempt refused because the client (or key) is locked out after
    /// too many failures; it may try again in `retry_after_secs`. Reason `maxretries` (the
    /// OWASP reason), unless you set another.
    pub fn auth_lockout(retry_after_secs: u64, key_prefix: Option<&'a str>) -> Self {
        SecurityEvent {
            reason: Some(Cow::Borrowed("maxretries")),
            ..SecurityEvent::of(Kind::AuthAttempt {
                outcome: Auth::Locked { retry_after_secs },
                key_prefix: key_prefix.map(|p| Cow::Borrowed(p.as_bytes())),
                attempts_left: None,
            })
        }
    }

    /// A cross-origin request refused: `origin` is the request's `Origin` header (untrusted;
    /// escaped and truncated like every field), `reason` why (`origin not allowed`,
    /// `method not allowed`…).
    pub fn cors_refused<O>(origin: &'a O, reason: impl Into<Cow<'a, str>>) -> Self
    where
        O: AsRef<[u8]> + ?Sized,
    {
        SecurityEvent {
            reason: Some(reason.into()),
            ..SecurityEvent::of(Kind::CorsRefused {
                origin: Cow::Borrowed(origin.as_ref()),
                method: None,
            })
        }
    }

    /// Credentials could not be checked (the key store is down): `auth_attempt`,
    /// `authn_login_fail`, at ERROR since it is the operator's problem, not the client's.
    pub fn auth_unavailable(key_prefix: Option<&'a str>) -> Self {
        SecurityEvent::of(Kind::AuthAttempt {
            outcome: Auth::Unavailable,
            key_prefix: key_prefix.map(|p| Cow::Borrowed(p.as_bytes())),
            attempts_left: None,
        })
    }

    /// The shared rate-limit store (Redis) cannot decide: `rate_limit_store_degraded`,
    /// `sys_monitor_disabled`, at ERROR since it is the operator's problem. `on_failure` is
    /// what the limiter does meanwhile (`fail-closed`, `fail-open`, `local`); `reason` says
    /// why (the store's error, which never holds the URL or its password). Logged once per
    /// episode, not per request.
    pub fn rate_limit_store_degraded(
        on_failure: &'static str,
        reason: impl Into<Cow<'a, str>>,
    ) -> Self {
        SecurityEvent {
            reason: Some(reason.into()),
            ..SecurityEvent::of(Kind::StoreDegraded { on_failure })
        }
    }

    /// Activity that looks malicious, of an OWASP `kind`, and why (a rule id or a short
    /// description; never the payload).
    pub fn suspicious_activity(kind: Malicious, reason: impl Into<Cow<'a, str>>) -> Self {
        SecurityEvent {
            reason: Some(reason.into()),
            ..SecurityEvent::of(Kind::Suspicious { kind })
        }
    }

    /// The same event with the client's address (an `IpAddr`, or an `Option<IpAddr>` when it
    /// may be unknown).
    pub fn client_ip(mut self, ip: impl Into<Option<IpAddr>>) -> Self {
        self.client_ip = ip.into();
        self
    }

    /// The same event with a `reason` (replacing any).
    pub fn reason(mut self, reason: impl Into<Cow<'a, str>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The same event with the `status` of the response that refused the request.
    pub fn status(mut self, status: http::StatusCode) -> Self {
        self.status = Some(status.as_u16());
        self
    }

    /// For an authentication failure: how many failures are left before a lockout
    /// (`attempts_left`). Ignored by other events.
    pub fn attempts_left(mut self, left: u32) -> Self {
        if let Kind::AuthAttempt { attempts_left, .. } = &mut self.kind {
            *attempts_left = Some(left);
        }
        self
    }

    /// For a CORS refusal: the preflight's `Access-Control-Request-Method` (untrusted;
    /// escaped like every field), recorded as `method`. Ignored by other events.
    pub fn method<M>(mut self, request_method: &'a M) -> Self
    where
        M: AsRef<[u8]> + ?Sized,
    {
        if let Kind::CorsRefused { method, .. } = &mut self.kind {
            *method = Some(Cow::Borrowed(request_method.as_ref()));
        }
        self
    }

    /// The `event` field: the guide's event name (`auth_attempt`, `rate_limit_exceeded`,
    /// `suspicious_activity`, `input_validation_fail`, `cors_refused`, `client_unidentified`).
    pub fn event_name(&self) -> &'static str {
        match &self.kind {
            Kind::RateLimitExceeded { .. } => "rate_limit_exceeded",
            Kind::BlockedAddress | Kind::Suspicious { .. } => "suspicious_activity",
            Kind::ClientUnidentified { .. } => "client_unidentified",
            Kind::InputValidationFail { .. } => "input_validation_fail",
            Kind::AuthAttempt { .. } => "auth_attempt",
            Kind::CorsRefused { .. } => "cors_refused",
            Kind::StoreDegraded { .. } => "rate_limit_store_degraded",
        }
    }

    /// The `owasp` field: the OWASP logging-vocabulary event name.
    pub fn owasp(&self) -> &'static str {
        match &self.kind {
            Kind::RateLimitExceeded { .. } => "excess_rate_limit_exceeded",
            Kind::BlockedAddress => "authz_fail",
            Kind::ClientUnidentified { .. } => "sys_misconfiguration",
            Kind::InputValidationFail { .. } => "input_validation_fail",
            Kind::AuthAttempt { outcome, .. } => match outcome {
                Auth::Success => "authn_login_success",
                Auth::Fail => "authn_login_fail",
                Auth::Forbidden => "authz_fail",
                Auth::Locked { .. } => "authn_login_lock",
                Auth::Unavailable => "authn_login_fail",
            },
            Kind::CorsRefused { .. } => "malicious_cors",
            Kind::Suspicious { kind } => kind.owasp(),
            Kind::StoreDegraded { .. } => "sys_monitor_disabled",
        }
    }

    /// The level it is logged at: INFO for a successful login, ERROR for an operator error,
    /// WARN otherwise.
    pub fn level(&self) -> tracing::Level {
        match &self.kind {
            Kind::AuthAttempt {
                outcome: Auth::Success,
                ..
            } => tracing::Level::INFO,
            Kind::ClientUnidentified { .. }
            | Kind::StoreDegraded { .. }
            | Kind::AuthAttempt {
                outcome: Auth::Unavailable,
                ..
            } => tracing::Level::ERROR,
            _ => tracing::Level::WARN,
        }
    }

    /// The event's class for flood control: one per `owasp` name (modulo the table's class
    /// count).
    pub(crate) fn class(&self) -> usize {
        match &self.kind {
            Kind::RateLimitExceeded { .. } => 0,
            Kind::BlockedAddress => 1,
            // both operator problems (sys_*), and this one is logged once per episode
            Kind::ClientUnidentified { .. } | Kind::StoreDegraded { .. } => 2,
            Kind::InputValidationFail { .. } => 3,
            Kind::AuthAttempt { outcome, .. } => match outcome {
                Auth::Success => 4,
                Auth::Fail | Auth::Unavailable => 5,
                Auth::Forbidden => 6,
                Auth::Locked { .. } => 7,
            },
            Kind::CorsRefused { .. } => 8,
            Kind::Suspicious { kind } => 9 + *kind as usize,
        }
    }

    /// The summary of a class over its budget: this event, without its client address, saying
    /// so.
    pub(crate) fn class_summary(&self) -> SecurityEvent<'static> {
        let mut summary = self.clone().into_owned();
        summary.client_ip = None;
        summary.status = None;
        summary.reason = Some(Cow::Borrowed(
            "flood: distinct events of this kind over the budget, counted together; other \
             fields are those of the first one",
        ));
        summary
    }

    /// The same event, owning its text (to keep it beyond the borrowed data).
    pub fn into_owned(self) -> SecurityEvent<'static> {
        fn own<T: ToOwned + ?Sized>(c: Cow<'_, T>) -> Cow<'static, T> {
            Cow::Owned(c.into_owned())
        }
        let kind = match self.kind {
            Kind::RateLimitExceeded {
                policy,
                scope,
                subject_hash,
                dry_run,
            } => Kind::RateLimitExceeded {
                policy: own(policy),
                scope: own(scope),
                subject_hash,
                dry_run,
            },
            Kind::BlockedAddress => Kind::BlockedAddress,
            Kind::ClientUnidentified { error } => Kind::ClientUnidentified { error },
            Kind::StoreDegraded { on_failure } => Kind::StoreDegraded { on_failure },
            Kind::InputValidationFail { field, rule } => Kind::InputValidationFail {
                field: own(field),
                rule: own(rule),
            },
            Kind::AuthAttempt {
                outcome,
                key_prefix,
                attempts_left,
            } => Kind::AuthAttempt {
                outcome,
                key_prefix: key_prefix.map(own),
                attempts_left,
            },
            Kind::CorsRefused { origin, method } => Kind::CorsRefused {
                origin: own(origin),
                method: method.map(own),
            },
            Kind::Suspicious { kind } => Kind::Suspicious { kind },
        };
        SecurityEvent {
            kind,
            client_ip: self.client_ip,
            reason: self.reason.map(own),
            status: self.status,
        }
    }

    /// Logs the event through `tracing`, unless `coalescer` counts it as one of a flood of
    /// identical events.
    #[inline]
    pub fn emit_via(&self, coalescer: &Coalescer) {
        coalescer.emit(self);
    }

    /// The one place a security event becomes a `tracing` event. `suppressed` is set on a
    /// summary.
    pub(crate) fn record(&self, suppressed: Option<u64>) {
        let max = DEFAULT_MAX_LEN;
        let event = self.event_name();
        let owasp = self.owasp();
        let ip_text = self.client_ip.map(IpText::new);
        let client_ip = ip_text.as_ref().map(IpText::as_str);
        let reason_text = self.reason.as_deref().map(|r| escape(r, max));
        let reason = reason_text.as_deref();
        let status = self.status;

        macro_rules! emit {
            ($level:ident, $message:literal $(, $($field:tt)*)?) => {
                tracing::event!(
                    target: "tower_shield::security",
                    tracing::Level::$level,
                    event,
                    owasp,
                    client_ip,
                    reason,
                    status,
                    suppressed,
                    $($($field)*,)?
                    $message
                )
            };
        }

        match &self.kind {
            Kind::RateLimitExceeded {
                policy,
                scope,
                subject_hash,
                dry_run,
            } => {
                let hash = subject_hash.map(Hex8::new);
                let subject_hash = hash.as_ref().map(Hex8::as_str);
                emit!(
                    WARN,
                    "rate limit exceeded",
                    policy = &*escape(policy, max),
                    scope = &*escape(scope, max),
                    subject_hash,
                    dry_run = *dry_run
                );
            }
            Kind::BlockedAddress => emit!(WARN, "request from a blocked address"),
            Kind::ClientUnidentified { error } => {
                emit!(ERROR, "cannot identify the client", error = *error);
            }
            Kind::InputValidationFail { field, rule } => emit!(
                WARN,
                "input validation failed",
                field = &*escape_bytes(field, max),
                rule = &*escape(rule, max)
            ),
            Kind::AuthAttempt {
                outcome,
                key_prefix,
                attempts_left,
            } => {
                let prefix = key_prefix.as_deref().map(|p| escape_bytes(p, max));
                let key_prefix = prefix.as_deref();
                match outcome {
                    Auth::Success => {
                        emit!(INFO, "authentication succeeded", success = true, key_prefix)
                    }
                    Auth::Fail => emit!(
                        WARN,
                        "authentication failed",
                        success = false,
                        key_prefix,
                        attempts_left = *attempts_left
                    ),
                    Auth::Forbidden => emit!(WARN, "access denied", success = false, key_prefix),
                    Auth::Locked { retry_after_secs } => emit!(
                        WARN,
                        "authentication locked out",
                        success = false,
                        key_prefix,
                        retry_after_secs = *retry_after_secs
                    ),
                    Auth::Unavailable => emit!(
                        ERROR,
                        "credentials cannot be checked",
                        success = false,
                        key_prefix
                    ),
                }
            }
            Kind::CorsRefused { origin, method } => {
                let method_text = method.as_deref().map(|m| escape_bytes(m, max));
                let method = method_text.as_deref();
                emit!(
                    WARN,
                    "cross-origin request refused",
                    origin = &*escape_bytes(origin, max),
                    method
                );
            }
            Kind::Suspicious { .. } => emit!(WARN, "suspicious activity"),
            Kind::StoreDegraded { on_failure } => emit!(
                ERROR,
                "the shared rate-limit store cannot decide",
                on_failure = *on_failure
            ),
        }
    }
}

/// The short name of a [`ClientIpError`], safe to log: it says what is wrong, never what the
/// header contained.
pub(crate) fn client_ip_error_code(error: &ClientIpError) -> &'static str {
    match error {
        ClientIpError::MissingPeer => "missing_peer",
        ClientIpError::Malformed { .. } => "malformed",
        ClientIpError::Obfuscated { .. } => "obfuscated",
        ClientIpError::TooManyEntries { .. } => "too_many_entries",
        ClientIpError::MissingHops { .. } => "missing_hops",
    }
}

/// An IP address written on the stack, so that labelling a request or a refusal does not
/// allocate.
pub(crate) struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    pub(crate) fn new(ip: IpAddr) -> Self {
        let mut buf = [0u8; 48];
        let len = match ip {
            // Every request's address when spans are on: itoa per octet costs a fraction of
            // `core::fmt`.
            IpAddr::V4(v4) => {
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[len] = b'.';
                        len += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(octet).as_bytes();
                    buf[len..len + digits.len()].copy_from_slice(digits);
                    len += digits.len();
                }
                len
            }
            IpAddr::V6(_) => {
                use std::io::Write;
                let mut out = &mut buf[..];
                // At most 45 bytes: it fits.
                let _ = write!(out, "{ip}");
                48 - out.len()
            }
        };
        IpText { buf, len }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// 32 bits as 8 lowercase hex digits, on the stack.
pub(crate) struct Hex8([u8; 8]);

impl Hex8 {
    pub(crate) fn new(v: u32) -> Self {
        let mut out = [0u8; 8];
        // Cannot fail: 4 bytes are 8 digits.
        let _ = hex::encode_to_slice(v.to_be_bytes(), &mut out);
        Hex8(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_vocabulary() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let cases = [
            (
                SecurityEvent::rate_limit_exceeded("p", "ip", Some(ip), None, false),
                "rate_limit_exceeded",
                "excess_rate_limit_exceeded",
            ),
            (
                SecurityEvent::blocked_address(ip),
                "suspicious_activity",
                "authz_fail",
            ),
            (
                SecurityEvent::auth_attempt(true, None),
                "auth_attempt",
                "authn_login_success",
            ),
            (
                SecurityEvent::auth_lockout(30, None),
                "auth_attempt",
                "authn_login_lock",
            ),
            (
                SecurityEvent::client_unidentified(&ClientIpError::MissingPeer),
                "client_unidentified",
                "sys_misconfiguration",
            ),
            (
                SecurityEvent::suspicious_activity(Malicious::Sqli, "rule 942100"),
                "suspicious_activity",
                "malicious_sqli",
            ),
        ];
        for (event, name, owasp) in cases {
            assert_eq!((event.event_name(), event.owasp()), (name, owasp));
        }
    }

    #[test]
    fn stack_formatting() {
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        assert_eq!(IpText::new(v6).as_str(), v6.to_string());
        for a in [0u8, 1, 9, 10, 42, 99, 100, 109, 199, 200, 250, 255] {
            for b in [0u8, 7, 10, 100, 255] {
                let v4 = IpAddr::from([a, b, 255 - a, b ^ a]);
                assert_eq!(IpText::new(v4).as_str(), v4.to_string());
            }
        }
        assert_eq!(Hex8::new(0x0a1b_2c3d).as_str(), "0a1b2c3d");
    }
}
