//! Which requests a rule applies to: a method and a path, matched without regex.

use http::Method;

/// A method and path a rule applies to: a rate-limit policy or exemption, an input rule.
///
/// The path is matched exactly, or as a prefix when it ends in `/*` (`/playlist/*` matches
/// `/playlist/generate` but not `/playlists`). No method means every method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    method: Option<Method>,
    path: String,
    prefix: bool,
}

impl Route {
    /// `method` on `path`.
    pub fn new(method: Method, path: &str) -> Route {
        Route::build(Some(method), path)
    }

    /// Every method on `path`.
    pub fn any(path: &str) -> Route {
        Route::build(None, path)
    }

    fn build(method: Option<Method>, path: &str) -> Route {
        match path.strip_suffix("/*") {
            Some(base) => Route {
                method,
                path: format!("{base}/"),
                prefix: true,
            },
            None => Route {
                method,
                path: path.to_owned(),
                prefix: false,
            },
        }
    }

    #[cfg(any(test, feature = "rate-limit", feature = "sanitize"))]
    pub(crate) fn problem(&self) -> Option<String> {
        if !self.path.starts_with('/') {
            return Some(format!("route path {:?} must start with '/'", self.path));
        }
        if self.path.contains('*') {
            return Some(format!(
                "route path {:?}: '*' is only allowed as a final \"/*\"",
                self.path
            ));
        }
        None
    }

    /// Whether a request with `method` and `path` (without query) falls under this route.
    #[inline]
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_exactly_or_by_prefix() {
        let exact = Route::new(Method::POST, "/auth/init");
        assert!(exact.matches(&Method::POST, "/auth/init"));
        assert!(!exact.matches(&Method::GET, "/auth/init"));
        assert!(!exact.matches(&Method::POST, "/auth/init/x"));
        let prefix = Route::any("/playlist/*");
        assert!(prefix.matches(&Method::PUT, "/playlist/generate"));
        assert!(!prefix.matches(&Method::PUT, "/playlists"));
        assert!(Route::any("playlist").problem().is_some());
        assert!(Route::any("/a*b").problem().is_some());
    }
}
