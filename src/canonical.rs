//! Canonical JSON as securesystemslib (python-tuf) writes it, so that a signature we make
//! verifies there byte for byte.
//!
//! The rules (securesystemslib `formats.encode_canonical`): no white space; object keys sorted
//! by code point; strings escape only `\` and `"`, every other character, non-ASCII included,
//! is written as its UTF-8 bytes, unnormalised; integers only. tough's encoder (olpc-cjson)
//! differs on key order when one key is a prefix of another followed by a character below `"`
//! and on Unicode normalisation, which is why we carry our own.

use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result};

/// Canonical bytes of any serialisable value.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).map_err(|e| Error::Canonical {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(4096);
    write_value(&value, &mut out, what)?;
    Ok(out)
}

/// Canonical bytes of a JSON value.
pub fn value_to_vec(value: &Value, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    write_value(value, &mut out, what)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>, what: &str) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(Error::Canonical {
                    what: what.to_string(),
                    reason: format!("{n} is not an integer; canonical JSON has integers only"),
                });
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, what)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's Map is a BTreeMap<String, _> (no `preserve_order` feature), and
            // byte order of UTF-8 is code point order: exactly Python's `sorted`.
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out, what)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends `s` as a canonical JSON string.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_code_point_not_by_olpc_rules() {
        // "pkgs/foo" < "pkgs/foo bar": a shorter prefix sorts first, as in Python.
        let v = json!({"pkgs/foo bar": 1, "pkgs/foo": 2, "b": [true, null], "a": "x"});
        assert_eq!(
            value_to_vec(&v, "t").unwrap(),
            br#"{"a":"x","b":[true,null],"pkgs/foo":2,"pkgs/foo bar":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash_and_keeps_unicode() {
        let v = json!({"k": "a\"b\\c\u{e9}\n"});
        assert_eq!(
            value_to_vec(&v, "t").unwrap(),
            "{\"k\":\"a\\\"b\\\\c\u{e9}\n\"}".as_bytes()
        );
    }

    #[test]
    fn refuses_floats() {
        let err = value_to_vec(&json!({"x": 1.5}), "t").unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }
}
