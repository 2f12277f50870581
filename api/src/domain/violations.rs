//! Field errors, collected so that a request hears about every bad field at once. Parsing a
//! dialect's request into a domain request yields the request or `Invalid` with every problem;
//! nothing downstream re-checks, so no "validated field missing" branch exists anywhere.

/// One invalid field and what is wrong with it, in a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field as the caller's dialect spells it (`startTime`, `attendees[3].email`).
    pub field: String,
    pub message: String,
}

/// A request that could not be parsed: every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub Vec<Violation>);

impl Invalid {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid(vec![Violation {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(Violation {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Keeps the value of a successful parse, records the failure of another.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }

    /// `value` when nothing was recorded, else every problem: the end of a parse. `value` is
    /// computed only when there are no problems, so it may rely on every field having parsed.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Invalid> {
        self.into_result()?;
        value().ok_or_else(|| Invalid::one("body", "could not be read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_kept_in_order() {
        let mut v = Violations::default();
        v.add("startTime", "is required");
        let parsed: Option<u8> = v.check("limit", "x".parse::<u8>());
        assert!(parsed.is_none());
        let err = v.into_result().unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert_eq!(err.0[0].field, "startTime");
        assert_eq!(err.0[1].field, "limit");
    }
}
