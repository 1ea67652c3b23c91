//! A click on one of the readiness nudge's answer buttons, dispatched here
//! from `POST /slack/interactions`: stored (with the click's own key, so a
//! repeat counts once) before the acknowledgement, the nudge's redraw
//! queued with it, and the person re-assessed after.

use super::AppState;
use super::slack::ApiError;
use crate::domain::PersonId;
use crate::nudge::{self, Answered, PostedNudge};
use crate::render::NudgeButton;

/// Records `clicker`'s click on `button`, made on the message at
/// `(channel, ts)` at Slack's `action_ts`.
pub(super) async fn handle_click(
    app: &AppState,
    clicker: &PersonId,
    button: &NudgeButton,
    posted: Option<(&str, &str)>,
    action_ts: Option<&str>,
) -> Result<(), ApiError> {
    let posted = posted.map(|(channel, ts)| PostedNudge { channel, ts });
    let key = action_ts.map(|ts| format!("{clicker}:{ts}"));
    let answered = nudge::answer(
        app.store.as_ref(),
        clicker,
        button,
        posted,
        key,
        app.clock.now(),
    )
    .await?;
    // The nudges setting follows even an unchanged answer.
    if matches!(answered, Answered::Recorded(_) | Answered::Unchanged) {
        app.assessor.request(clicker);
    }
    Ok(())
}
