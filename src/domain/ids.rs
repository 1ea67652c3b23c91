//! Validated identifiers.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains {found:?}; only ASCII letters, digits and {allowed} are allowed")]
    BadChar { found: char, allowed: &'static str },
}

fn check(s: &str, max: usize, extra: &'static str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > max {
        return Err(IdError::TooLong { max });
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        Some(found) => Err(IdError::BadChar {
            found,
            allowed: extra_description(extra),
        }),
        None => Ok(()),
    }
}

fn extra_description(extra: &'static str) -> &'static str {
    match extra {
        PERSON_EXTRA => "'_', '-', '.', '@'",
        QUESTION_EXTRA => "'_', '-'",
        _ => "'-', '+', '_'",
    }
}

const PERSON_EXTRA: &str = "_-.@";
const QUESTION_EXTRA: &str = "_-";
const OPTION_EXTRA: &str = "-+_";

/// Ids are short and validated ASCII, so they are kept inline
/// ([`CompactString`] holds up to 24 bytes without allocating): a history of
/// answers is one contiguous block the model scans without chasing pointers.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(CompactString);

        impl $name {
            /// Checks `s` and wraps it.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $max, $extra)?;
                Ok(Self(CompactString::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check(&s, $max, $extra)?;
                Ok(Self(CompactString::from(s)))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A person, identified by their chat user id (Slack's `U024BE7LH`), or any
    /// stable handle for the console and webhook platforms.
    PersonId,
    64,
    PERSON_EXTRA
);

id_type!(
    /// A question's stable id (`decisions`, `capacity`, …): used in storage,
    /// CSV, button values and text replies, so it never changes with wording.
    QuestionId,
    24,
    QUESTION_EXTRA
);

id_type!(
    /// An option's stable key within its question (`3-5`, `6+`, `none`).
    OptionKey,
    16,
    OPTION_EXTRA
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slack_ids_and_option_keys() {
        assert!(PersonId::parse("U024BE7LH").is_ok());
        assert!(PersonId::parse("ana.lopez@example.com").is_ok());
        assert!(OptionKey::parse("6+").is_ok());
        assert!(OptionKey::parse("3-5").is_ok());
        assert!(QuestionId::parse("decisions").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert_eq!(PersonId::parse(""), Err(IdError::Empty));
        assert_eq!(
            QuestionId::parse(&"q".repeat(25)),
            Err(IdError::TooLong { max: 24 })
        );
        assert!(matches!(
            OptionKey::parse("3 5"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(
            PersonId::parse("U1,U2"),
            Err(IdError::BadChar { found: ',', .. })
        ));
    }
}
