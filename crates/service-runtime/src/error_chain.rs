//! An error with its causes on one line, for logs: `error: source: source…`.

/// `error: source: source…`; a cause whose text the chain already ends with is not repeated
/// (wrappers that print their source would otherwise say it twice).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}
