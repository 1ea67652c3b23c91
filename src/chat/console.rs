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
        | Outgoing::TrendPost {
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
            let verb = if matches!(message, Outgoing::Post { .. } | Outgoing::TrendPost { .. }) {
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

/// Writes a trend post's chart to the temporary directory, named by person
/// and week, and says where; a chart that cannot be drawn or written is
/// said so, and the text post stands.
fn save_chart(channel: &str, chart: &crate::model::Chart) -> String {
    let week = chart
        .weeks
        .last()
        .map(|w| w.week.to_string())
        .unwrap_or_default();
    let name: String = format!("nudged-trend-{channel}-{week}.png")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = std::env::temp_dir().join(name);
    let written = crate::render::chart_png(chart)
        .map_err(|e| e.to_string())
        .and_then(|png| std::fs::write(&path, png).map_err(|e| e.to_string()));
    match written {
        Ok(()) => format!("chart saved to {}\n", path.display()),
        Err(e) => format!("(the chart could not be saved: {e})\n"),
    }
}

#[async_trait]
impl ChatApi for ConsoleChat {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError> {
        let mut text = render(message);
        if let Outgoing::TrendPost { channel, chart, .. } = message {
            text.push_str(&save_chart(channel, chart));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Chart, ChartWeek};

    #[test]
    fn a_trend_posts_chart_is_saved_and_the_console_says_where() {
        let chart = Chart {
            weeks: vec![ChartWeek {
                week: "2026-W47".parse().unwrap(),
                index: Some(0.7),
                counted: true,
                ewma: Some(0.7),
            }],
            window: 8,
            high: 0.6,
        };
        let said = save_chart("U/../1", &chart);
        let path = said
            .strip_prefix("chart saved to ")
            .and_then(|p| p.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{said}"));
        // The channel cannot lead the file out of the temporary directory.
        assert!(path.ends_with("nudged-trend-U_.._1-2026-W47.png"), "{path}");
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        let _ = std::fs::remove_file(path);
    }
}
