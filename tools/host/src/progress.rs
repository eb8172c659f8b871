//! The tools' one progress-bar style: `<what> [=====>    ] 1200/5000 812.3/s <message> eta 5s`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar's layout; `{prefix}` says what is counted, `{msg}` carries a running figure
/// (the training loss, say).
const TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {per_sec} {msg} eta {eta}";

/// A bar of `len` steps labelled `what`, drawn on stderr; a hidden one (every call a no-op)
/// when `shown` is false, so callers update it unconditionally.
pub fn bar(shown: bool, len: u64, what: impl Into<String>) -> ProgressBar {
    let target = if shown {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(style());
    bar.set_prefix(what.into());
    bar
}

fn style() -> ProgressStyle {
    // The template is a constant that the tests parse, so the fallback is never taken.
    ProgressStyle::with_template(TEMPLATE)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        ProgressStyle::with_template(TEMPLATE).unwrap();
    }

    #[test]
    fn bars_count_and_hidden_ones_too() {
        let shown = bar(true, 10, "testing");
        assert_eq!(shown.prefix(), "testing");
        let hidden = bar(false, 10, "testing");
        assert!(hidden.is_hidden());
        for b in [&shown, &hidden] {
            b.inc(3);
            assert_eq!(b.position(), 3);
            assert_eq!(b.length(), Some(10));
            b.finish_and_clear();
        }
    }
}
