//! D-Bus values as JSON, key for key: what `--json` prints is what the
//! service sent, including keys newer services add.

use serde_json::{Map, Number, Value as Json};
use zbus::zvariant::Value;

use crate::bus::Dict;

pub fn value(v: &Value<'_>) -> Json {
    match v {
        Value::U8(n) => Json::from(*n),
        Value::Bool(b) => Json::Bool(*b),
        Value::I16(n) => Json::from(*n),
        Value::U16(n) => Json::from(*n),
        Value::I32(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F64(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::from(s.as_str()),
        Value::Signature(s) => Json::from(s.to_string()),
        Value::ObjectPath(p) => Json::from(p.as_str()),
        Value::Value(inner) => value(inner),
        Value::Array(a) => Json::Array(a.iter().map(value).collect()),
        Value::Dict(d) => Json::Object(
            d.iter()
                .map(|(k, v)| {
                    let key = match value(k) {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, value(v))
                })
                .collect(),
        ),
        Value::Structure(s) => Json::Array(s.fields().iter().map(value).collect()),
        // File descriptors never appear in this API.
        _ => Json::Null,
    }
}

/// A dictionary as a JSON object with sorted keys.
pub fn dict(d: &Dict) -> Json {
    let mut keys: Vec<&String> = d.keys().collect();
    keys.sort();
    let map: Map<String, Json> = keys
        .into_iter()
        .map(|k| (k.clone(), value(&d[k])))
        .collect();
    Json::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_keep_their_types() {
        let d: Dict = [
            ("name", Value::from("web01")),
            ("vcpus", Value::U32(2)),
            ("memory-mib", Value::U64(2048)),
            ("is-template", Value::Bool(false)),
            ("future", Value::new(vec!["a".to_string()])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.try_to_owned().expect("owned")))
        .collect();
        assert_eq!(
            dict(&d).to_string(),
            r#"{"future":["a"],"is-template":false,"memory-mib":2048,"name":"web01","vcpus":2}"#
        );
    }
}
