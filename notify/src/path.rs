//! Where a value sits in the collector's config file (`notify.channels[2].webhook.url`): the
//! field paths every `[notify]` validation error names. A leaf: the config and every channel use
//! it, it uses nothing.

/// `prefix.name`, or `name` when the prefix is empty.
pub(crate) fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
