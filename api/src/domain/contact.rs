//! Customer contact details, parsed once at the boundary: phone numbers normalised to E.164 so
//! that "does this caller already have a booking?" is an exact match, and email addresses
//! checked for a shape that can actually receive mail.

use std::fmt;

/// A phone number in E.164 (`+` and 8 to 15 digits) that is a valid number of a real numbering
/// plan: its country code is assigned and its national number has a length and a prefix that
/// plan gives out (Google's libphonenumber metadata, through the `phonenumber` crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts spaces, dots, dashes and parentheses as separators; the result must be E.164 and
    /// a valid number of its country's plan (`+999 ...` is not: no country has 999).
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
        // Only `+` and digits reach the metadata: the number's own plan decides the rest.
        let invalid = || {
            format!(
                "'{input}' is not a valid phone number: no country's numbering plan gives out {digits}"
            )
        };
        let number = phonenumber::parse(None, &digits).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Phone(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A number as a caller says it or an agent transcribes it: "plus three nine, zero six, one
    /// two three four, five six seven eight", "double five", "oh" for zero, "00 39 ..." (the
    /// international call prefix for +), slashes and commas as separators. What comes out is
    /// held to `parse`: E.164 and a valid number of its country's plan.
    pub fn parse_spoken(input: &str) -> Result<Self, String> {
        const DIGITS: [(&str, char); 11] = [
            ("zero", '0'),
            ("oh", '0'),
            ("one", '1'),
            ("two", '2'),
            ("three", '3'),
            ("four", '4'),
            ("five", '5'),
            ("six", '6'),
            ("seven", '7'),
            ("eight", '8'),
            ("nine", '9'),
        ];
        let lower = input.to_lowercase();
        let mut out = String::with_capacity(lower.len());
        let mut repeat = 1;
        for word in lower
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '/' | ';'))
            .filter(|w| !w.is_empty())
        {
            match word {
                "plus" => out.push('+'),
                "double" => repeat = 2,
                "triple" => repeat = 3,
                _ => {
                    let text: String = match DIGITS.iter().find(|(name, _)| *name == word) {
                        Some((_, digit)) => digit.to_string(),
                        None => word.to_string(),
                    };
                    // "double five" repeats the next digit, "double 55" is taken as said.
                    if repeat > 1 && text.len() == 1 {
                        out.extend(std::iter::repeat_n(text.as_str(), repeat));
                    } else {
                        out.push_str(&text);
                    }
                    out.push(' ');
                    repeat = 1;
                }
            }
        }
        let out = out.trim();
        let normalised = match out.strip_prefix("00") {
            Some(rest) if !out.starts_with('+') => format!("+{rest}"),
            _ => out.to_string(),
        };
        Phone::parse(&normalised).map_err(|_| {
            format!(
                "'{input}' is not a phone number Quando can read: say or write it with its country \
                 code, e.g. +39 06 1234 5678 or 0039 06 1234 5678"
            )
        })
    }

    /// Loads the numbering-plan metadata now: the first parse deserialises it (about 0.1 s in a
    /// release build), which should be paid at start-up, not by the first booking.
    pub fn warm_up() {
        let _ = Phone::parse("+39 06 1234 5678");
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
    fn a_number_said_aloud_or_written_with_00_comes_to_the_same_e164() {
        for said in [
            "+39 06 1234 5678",
            "0039 06 1234 5678",
            "plus three nine, zero six, one two three four, five six seven eight",
            "plus 39 oh six 1234 5678",
            "+39/06/12345678",
            "plus three nine zero six one two three four five six seven eight",
        ] {
            assert_eq!(
                Phone::parse_spoken(said).map(|p| p.as_str().to_string()),
                Ok("+390612345678".to_string()),
                "{said}"
            );
        }
        assert_eq!(
            Phone::parse_spoken("plus four four seven nine double one triple two three four five")
                .unwrap()
                .as_str(),
            Phone::parse("+44 7911 222345").unwrap().as_str()
        );
        for bad in [
            "call me maybe",
            "06 1234 5678",
            "plus nine nine nine one two three",
        ] {
            assert!(Phone::parse_spoken(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn separators_are_stripped_down_to_e164() {
        assert_eq!(
            Phone::parse("+39 (06) 123-456.78").unwrap().as_str(),
            "+390612345678"
        );
        assert_eq!(Phone::parse("+4930123456").unwrap().as_str(), "+4930123456");
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
    fn plus_999_is_not_a_phone_number() {
        let refused = Phone::parse("+999 1234 5678").unwrap_err();
        assert!(refused.contains("not a valid phone number"), "{refused}");
        assert!(Phone::parse("+999123456789").is_err());
    }

    #[test]
    fn a_number_no_plan_gives_out_is_refused_though_its_shape_is_e164() {
        for bad in [
            "+1234567890",      // +1 234 567 890: NANP numbers have 10 digits
            "+1 011 555 0100",  // NANP area codes never start with 0
            "+39 06",           // too short for Italy even with digits to spare elsewhere
            "+44 1234",         // too short for the UK
            "+49 00000 000000", // German area codes never start with 0 after the country code
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_numbers_in_several_countries_are_accepted_as_e164() {
        for (input, e164) in [
            ("+39 06 1234 5678", "+390612345678"), // Italy, Rome fixed line (leading 0 kept)
            ("+39 333 123 4567", "+393331234567"), // Italy, mobile
            ("+1 (650) 253-0000", "+16502530000"), // United States
            ("+1 416 555 0199", "+14165550199"),   // Canada
            ("+44 20 7946 0958", "+442079460958"), // United Kingdom, London
            ("+44 7400 123456", "+447400123456"),  // United Kingdom, mobile
            ("+33 1 42 68 53 00", "+33142685300"), // France
            ("+49 30 123456", "+4930123456"),      // Germany, Berlin
            ("+34 912 34 56 78", "+34912345678"),  // Spain
            ("+55 11 91234-5678", "+5511912345678"), // Brazil, Sao Paulo mobile
            ("+351 21 123 4567", "+351211234567"), // Portugal
            ("+81 3-1234-5678", "+81312345678"),   // Japan, Tokyo
            ("+91 98765 43210", "+919876543210"),  // India, mobile
            ("+61 2 9876 5432", "+61298765432"),   // Australia, Sydney
        ] {
            assert_eq!(
                Phone::parse(input).map(|p| p.as_str().to_string()),
                Ok(e164.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn every_separator_accepted_before_is_still_accepted() {
        for input in [
            "+39 06 1234 5678",
            "+39.06.1234.5678",
            "+39-06-1234-5678",
            "+39 (06) 1234-5678",
            "+39(06)12345678",
            "  +390612345678  ",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "+390612345678",
                "{input}"
            );
        }
    }

    #[test]
    fn no_digit_string_makes_the_parser_panic() {
        // The metadata's patterns are only ever given `+` and 8 to 15 digits; walk a spread of
        // them, every country-code length included.
        let mut n: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 8..=15 {
            for _ in 0..300 {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                let digits: String = format!("{n:020}").chars().take(len).collect();
                let _ = Phone::parse(&format!("+{digits}"));
            }
        }
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
