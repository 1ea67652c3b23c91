//! The nudge's wording: the texts an operator may set under `[messages]`
//! and the shipped defaults. Configuration validates them and builds a
//! [`MessageSettings`]; [`super::nudge()`] fills them in.

/// The wording of the readiness nudge (`[messages]`). `{name}` in any of
/// the texts is replaced by the person's name (or "there" when it is
/// unknown); a few texts take one more placeholder, named on their field.
/// The nudge reads: title, body, next step, timing, then the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    pub nudge_title: String,
    /// Recognition of the role as it already is.
    pub nudge_body: String,
    /// The step the nudge is about: structured product-owner training.
    /// `{training}` is `training_name`, or [`DEFAULT_TRAINING`].
    pub nudge_next_step: String,
    /// Timing, when the person's latest capacity answer left room to learn.
    /// `{room}` is "room" or, for `little`, "a little room".
    pub nudge_timing: String,
    /// Timing, when a nudge held for "no room to learn" is sent after
    /// `model.capacity_hold_weeks`. `{weeks}` is how many weeks it waited.
    pub nudge_timing_released: String,
    /// Timing, when the person never answered the capacity question.
    pub nudge_timing_unknown: String,
    /// The training offered (`{training}`), e.g. "the CSPO course of our
    /// academy". Not set: the text names the kind of training.
    pub training_name: Option<String>,
    /// Where to read about it or sign up: an `http(s)://` link, shown as a
    /// button on the nudge. Not a secret.
    pub training_url: Option<String>,
}

/// The nudge's default title.
pub const DEFAULT_NUDGE_TITLE: &str = "Your role has grown, {name}";

/// The nudge's default body: recognition of what already happened, not a
/// promise or a shortcut.
pub const DEFAULT_NUDGE_BODY: &str = "Week after week you have been making the calls on the same \
product, with lasting consequences and stakeholders pulling in different directions. That is \
product ownership, and it is already part of your role.";

/// The nudge's default next step: training as reinforcement of decisions
/// already made, never as a shortcut or a credential.
pub const DEFAULT_NUDGE_NEXT_STEP: &str = "This is the point where structured product-owner \
training, such as {training}, tends to pay off: not as a shortcut or a credential, but because \
it builds on decisions you already make every week. It may be worth a word with your lead.";

/// What `{training}` names when `messages.training_name` is not set.
pub const DEFAULT_TRAINING: &str = "a Certified Scrum Product Owner (CSPO) course";

/// The default timing line after a capacity answer with room to learn.
pub const DEFAULT_NUDGE_TIMING: &str = "You said you have {room} to learn this month: if that \
still holds, now is a good time, and when is your call.";

/// The default timing line of a nudge sent after being held for capacity.
pub const DEFAULT_NUDGE_TIMING_RELEASED: &str = "For {weeks} weeks you said there is no room to \
learn right now, so this message waited. It comes now because your role has not changed; \
whether and when to act on it is your call.";

/// The default timing line when capacity was never answered.
pub const DEFAULT_NUDGE_TIMING_UNKNOWN: &str = "Only you know whether this month has room to \
learn: the timing is your call.";

impl Default for MessageSettings {
    /// The shipped wording, with no training named or linked.
    fn default() -> Self {
        Self {
            nudge_title: DEFAULT_NUDGE_TITLE.into(),
            nudge_body: DEFAULT_NUDGE_BODY.into(),
            nudge_next_step: DEFAULT_NUDGE_NEXT_STEP.into(),
            nudge_timing: DEFAULT_NUDGE_TIMING.into(),
            nudge_timing_released: DEFAULT_NUDGE_TIMING_RELEASED.into(),
            nudge_timing_unknown: DEFAULT_NUDGE_TIMING_UNKNOWN.into(),
            training_name: None,
            training_url: None,
        }
    }
}
