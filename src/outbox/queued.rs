//! What an outbox row holds ([`Queued`]) and the rows use cases add.
//!
//! A row is either a chat message to send as it is, or a redraw of a
//! posted prompt or nudge, drawn from the store when it is sent
//! ([`super::redraw`]), so a burst of clicks is shown by one update that
//! reflects them all. The stored JSON is the flat `{"op": …, …}` object
//! rows have always held, so rows queued by an older nudged still send.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::Outgoing;
use crate::domain::{IsoWeek, PersonId};
use crate::store::{NewOutbox, Store, StoreResult};

/// One outbox row's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub op: Op,
    /// The check-in this post is the prompt of: once delivered, where it
    /// landed is recorded on it, so clicks and thread replies find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkin: Option<i64>,
}

/// What a row asks for. Each variant carries its own `op` tag, so the two
/// kinds never read as each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Op {
    /// A message to send as it is.
    Send(Outgoing),
    /// A message to draw when it is sent.
    Redraw(Redraw),
}

/// A `chat.update` of something nudged posted, drawn at send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Redraw {
    /// A prompt, drawn from the answers stored by then.
    RefreshPrompt {
        channel: String,
        ts: String,
        person: PersonId,
        week: IsoWeek,
        schedule: String,
    },
    /// A readiness nudge, drawn from the nudge and its answer stored by
    /// then, so quick changes of mind are one update that shows the last.
    RefreshNudge {
        channel: String,
        ts: String,
        person: PersonId,
        week: IsoWeek,
    },
}

impl Redraw {
    /// Where the redrawn message is.
    pub fn channel(&self) -> &str {
        match self {
            Self::RefreshPrompt { channel, .. } | Self::RefreshNudge { channel, .. } => channel,
        }
    }
}

impl From<Outgoing> for Queued {
    fn from(message: Outgoing) -> Self {
        Self {
            op: Op::Send(message),
            checkin: None,
        }
    }
}

impl From<Redraw> for Queued {
    fn from(redraw: Redraw) -> Self {
        Self {
            op: Op::Redraw(redraw),
            checkin: None,
        }
    }
}

impl Queued {
    /// `message`, the prompt of check-in `checkin` (if recorded).
    pub fn prompt(message: Outgoing, checkin: Option<i64>) -> Self {
        Self {
            checkin,
            ..message.into()
        }
    }

    /// The row's `kind`: the chat operation it ends as. A redraw is sent
    /// as an update, and paced as one.
    pub fn kind(&self) -> &'static str {
        match &self.op {
            Op::Send(message) => message.kind(),
            Op::Redraw(_) => "update",
        }
    }

    /// Where per-channel pacing applies.
    pub fn channel(&self) -> &str {
        match &self.op {
            Op::Send(message) => message.channel(),
            Op::Redraw(redraw) => redraw.channel(),
        }
    }
}

/// Writes `message` to the outbox, due at once. With a `dedupe_key` already
/// present nothing is written and `None` comes back.
pub async fn enqueue(
    store: &dyn Store,
    message: &Queued,
    person: Option<&PersonId>,
    dedupe_key: Option<String>,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    store.enqueue(&row(message, person, dedupe_key, now)).await
}

/// The outbox row [`enqueue`] adds, for a caller that commits it together
/// with other writes ([`Store::record_inbound`]).
pub fn row(
    message: &Queued,
    person: Option<&PersonId>,
    dedupe_key: Option<String>,
    now: DateTime<Utc>,
) -> NewOutbox {
    // Strings, ids and JSON values only: serializing cannot fail.
    let payload = serde_json::to_string(message).expect("queued messages always serialize");
    NewOutbox {
        dedupe_key,
        coalesce_key: None,
        person: person.cloned(),
        kind: message.kind().to_owned(),
        channel: message.channel().to_owned(),
        payload,
        not_before: now,
        created_at: now,
    }
}

/// A prompt's outbox row, drawn and serialized once before its check-in
/// is recorded, with the check-in's id filled in once known
/// ([`PromptRow::linked`]). A scheduled fan-out holds a page of these
/// until the page is written: a serialized message is a few kilobytes, its
/// JSON tree many times that.
#[derive(Debug, Clone)]
pub struct PromptRow {
    /// The row with no check-in: its payload is the JSON object of
    /// [`Queued`] without `checkin`, which is serialized last when set.
    row: NewOutbox,
}

impl PromptRow {
    pub fn new(
        message: Outgoing,
        person: &PersonId,
        dedupe_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            row: row(
                &Queued::prompt(message, None),
                Some(person),
                dedupe_key,
                now,
            ),
        }
    }

    /// The row linked to check-in `checkin` (`None`: unlinked). The same
    /// text as serializing [`Queued::prompt`] with it: `checkin` is the
    /// object's last field, so it goes in before the closing brace.
    pub fn linked(&self, checkin: Option<i64>) -> NewOutbox {
        let mut row = self.row.clone();
        if let Some(id) = checkin
            && row.payload.ends_with('}')
        {
            row.payload.pop();
            row.payload.push_str(",\"checkin\":");
            row.payload.push_str(&id.to_string());
            row.payload.push('}');
        }
        row
    }
}

