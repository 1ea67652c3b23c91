//! Messages as data: prompts, reminders, trend posts, the team digest and
//! the nudge, rendered to a neutral [`Message`]: plain text for
//! notifications and consoles, Block Kit blocks for Slack. Pure: no IO.

mod chart;
mod digest;
mod nudge;
mod prompt;
pub mod reasons;
pub mod text;
mod trend;
mod wording;

pub use chart::{CHART_SIZE, ChartError, chart_png};
pub use digest::{DigestData, STATE_ORDER, team_digest};
pub use nudge::{ANSWER_BLOCK, NudgeButton, nudge, with_answer as nudge_with_answer};
pub use prompt::{ButtonValue, prompt, prompt_progress, reminder};
pub use trend::{arrow, trend_post};
pub use wording::{
    DEFAULT_NUDGE_BODY, DEFAULT_NUDGE_NEXT_STEP, DEFAULT_NUDGE_TIMING,
    DEFAULT_NUDGE_TIMING_RELEASED, DEFAULT_NUDGE_TIMING_UNKNOWN, DEFAULT_NUDGE_TITLE,
    DEFAULT_TRAINING, MessageSettings,
};

use serde::{Deserialize, Serialize};

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Plain text: the notification preview, and what text-only targets show.
    pub text: String,
    /// Slack Block Kit blocks; empty for text-only messages.
    pub blocks: Vec<serde_json::Value>,
}

impl Message {
    /// The blocks' text as one mrkdwn string, one block per paragraph: for
    /// places that take text only (ephemeral replies, consoles). Buttons are
    /// left out; the plain `text` is used when there are no blocks.
    pub fn to_mrkdwn(&self) -> String {
        if self.blocks.is_empty() {
            return self.text.clone();
        }
        let mut paragraphs = Vec::new();
        for block in &self.blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                paragraphs.push(text.to_owned());
            }
            if block["type"] == "context"
                && let Some(elements) = block["elements"].as_array()
            {
                paragraphs.extend(
                    elements
                        .iter()
                        .filter_map(|e| e["text"].as_str().map(str::to_owned)),
                );
            }
        }
        paragraphs.join("\n\n")
    }
}

/// Slack refuses messages with more blocks than this.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a button's text.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Slack's limit on a button's value.
pub const MAX_BUTTON_VALUE: usize = 2000;

/// Escapes the three characters Slack's mrkdwn treats as control
/// characters, so user text can never become a mention or a link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}
