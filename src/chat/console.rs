//! The console platform: each message printed as readable text on
//! standard output, so the whole loop can be watched with no chat account.

use std::io::Write;

use async_trait::async_trait;

use super::{ChatApi, ChatError, Delivered};
use crate::outbox::Outgoing;

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
            // With blocks, the text is only the notification preview.
            let mut out = format!("── {verb} {channel} ──\n");
            if blocks.is_empty() {
                out.push_str(text);
                out.push('\n');
            }
            for block in blocks {
                if let Some(text) = block["text"]["text"].as_str() {
                    out.push_str(text);
                    out.push('\n');
                }
                if let Some(buttons) = block["elements"].as_array() {
                    let labels: Vec<&str> = buttons
                        .iter()
                        .filter_map(|b| b["text"]["text"].as_str())
                        .collect();
                    out.push_str(&format!("  [{}]\n", labels.join("] [")));
                }
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