/// The outbox row that redraws `person`'s prompt for `week` (posted as
/// `ts` in `channel`) once sent: while one waits, another adds nothing.
pub fn refresh_prompt(
    channel: &str,
    ts: &str,
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
    now: DateTime<Utc>,
) -> NewOutbox {
    let redraw = Redraw::RefreshPrompt {
        channel: channel.to_owned(),
        ts: ts.to_owned(),
        person: person.clone(),
        week,
        schedule: schedule.to_owned(),
    };
    redraw_row(redraw, format!("prompt:{channel}:{ts}"), person, now)
}

/// The outbox row that redraws `person`'s nudge of `week` (posted as `ts`
/// in `channel`) with the answer stored when it is sent: while one waits,
/// another adds nothing.
pub fn refresh_nudge(
    channel: &str,
    ts: &str,
    person: &PersonId,
    week: IsoWeek,
    now: DateTime<Utc>,
) -> NewOutbox {
    let redraw = Redraw::RefreshNudge {
        channel: channel.to_owned(),
        ts: ts.to_owned(),
        person: person.clone(),
        week,
    };
    redraw_row(redraw, format!("nudge:{channel}:{ts}"), person, now)
}

/// A redraw's outbox row: due now, coalesced on `coalesce_key` (one
/// message) so a burst of clicks queues one redraw.
fn redraw_row(
    redraw: Redraw,
    coalesce_key: String,
    person: &PersonId,
    now: DateTime<Utc>,
) -> NewOutbox {
    NewOutbox {
        coalesce_key: Some(coalesce_key),
        ..row(&redraw.into(), Some(person), None, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prompt drawn before its check-in is known reads back as the same
    /// row serializing it with its check-in gives, linked or not.
    #[test]
    fn a_prompt_row_linked_later_is_the_prompt_serialized_with_its_checkin() {
        let person = PersonId::parse("U1").unwrap();
        let message = Outgoing::Post {
            channel: "U1".into(),
            thread_ts: None,
            text: "Two questions, \"checkin\": 20 seconds }".into(),
            blocks: vec![serde_json::json!({"type": "section", "checkin": 3})],
        };
        let now = chrono::Utc::now();
        let drawn = PromptRow::new(message.clone(), &person, Some("run:k".into()), now);
        for checkin in [None, Some(0), Some(42), Some(i64::MAX)] {
            let expected = row(
                &Queued::prompt(message.clone(), checkin),
                Some(&person),
                Some("run:k".into()),
                now,
            );
            let linked = drawn.linked(checkin);
            assert_eq!(linked, expected, "{checkin:?}");
            let back: Queued = serde_json::from_str(&linked.payload).unwrap();
            assert_eq!(back.checkin, checkin);
        }
    }

    fn samples() -> Vec<Queued> {
        vec![
            Queued::prompt(
                Outgoing::Post {
                    channel: "U1".into(),
                    thread_ts: Some("1700000000.000100".into()),
                    text: "Got it".into(),
                    blocks: vec![],
                },
                Some(7),
            ),
            Outgoing::Update {
                channel: "D1".into(),
                ts: "1700000000.000100".into(),
                text: "1 of 7 answered".into(),
                blocks: vec![serde_json::json!({"type": "divider"})],
            }
            .into(),
            Outgoing::PublishHome {
                user: "U1".into(),
                view: serde_json::json!({"type": "home", "blocks": []}),
            }
            .into(),
            Redraw::RefreshPrompt {
                channel: "D1".into(),
                ts: "1.2".into(),
                person: PersonId::parse("U1").unwrap(),
                week: "2026-W47".parse().unwrap(),
                schedule: "weekly".into(),
            }
            .into(),
            Redraw::RefreshNudge {
                channel: "D1".into(),
                ts: "1.2".into(),
                person: PersonId::parse("U1").unwrap(),
                week: "2026-W47".parse().unwrap(),
            }
            .into(),
        ]
    }

    #[test]
    fn every_row_round_trips_through_its_stored_json() {
        for queued in samples() {
            let json = serde_json::to_string(&queued).unwrap();
            let op = match queued.kind() {
                "update" if matches!(queued.op, Op::Redraw(_)) => "refresh_",
                kind => kind,
            };
            assert!(json.contains(&format!("\"op\":\"{op}")), "{json}");
            assert_eq!(serde_json::from_str::<Queued>(&json).unwrap(), queued);
        }
    }

    /// Rows queued before the chat port had its own type still send.
    #[test]
    fn rows_stored_in_the_flat_form_read_as_before() {
        let post = r#"{"op":"post","channel":"U1","text":"hi","checkin":3}"#;
        let queued: Queued = serde_json::from_str(post).unwrap();
        assert_eq!(queued.checkin, Some(3));
        assert!(matches!(queued.op, Op::Send(Outgoing::Post { .. })));
        let refresh = r#"{"op":"refresh_prompt","channel":"D1","ts":"1.2","person":"U1","week":"2026-W47","schedule":"weekly"}"#;
        let queued: Queued = serde_json::from_str(refresh).unwrap();
        assert!(matches!(
            queued.op,
            Op::Redraw(Redraw::RefreshPrompt { .. })
        ));
        assert_eq!(queued.kind(), "update");
        assert!(serde_json::from_str::<Queued>(r#"{"op":"explode"}"#).is_err());
    }
}
