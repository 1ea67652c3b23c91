//! How a person answered their readiness nudge (ARCHITECTURE.md, "The nudge").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A person's answer to the readiness nudge: one click on one of its
/// buttons. Stored with the nudge; the latest click wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NudgeResponse {
    /// The training the nudge names is of interest.
    Interested,
    /// Not at this moment: the nudge is asked again after
    /// `model.not_now_weeks` if the role still shows sustained ownership.
    NotNow,
    /// Not wanted: no nudge is sent again until the person asks
    /// (`/pulse nudge on`).
    NotForMe,
}

impl NudgeResponse {
    /// Every response, in the order the nudge shows its buttons.
    pub const ALL: [Self; 3] = [Self::Interested, Self::NotNow, Self::NotForMe];

    /// The stable name used in storage, button values, JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interested => "interested",
            Self::NotNow => "not-now",
            Self::NotForMe => "not-for-me",
        }
    }

    /// The button's label, as the person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Interested => "Interested",
            Self::NotNow => "Not now",
            Self::NotForMe => "Not for me",
        }
    }
}

impl fmt::Display for NudgeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NudgeResponse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown nudge response {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_through_their_names_and_nothing_else_parses() {
        for r in NudgeResponse::ALL {
            assert_eq!(r.as_str().parse::<NudgeResponse>(), Ok(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for bad in ["", "Interested", "not_now", "maybe"] {
            assert!(bad.parse::<NudgeResponse>().is_err(), "{bad}");
        }
    }
}
