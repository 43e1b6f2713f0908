//! Errors as one line for logs and `cdc check`: the message and its causes.

/// An error's message followed by each cause's that it does not already hold, `: `-separated.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // cdc-core's Source, Sink and OffsetStore messages already hold their causes' text.
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
