//! Rich-text (HTML) fields, cleaned by one reused [`ammonia`] cleaner (feature `rich-text`).

use std::fmt;
use std::sync::Arc;

/// An HTML cleaner for rich-text fields: one configured [`ammonia::Builder`], built once and
/// shared, since building one per call costs microseconds.
///
/// Rich text is always *rewritten*, never refused: what ammonia's allow-list does not know
/// (`<script>`, `onerror=`, `javascript:` links, namespace-switching tricks) is removed, the
/// rest is re-serialised. Keep ammonia up to date: its mXSS fixes land in new releases.
///
/// ```
/// use tower_shield::sanitize::RichText;
///
/// let cleaner = RichText::default();
/// assert_eq!(cleaner.clean("<b>bold</b><img src=x onerror=alert(1)>"), r#"<b>bold</b><img src="x">"#);
/// ```
#[derive(Clone)]
pub struct RichText {
    cleaner: Arc<ammonia::Builder<'static>>,
}

impl RichText {
    /// A cleaner with this ammonia configuration (tags, attributes, URL schemes…).
    pub fn new(builder: ammonia::Builder<'static>) -> RichText {
        RichText {
            cleaner: Arc::new(builder),
        }
    }

    /// The cleaned HTML.
    pub fn clean(&self, html: &str) -> String {
        self.cleaner.clean(html).to_string()
    }
}

impl Default for RichText {
    /// ammonia's default allow-list.
    fn default() -> Self {
        RichText::new(ammonia::Builder::default())
    }
}

impl fmt::Debug for RichText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RichText").finish_non_exhaustive()
    }
}
