//! Result values as a session recording keeps them, for every protocol:
//! text that is UTF-8 without control characters as itself, anything else
//! as `\x` hex, each cut at [`MAX_VALUE`] bytes of its rendering.

/// Longest value kept, in bytes of its rendering; longer ones are cut and
/// the results marked as cut.
pub const MAX_VALUE: usize = 1024;

/// A value as text, or as `\x` hex when it is not plain text; and whether
/// it was cut.
pub fn render(value: &[u8]) -> (String, bool) {
    match std::str::from_utf8(value) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) =>
        {
            cut_to(text, MAX_VALUE)
        }
        _ => {
            let keep = value.len().min((MAX_VALUE - 2) / 2);
            (
                format!("\\x{}", hex::encode(&value[..keep])),
                keep < value.len(),
            )
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary; whether it
/// was cut.
pub fn cut_to(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}
