//! A stored record's JSON text without its insignificant whitespace: one line, every key,
//! value and number exactly as stored. A record is kept byte for byte as its log file held it,
//! and some log files are pretty-printed (the Stratus Red Team samples, files written by other
//! tools); JSON Lines output needs one record per line, and re-serialising through a parsed
//! value would reorder keys and rewrite numbers (`1.10` → `1.1`, integers past 2^64).

/// `text` with the whitespace outside strings removed. Inside a JSON string a line break can
/// only appear escaped, so the result of valid JSON is one line. Text that is not JSON is
/// returned with the same rule applied: the caller decides what invalid input means.
pub fn compact_json(text: &str) -> String {
    let mut compact = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for character in text.chars() {
        if in_string {
            compact.push(character);
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match character {
            // JSON's insignificant whitespace is exactly these four (RFC 8259 §2).
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_string = true;
                compact.push(character);
            }
            _ => compact.push(character),
        }
    }
    compact
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pretty_printed_record_becomes_one_line_with_every_value_as_stored() {
        let pretty = "{\n  \"eventVersion\": \"1.10\",\n  \"n\": 1.10,\n  \"big\": 123456789012345678901234567890,\n  \"s\": \"a b\\n\\\" } {\",\n  \"list\": [ 1 , 2 ]\r\n}\n";
        assert_eq!(
            compact_json(pretty),
            r#"{"eventVersion":"1.10","n":1.10,"big":123456789012345678901234567890,"s":"a b\n\" } {","list":[1,2]}"#
        );
    }

    #[test]
    fn whitespace_inside_strings_is_kept_and_compact_text_is_unchanged() {
        let compact = r#"{"userAgent":"aws-cli/2.0 Python/3.8 \t tabs","k":"\\"}"#;
        assert_eq!(compact_json(compact), compact);
        let with_unicode = "{ \"name\" : \"caf\u{e9} \u{2028} x\" }";
        assert_eq!(
            compact_json(with_unicode),
            "{\"name\":\"caf\u{e9} \u{2028} x\"}"
        );
    }

    #[test]
    fn the_result_parses_to_the_same_value() {
        let pretty = "{\n \"a\": [ {\"b\" : null}, true, false, -1e-3 ],\n \"c\": \"\\u00e9\"\n}";
        let before: serde_json::Value = serde_json::from_str(pretty).unwrap();
        let after: serde_json::Value = serde_json::from_str(&compact_json(pretty)).unwrap();
        assert_eq!(before, after);
    }
}
