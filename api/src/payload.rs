//! `JsonBody<T>`: the request-body extractor of every operation. poem-openapi's `Json<T>` answers a
//! bad body in plain text and names only its first problem, never the field. This wrapper keeps
//! the same spec (schema, `required`, content type) but reads the body itself: over 64 KiB is 413,
//! unparseable JSON is `bad_request`, and every field that breaks the schema the spec publishes
//! (missing, wrong type, too long, out of range, not one of the allowed values, unknown) is named
//! in one `validation_error`.

use std::borrow::Cow;

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode, FieldError};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body validated against its published schema.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        <poem_openapi::payload::Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + 'static> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_body(body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(
                ApiError::bad_request("the request body is empty; send a JSON object").into(),
            );
        }
        Ok(JsonBody(parse_value(&bytes)?))
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + 'static);

/// A JSON body that may be left out entirely (no body, or an empty one, with any or no
/// Content-Type); when present it is read exactly like `JsonBody`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<'a, T: ParseFromJSON + 'static> poem_openapi::ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_body(body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        let json = request
            .content_type()
            .is_some_and(<JsonBody<T> as Payload>::check_content_type);
        if !json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "a request body must be sent with Content-Type: application/json",
            )
            .into());
        }
        Ok(OptionalJsonBody(Some(parse_value(&bytes)?)))
    }
}

async fn read_body(body: &mut RequestBody) -> Result<Vec<u8>, ApiError> {
    let body = body
        .take()
        .map_err(|_| ApiError::bad_request("the request body could not be read"))?;
    read_limited(body).await
}

/// Reads a whole body, refusing one over `MAX_BODY_BYTES` with 413 `payload_too_large`.
pub async fn read_limited(body: poem::Body) -> Result<Vec<u8>, ApiError> {
    body.into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map(Vec::from)
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is over 64 KiB",
            ),
            other => ApiError::bad_request(format!("the request body could not be read: {other}")),
        })
}

/// JSON text -> schema check naming every bad field -> the typed value.
fn parse_value<T: ParseFromJSON + 'static>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let (registry, schema) = schema_of::<T>();
    let mut problems = Vec::new();
    check(&value, schema, registry, "", &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    T::parse_from_json(Some(value))
        .map_err(|e| ApiError::field("body", in_our_words(&e.into_message())))
}

/// A reason poem-openapi gives for a value it refuses (`Type "string" expects an input
/// value.`, `verification failed. maxLength(100)`, `failed to parse "integer(uint64)": ...`),
/// said in the API's own words. Reasons it does not know are kept only when they are not the
/// framework's (our own types' parse errors are written for the caller already).
pub fn in_our_words(reason: &str) -> String {
    let reason = reason
        .split(" (occurred while parsing")
        .next()
        .unwrap_or(reason)
        .trim();
    if reason.starts_with("Type \"") && reason.ends_with("expects an input value.") {
        return "is required".into();
    }
    if let Some(rest) = reason.strip_prefix("verification failed. ") {
        let bound = |prefix: &str| {
            rest.strip_prefix(prefix)
                .and_then(|b| b.split([',', ')']).next())
                .map(str::trim)
        };
        let said = [
            ("maxLength(", "must be at most {} characters"),
            ("minLength(", "must be at least {} characters"),
            ("maximum(", "must be at most {}"),
            ("minimum(", "must be at least {}"),
            ("maxItems(", "must have at most {} items"),
            ("minItems(", "must have at least {} items"),
        ]
        .into_iter()
        .find_map(|(prefix, words)| bound(prefix).map(|n| words.replace("{}", n)));
        return said.unwrap_or_else(|| "is not an allowed value".into());
    }
    if let Some(rest) = reason.strip_prefix("Expected input type \"") {
        let ty = rest.split('"').next().unwrap_or_default();
        return must_be(ty).into();
    }
    if let Some(rest) = reason.strip_prefix("failed to parse \"") {
        let (ty, detail) = rest.split_once("\": ").unwrap_or((rest, ""));
        return match ty {
            // Our own date-time type says what is wrong in its own words.
            "string_date-time" | "string_date" if !detail.is_empty() => detail.to_string(),
            ty => must_be(ty).into(),
        };
    }
    reason.to_string()
}

/// What a value of one of poem-openapi's type names must be, in a caller's words.
fn must_be(ty: &str) -> &'static str {
    let ty = ty.trim_start_matches("optional_");
    match ty {
        "string_uuid" => "must be a UUID",
        "string_date-time" => "must be an ISO 8601 date-time, e.g. 2026-04-15T14:00:00Z",
        "string_date" => "must be a date, YYYY-MM-DD",
        "boolean" => "must be true or false",
        t if t.starts_with("integer") => "must be a whole number",
        t if t.starts_with("number") => "must be a number",
        t if t.starts_with("string") => "must be a string",
        t if t.starts_with("array") || t.starts_with("[") => "must be an array",
        t if t.starts_with("EventStatus") => "must be one of: confirmed, tentative, cancelled",
        _ => "is not a valid value",
    }
}

/// The published schema of a body type and the registry its references resolve in, built once
/// per type for the life of the process.
fn schema_of<T: ParseFromJSON + 'static>() -> (&'static Registry, &'static MetaSchemaRef) {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};
    type Built = (&'static Registry, &'static MetaSchemaRef);
    static BUILT: OnceLock<RwLock<HashMap<TypeId, Built>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(found) = built.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return *found;
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    // Leaked on purpose: one small schema per body type, for the life of the process.
    let entry: Built = (
        Box::leak(Box::new(registry)),
        Box::leak(Box::new(T::schema_ref())),
    );
    *built
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id)
        .or_insert(entry)
}

