//! A click on one of the readiness nudge's answer buttons, dispatched here
//! from `POST /slack/interactions`: stored (with the click's own key, so a
//! repeat counts once) before the acknowledgement, the nudge's redraw
//! queued with it, and the person re-assessed after.

use super::AppState;
use super::payloads::Action;
use super::slack::ApiError;
use crate::domain::PersonId;
use crate::nudge::{self, Answered, PostedNudge};
use crate::render::NudgeButton;

/// Records `clicker`'s click (`action`, whose value is `button`), made on
/// the message at `(channel, ts)`. A value under another button's
/// `action_id` is no click nudged's nudge could have sent: ignored.
pub(super) async fn handle_click(
    app: &AppState,
    clicker: &PersonId,
    action: &Action,
    button: &NudgeButton,
    posted: Option<(&str, &str)>,
) -> Result<(), ApiError> {
    if action.action_id != format!("nudge:{}", button.response) {
        metrics::counter!("nudged_clicks_ignored_total", "reason" => "not_a_nudge_button")
            .increment(1);
        return Ok(());
    }
    let posted = posted.map(|(channel, ts)| PostedNudge { channel, ts });
    let answered = nudge::answer(
        app.store.as_ref(),
        clicker,
        button,
        posted,
        action.action_ts.as_deref(),
        app.clock.now(),
    )
    .await?;
    // The nudges setting follows even an unchanged answer.
    if matches!(answered, Answered::Recorded(_) | Answered::Unchanged) {
        app.assessor.request(clicker);
    }
    Ok(())
}
