//! API types shared by several resources that poem-openapi has no ready form for.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use poem_openapi::Object;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

use crate::domain::slots::Slot;
use crate::domain::time::{Zone, format_utc, parse_date, parse_instant};

/// `Type` for a newtype published as a string of an OpenAPI `format`.
macro_rules! string_format_type {
    ($ty:ty, $name:literal, $format:literal) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", $format)))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}

/// An instant, always written in UTC with `Z` and whole seconds (`2026-04-15T14:00:00Z`).
/// Read from an RFC 3339 string with an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

string_format_type!(Timestamp, "string_date-time", "date-time");

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(format_utc(self.0)))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Self::parse_from_parameter(&s),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ParseFromParameter for Timestamp {
    /// In a query string an unencoded `+` arrives as a space (`...T10:00:00 02:00`); a space
    /// followed by `HH:MM` at the end of a date-time can only have been a `+`.
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let restored;
        let value = match value.rsplit_once(' ') {
            Some((head, tail))
                if head.len() >= 16 && tail.len() == 5 && tail.as_bytes()[2] == b':' =>
            {
                restored = format!("{head}+{tail}");
                restored.as_str()
            }
            _ => value,
        };
        parse_instant(value, None)
            .map(Timestamp)
            .map_err(|e| ParseError::custom(e.to_string()))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

/// A bookable slot.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct SlotOut {
    /// Start (UTC).
    pub start_time: Timestamp,
    /// End (UTC): start plus the event type's duration.
    pub end_time: Timestamp,
    /// The start in the requested zone, with its offset (`2026-11-24T14:00:00+01:00`).
    pub local_start_time: String,
    /// With `hosts=true`: the calendars free for this slot (a round-robin booking gets one of
    /// them; a collective one takes all; a single event type's slot names its calendar).
    #[oai(skip_serializing_if_is_none)]
    pub hosts: Option<Vec<uuid::Uuid>>,
}

impl SlotOut {
    /// The slot as offered in `zone`; `None` when its local start falls outside years 0001-9999
    /// (a slot late on 9999-12-31 UTC is already year 10000 east of Greenwich), which no
    /// client could parse back.
    pub fn new(slot: Slot, zone: Zone) -> Option<Self> {
        let local = slot.start.with_timezone(&zone.0);
        if !(1..=9999).contains(&local.year()) {
            return None;
        }
        Some(SlotOut {
            start_time: slot.start.into(),
            end_time: slot.end.into(),
            local_start_time: crate::domain::time::format_local(&local),
            hosts: None,
        })
    }
}

/// A calendar date, `YYYY-MM-DD` (published as `format: date`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalDate(pub NaiveDate);

string_format_type!(LocalDate, "string_date", "date");

impl ToJSON for LocalDate {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.format("%Y-%m-%d").to_string()))
    }
}

impl ParseFromJSON for LocalDate {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => parse_date(&s).map(LocalDate).map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}
