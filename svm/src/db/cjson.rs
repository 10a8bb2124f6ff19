//! Canonical JSON (OLPC), the bytes TUF signatures and key ids cover: object keys sorted by
//! their bytes, no insignificant white space, integers only, strings escaped only for `"` and
//! `\`. Signatures are checked over the canonical form of the metadata as parsed, so a bundle
//! may be re-indented without breaking them, and two encodings of one document never verify
//! differently.
//!
//! `olpc-cjson` also normalizes strings to Unicode NFC. A string holding a control character
//! canonicalizes to bytes that are not JSON (OLPC leaves it raw); such bytes are only ever
//! signed or hashed, never parsed again.

use serde::Serialize;

/// The canonical JSON of `value`; an error for a float, which canonical JSON does not have.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// JSON values canonical JSON can carry: no floats; strings from `chars`.
    fn value_of(chars: &'static str) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            proptest::string::string_regex(&format!("{chars}{{0,12}}"))
                .unwrap()
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        proptest::string::string_regex(&format!("{chars}{{0,8}}")).unwrap(),
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        /// Canonical bytes parse back to the same value (ASCII strings, which NFC leaves alone),
        /// and canonicalizing again gives the same bytes.
        #[test]
        fn round_trip(v in value_of("[ -~]")) {
            let bytes = to_vec(&v).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(to_vec(&back).unwrap(), bytes);
        }

        /// Any Unicode without control characters: canonical bytes are a fixed point (NFC and
        /// key order are applied once and for all).
        #[test]
        fn fixed_point(v in value_of("[^\\x00-\\x1f]")) {
            let bytes = to_vec(&v).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(to_vec(&back).unwrap(), bytes);
        }

        /// The order keys were inserted in, and pretty printing, do not change the canonical bytes.
        #[test]
        fn independent_of_encoding(kv in prop::collection::vec(("[a-z]{0,6}", any::<i64>()), 0..10)) {
            let forward: Map<String, Value> = kv.iter().map(|(k, n)| (k.clone(), Value::from(*n))).collect();
            let mut reversed = Map::new();
            for (k, _) in kv.iter().rev() {
                if let Some(n) = forward.get(k) {
                    reversed.insert(k.clone(), n.clone());
                }
            }
            let pretty = serde_json::to_string_pretty(&Value::Object(forward.clone())).unwrap();
            let reparsed: Value = serde_json::from_str(&pretty).unwrap();
            let a = to_vec(&Value::Object(forward)).unwrap();
            prop_assert_eq!(&to_vec(&Value::Object(reversed)).unwrap(), &a);
            prop_assert_eq!(&to_vec(&reparsed).unwrap(), &a);
        }
    }

    #[test]
    fn sorted_compact_and_no_floats() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, "x\"y"], "a": {"d": null, "c": true} }"#).unwrap();
        assert_eq!(
            to_vec(&v).unwrap(),
            br#"{"a":{"c":true,"d":null},"b":[1,"x\"y"]}"#.to_vec()
        );
        assert!(to_vec(&serde_json::json!({"f": 1.5})).is_err());
    }
}
