//! The published OpenAPI document: what poem-openapi generates, adjusted so that client
//! generators read every schema. `quando openapi`, the served `/openapi.json` and
//! `/openapi.yaml`, and the drift test all take the document from here, so there is one spec.
//!
//! The adjustment (tested by `scripts/generated_clients.sh`, which generates a Python client with
//! openapi-python-client and TypeScript types with openapi-typescript from `openapi.yaml`):
//! poem-openapi writes a documented field whose type is a named schema as
//! `{description, allOf: [{$ref}, {description}]}`, repeating the field's annotations inside the
//! `allOf`. openapi-python-client takes a two-part `allOf` as a composition of objects and drops
//! the whole model when the reference is an enum ("Cannot take allOf a non-object"), so
//! `ErrorBody`, `EventIn`, `EventOut`, ... disappeared from the generated client. The repeated
//! part adds nothing (its keys are already on the field), so it is removed:
//! `{description, allOf: [{$ref}]}` means the same and every generator reads it.
//!
//! Never add anything here that changes what the API accepts or returns: this module only
//! rewrites how the same document is spelled.

use serde_yaml::{Mapping, Value};

/// Keywords that only annotate a schema; an `allOf` part made of them alone, all repeated on
/// its parent, says nothing the parent does not.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "nullable",
    "readOnly",
    "writeOnly",
    "deprecated",
    "example",
    "default",
];

/// The spec as YAML (what `openapi.yaml` holds and `/openapi.yaml` serves).
pub fn spec_yaml() -> String {
    render(&document(), Format::Yaml)
}

/// The spec as pretty-printed JSON (what `/openapi.json` serves).
pub fn spec_json() -> String {
    render(&document(), Format::Json)
}

/// Both spellings of one document, for the server to hold.
pub fn spec_yaml_and_json() -> (String, String) {
    let doc = document();
    (render(&doc, Format::Yaml), render(&doc, Format::Json))
}

enum Format {
    Yaml,
    Json,
}

fn render(doc: &Value, format: Format) -> String {
    // Serialising a `serde_yaml::Value` that came from poem-openapi's own YAML cannot fail: it
    // holds only strings, numbers, booleans, nulls, sequences and string-keyed mappings.
    let rendered = match format {
        Format::Yaml => serde_yaml::to_string(doc).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_string_pretty(doc).map_err(|e| e.to_string()),
    };
    rendered.unwrap_or_else(|e| panic!("the OpenAPI document cannot be written: {e}"))
}

/// poem-openapi's document, read back as an order-keeping YAML value (its mappings keep the
/// generated key order, so the file reads like poem-openapi's own output) and adjusted.
fn document() -> Value {
    let generated = crate::api_service().spec_yaml();
    let mut doc: Value = serde_yaml::from_str(&generated)
        .unwrap_or_else(|e| panic!("poem-openapi wrote YAML it cannot read back: {e}"));
    drop_repeated_annotations(&mut doc);
    doc
}

/// `{.., allOf: [{$ref: X}, {annotations also on the parent}]}` -> `{.., allOf: [{$ref: X}]}`,
/// everywhere in the document.
fn drop_repeated_annotations(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            if only_repeats_annotations(map)
                && let Some(Value::Sequence(parts)) = map.get_mut("allOf")
            {
                parts.truncate(1);
            }
            for (_, child) in map.iter_mut() {
                drop_repeated_annotations(child);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(drop_repeated_annotations),
        _ => {}
    }
}

fn only_repeats_annotations(parent: &Mapping) -> bool {
    let Some(Value::Sequence(parts)) = parent.get("allOf") else {
        return false;
    };
    let [Value::Mapping(reference), Value::Mapping(extra)] = parts.as_slice() else {
        return false;
    };
    let is_reference = reference.len() == 1 && reference.contains_key("$ref");
    is_reference
        && extra.iter().all(|(key, value)| {
            key.as_str()
                .is_some_and(|k| ANNOTATIONS.contains(&k) && parent.get(k) == Some(value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn a_documented_reference_keeps_only_the_reference_in_its_all_of() {
        let mut v = yaml(
            "code:\n  description: d\n  nullable: true\n  allOf:\n  - $ref: '#/x'\n  - description: d\n    nullable: true\n",
        );
        drop_repeated_annotations(&mut v);
        assert_eq!(
            v,
            yaml("code:\n  description: d\n  nullable: true\n  allOf:\n  - $ref: '#/x'\n")
        );
    }

    #[test]
    fn an_all_of_that_adds_constraints_is_left_alone() {
        let text = "a:\n  description: d\n  allOf:\n  - $ref: '#/x'\n  - description: d\n    maxLength: 3\n";
        let mut v = yaml(text);
        drop_repeated_annotations(&mut v);
        assert_eq!(v, yaml(text));
    }

    #[test]
    fn the_published_spec_has_no_all_of_that_repeats_its_parent() {
        let doc = yaml(&spec_yaml());
        fn walk(v: &Value) {
            if let Value::Mapping(m) = v {
                assert!(!only_repeats_annotations(m), "{m:?}");
                m.iter().for_each(|(_, c)| walk(c));
            } else if let Value::Sequence(s) = v {
                s.iter().for_each(walk);
            }
        }
        walk(&doc);
        let json: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
        assert_eq!(json["openapi"], "3.0.0");
    }
}
