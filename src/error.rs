//! The one error type of configuration: every builder returns it, listing every problem.

use std::borrow::Cow;
use std::fmt;

/// Configuration that cannot work, with every problem found, each naming its setting.
///
/// Builders collect all problems before they fail, so one run shows everything to fix:
///
/// ```
/// use tower_shield::limiter::Quota;
/// use std::time::Duration;
///
/// let err = Quota::per(0, Duration::ZERO).unwrap_err();
/// assert_eq!(err.problems().len(), 2);
/// assert!(err.to_string().contains("quota.requests"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

/// One problem of a [`ConfigError`]: the setting it concerns and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    setting: Cow<'static, str>,
    message: String,
}

impl ConfigProblem {
    /// The setting (builder method or environment variable) that is wrong.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with it, and what would be right.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl ConfigError {
    /// An error with one problem.
    pub fn new(setting: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        let mut errors = ConfigErrors::default();
        errors.push(setting, message);
        ConfigError {
            problems: errors.problems,
        }
    }

    /// Every problem found, in the order the settings were checked.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// The same problems, with `prefix` put before each setting name (`quota.requests` becomes
    /// `RATE_LIMIT_REQUESTS_PER_MINUTE: quota.requests`), for errors raised one level down.
    pub fn within(mut self, prefix: &str) -> Self {
        for p in &mut self.problems {
            p.setting = Cow::Owned(format!("{prefix} ({})", p.setting));
        }
        self
    }
}

impl ConfigError {
    /// The same problems, with the setting `from` called `to`, in the setting names and in
    /// the messages that mention it: how an adapter reports a builder's problems under the
    /// names its users set (`cors.allow_origin` becomes `ALLOWED_ORIGINS`).
    pub fn renamed(mut self, from: &str, to: &str) -> Self {
        for p in &mut self.problems {
            if p.setting == from {
                p.setting = Cow::Owned(to.to_owned());
            }
            if p.message.contains(from) {
                p.message = p.message.replace(from, to);
            }
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid configuration: {}: {}", one.setting, one.message),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  - {}: {}", p.setting, p.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while a builder checks its settings, then becomes a `Result`.
#[derive(Debug, Default)]
pub(crate) struct ConfigErrors {
    problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    pub(crate) fn push(
        &mut self,
        setting: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) {
        self.problems.push(ConfigProblem {
            setting: setting.into(),
            message: message.into(),
        });
    }

    /// Keeps the value of `result`, or records its problems and returns `None`.
    #[cfg_attr(not(feature = "rate-limit"), allow(dead_code))]
    pub(crate) fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.extend(e.problems);
                None
            }
        }
    }

    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}