fn resolve<'a>(schema: &'a MetaSchemaRef, registry: &'a Registry) -> Option<&'a MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(s) => Some(s),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn push(problems: &mut Vec<FieldError>, path: &str, message: impl Into<String>) {
    problems.push(FieldError {
        field: if path.is_empty() {
            "body".into()
        } else {
            path.to_string()
        },
        message: message.into(),
    });
}

/// Objects that need one of several groups of fields, which the published schema cannot say
/// as `required` (an event is timed or all-day): the schema's name, then the groups. When no
/// group is complete, the missing members of the group the body started on (else the first)
/// are reported with every other missing field, in the same answer.
const ONE_OF_GROUPS: &[(&str, &[&[&str]])] = &[(
    "EventIn",
    &[&["startTime", "endTime"], &["startDate", "endDate"]],
)];

fn check_groups(
    name: &str,
    map: &serde_json::Map<String, Value>,
    path: &str,
    problems: &mut Vec<FieldError>,
) {
    let Some((_, groups)) = ONE_OF_GROUPS.iter().find(|(n, _)| *n == name) else {
        return;
    };
    let present = |f: &&str| map.get(*f).is_some_and(|v| !v.is_null());
    if groups.iter().any(|g| g.iter().all(present)) {
        return;
    }
    let started = groups
        .iter()
        .find(|g| g.iter().any(present))
        .unwrap_or(&groups[0]);
    for field in started.iter().filter(|f| !present(f)) {
        push(problems, &join(path, field), "is required");
    }
}

/// Checks `value` against the schema the spec publishes, recording one problem per field.
fn check(
    value: &Value,
    schema: &MetaSchemaRef,
    registry: &Registry,
    path: &str,
    problems: &mut Vec<FieldError>,
) {
    let reference = match schema {
        MetaSchemaRef::Reference(name) => Some(name.as_str()),
        MetaSchemaRef::Inline(_) => None,
    };
    let Some(schema) = resolve(schema, registry) else {
        return;
    };
    // A described reference is published as `allOf: [$ref]`.
    for part in &schema.all_of {
        check(value, part, registry, path, problems);
    }
    // Null for an optional field means "absent"; a required one is reported by its parent.
    if value.is_null() {
        return;
    }
    let before = problems.len();
    match schema.ty {
        "object" => {
            let Some(map) = value.as_object() else {
                return push(problems, path, "must be a JSON object");
            };
            if schema.properties.is_empty() {
                return;
            }
            for name in &schema.required {
                if map.get(*name).is_none_or(Value::is_null) {
                    push(problems, &join(path, name), "is required");
                }
            }
            if let Some(name) = reference {
                check_groups(name, map, path, problems);
            }
            for (name, field_value) in map {
                match schema.properties.iter().find(|(n, _)| n == name) {
                    Some((_, field_schema)) => check(
                        field_value,
                        field_schema,
                        registry,
                        &join(path, name),
                        problems,
                    ),
                    None => push(problems, &join(path, name), "is not a known field"),
                }
            }
        }
        "array" => {
            let Some(items) = value.as_array() else {
                return push(problems, path, "must be an array");
            };
            if let Some(max) = schema.max_items.filter(|m| items.len() > *m) {
                push(problems, path, format!("must have at most {max} items"));
            }
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    check(
                        item,
                        item_schema,
                        registry,
                        &format!("{path}[{i}]"),
                        problems,
                    );
                }
            }
        }
        "string" => {
            let Some(s) = value.as_str() else {
                return push(problems, path, "must be a string");
            };
            // PostgreSQL cannot store NUL in text and SQLite would keep it silently: refused
            // here, once, for every string of every body.
            if s.contains('\0') {
                return push(problems, path, "must not contain NUL characters (\\u0000)");
            }
            let chars = s.chars().count();
            if let Some(max) = schema.max_length.filter(|m| chars > *m) {
                push(problems, path, format!("must be at most {max} characters"));
            }
            if let Some(min) = schema.min_length.filter(|m| chars < *m) {
                push(
                    problems,
                    path,
                    if min == 1 {
                        "must not be empty".to_string()
                    } else {
                        format!("must be at least {min} characters")
                    },
                );
            }
            if schema.format == Some("uuid") && uuid::Uuid::parse_str(s).is_err() {
                push(problems, path, "must be a UUID");
            }
            if schema.format == Some("date")
                && let Err(message) = crate::domain::time::parse_date(s)
            {
                push(problems, path, message);
            }
        }
        "integer" => {
            let Some(n) = value.as_i64() else {
                return push(problems, path, "must be an integer");
            };
            let n = n as f64;
            if let Some(min) = schema.minimum.filter(|m| n < *m) {
                push(problems, path, format!("must be at least {min}"));
            }
            if let Some(max) = schema.maximum.filter(|m| n > *m) {
                push(problems, path, format!("must be at most {max}"));
            }
        }
        "number" if !value.is_number() => push(problems, path, "must be a number"),
        "boolean" if !value.is_boolean() => push(problems, path, "must be true or false"),
        _ => {}
    }
    if problems.len() == before
        && !schema.enum_items.is_empty()
        && !schema.enum_items.contains(value)
    {
        let allowed: Vec<Cow<str>> = schema
            .enum_items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(Cow::Borrowed)
                    .unwrap_or_else(|| Cow::Owned(v.to_string()))
            })
            .collect();
        push(
            problems,
            path,
            format!("must be one of: {}", allowed.join(", ")),
        );
    }
}
