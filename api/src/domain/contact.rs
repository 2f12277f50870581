//! Customer contact details, parsed once at the boundary: phone numbers normalised to E.164 so
//! that "does this caller already have a booking?" is an exact match, and email addresses
//! checked for a shape that can actually receive mail.

use std::fmt;

/// A phone number in E.164: `+` and 8 to 15 digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts spaces, dots, dashes and parentheses as separators; the result must be E.164.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err(format!(
                "'{input}' is not an international number: start with + and the country code, e.g. +39 06 1234 5678"
            ));
        };
        let mut digits = String::with_capacity(rest.len() + 1);
        digits.push('+');
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => {
                    return Err(format!(
                        "'{input}' contains '{c}'; only digits, spaces, dots, dashes and parentheses are allowed after +"
                    ));
                }
            }
        }
        let count = digits.len() - 1;
        if !(8..=15).contains(&count) {
            return Err(format!(
                "'{input}' has {count} digits; an E.164 number has 8 to 15 after the +"
            ));
        }
        if digits.as_bytes()[1] == b'0' {
            return Err(format!(
                "'{input}' is not E.164: a country code never starts with 0"
            ));
        }
        Ok(Phone(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: one `@`, a dot-atom local part, and a domain of DNS labels with a TLD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let bad = || format!("'{input}' is not a valid email address");
        if s.len() > 254 {
            return Err("email address is longer than 254 characters".to_string());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(atext));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !(local_ok && domain_ok) {
            return Err(bad());
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_stripped_down_to_e164() {
        assert_eq!(
            Phone::parse("+39 (06) 123-456.78").unwrap().as_str(),
            "+390612345678"
        );
        assert_eq!(Phone::parse("+1234567890").unwrap().as_str(), "+1234567890");
        assert_eq!(
            Phone::parse(" +1 212 555 0100 ").unwrap().as_str(),
            "+12125550100"
        );
    }

    #[test]
    fn numbers_without_country_code_or_of_the_wrong_length_are_refused() {
        assert!(Phone::parse("06 1234 5678").is_err());
        assert!(Phone::parse("+1234567").is_err());
        assert!(Phone::parse("+1234567890123456").is_err());
        assert!(Phone::parse("+39 06 abc").is_err());
        assert!(Phone::parse("+0612345678").is_err());
        assert!(Phone::parse("").is_err());
        assert!(Phone::parse("+").is_err());
    }

    #[test]
    fn ordinary_addresses_are_accepted_and_the_domain_lowercased() {
        assert_eq!(
            Email::parse("laura.bianchi@Example.IT").unwrap().as_str(),
            "laura.bianchi@example.it"
        );
        assert!(Email::parse("a+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "not-an-email",
            "@example.com",
            "a@",
            "a@example",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a b@example.com",
            "a@example.c",
            "a@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
