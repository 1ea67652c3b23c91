//! The console platform: each message printed as readable text on
//! standard output, so the whole loop (prompt → answers → trend post →
//! nudge) can be watched with no chat account. What is typed back is read
//! by the console driver (`console_input`), not here: an adapter
//! only sends.

use std::io::Write;

use async_trait::async_trait;

use super::{ChatApi, ChatError, Delivered, Outgoing};
use crate::render::text::{self, Markup};

/// Prints messages to standard output.
#[derive(Debug, Default)]
pub struct ConsoleChat;

/// Renders a message as the console shows it.
pub fn render(message: &Outgoing) -> String {
    match message {
        Outgoing::Post {
            channel,
            text,
            blocks,
            ..
        }
        | Outgoing::Update {
            channel,
            text,
            blocks,
            ..
        } => {
            let verb = if matches!(message, Outgoing::Post { .. }) {
                "to"
            } else {
                "update for"
            };
            let mut out = format!("── {verb} {channel} ──\n");
            out.push_str(&text::to_text(text, blocks, Markup::Plain));
            out.push('\n');
            if let Some(hint) = text::typing_hint(blocks) {
                out.push_str(&hint);
                out.push('\n');
            }
            out
        }
        Outgoing::PublishHome { user, .. } => format!("── home of {user} updated ──\n"),
    }
}

#[async_trait]
impl ChatApi for ConsoleChat {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError> {
        let text = render(message);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| ChatError::Transient {
                reason: e.to_string(),
            })?;
        Ok(Delivered::default())
    }
}
