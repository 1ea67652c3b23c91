//! Mattermost's REST API v4, with a bot account's token: each person's
//! messages go to their direct channel with the bot.
//!
//! - A post to a person (`Outgoing::Post` with their user id as channel)
//!   opens the DM (`POST /api/v4/channels/direct` with the bot's id, from
//!   `GET /api/v4/users/me`, and the person's; both ids cached) and posts
//!   into it (`POST /api/v4/posts`), in a thread when `thread_ts` names
//!   its root post. The channel reported back is the person's user id, not
//!   the DM's id: an update needs only the post id, a text reply read from
//!   the WebSocket names its author, and so a prompt, its redraw and a
//!   reply in its thread all name the same channel.
//! - An update is `PUT /api/v4/posts/{id}/patch`.
//! - Mattermost has no App Home: `PublishHome` is acknowledged without a
//!   call, as the webhook does.
//! - A person's zone is their profile's (`GET /api/v4/users/{id}`).
//!
//! Messages are drawn as Mattermost Markdown ([`text::to_text`]); a
//! prompt's buttons become message attachment actions ([`draw`]), which
//! every Mattermost version since 5.0 shows, where Blocks would need a
//! plugin. Each button calls nudged back with a context naming person,
//! week, question, option and schedule, signed with
//! `chat.mattermost.action_secret` ([`sign`]): Mattermost does not sign
//! the requests a click makes, so the signature is what proves a context
//! is one nudged drew.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use chrono_tz::Tz;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{ChatApi, ChatError, Delivered, Outgoing};
use crate::config::MattermostSettings;
use crate::domain::PersonId;
use crate::render::text::{self, Markup};
use crate::render::{ButtonValue, NudgeButton};

/// How long one API call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// When Mattermost answers 429 without a usable `Retry-After` or
/// `X-Ratelimit-Reset`, wait this long (its default limit is 10 calls a
/// second per user).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest error id taken from an answer, in bytes.
const MAX_CODE_LEN: usize = 96;
/// The path buttons call on nudged's HTTP server.
pub const ACTIONS_PATH: &str = "/mattermost/actions";
/// The fields of a prompt button's context, in the order they are signed;
/// the signature itself is under `sig`.
pub const CONTEXT_FIELDS: [&str; 5] = ["person", "week", "question", "option", "schedule"];
/// The fields of a nudge button's context; its signature covers
/// [`NUDGE_TAG`] and then these, so it can never pass for a prompt's.
pub const NUDGE_CONTEXT_FIELDS: [&str; 3] = ["person", "week", "response"];
/// The first field a nudge button's signature covers.
pub const NUDGE_TAG: &str = "nudge";
/// Tells a signature of a button's context from any other use of the key.
const SIGNATURE_DOMAIN: &[u8] = b"nudged mattermost action v1";

/// Where a drawn button calls back, and the key its context is signed with.
#[derive(Clone)]
pub struct Actions {
    url: String,
    secret: SecretString,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("url", &self.url)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl Actions {
    /// Buttons calling `{public_url}/mattermost/actions`, signed with `secret`.
    pub fn new(public_url: &str, secret: &SecretString) -> Self {
        Self {
            url: format!("{}{ACTIONS_PATH}", public_url.trim_end_matches('/')),
            secret: secret.clone(),
        }
    }

    /// The configured ones; `None` unless `action_secret` is set.
    pub fn from_settings(settings: &MattermostSettings) -> Option<Self> {
        let secret = settings.action_secret.as_ref()?;
        Some(Self::new(&settings.public_url, secret))
    }

    fn mac(&self, fields: &[&str]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(SIGNATURE_DOMAIN);
        // Each field with its length first, so no two lists of fields sign
        // the same bytes.
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    /// The signature of a context's `fields` ([`CONTEXT_FIELDS`]'s values,
    /// in order): HMAC-SHA256, hex.
    pub fn sign(&self, fields: &[&str]) -> String {
        hex::encode(self.mac(fields).finalize().into_bytes())
    }

    /// Whether `sig` is the signature of `fields`, compared in constant time.
    pub fn verify(&self, fields: &[&str], sig: &str) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        self.mac(fields).verify_slice(&sig).is_ok()
    }
}

/// A message as Mattermost shows it: its Markdown `message` and the `props`
/// holding its buttons (`attachments[].actions[]`): a prompt's, one
/// attachment per question, or the nudge's answers. Other messages are
/// text only, their `props` empty.
pub fn draw(text: &str, blocks: &[Value], actions: &Actions) -> (String, Value) {
    if !text::is_prompt(blocks) {
        return draw_nudge(text, blocks, actions);
    }
    let mut message = text::convert(&format!("*{}*", text.trim()), Markup::Markdown);
    if let Some(hint) = text::typing_hint(blocks) {
        message.push('\n');
        message.push_str(&hint);
    }
    let mut attachments = Vec::new();
    let mut question = String::new();
    for block in blocks {
        if block["type"] == "section" {
            question = block["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            continue;
        }
        let buttons: Vec<(ButtonValue, &Value)> = block["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| Some((ButtonValue::parse(b["value"].as_str()?)?, b)))
            .collect();
        if block["type"] != "actions" || buttons.is_empty() {
            continue;
        }
        let n = attachments.len();
        let buttons: Vec<Value> = buttons
            .iter()
            .enumerate()
            .map(|(i, (value, button))| {
                let (week, person) = (value.week.to_string(), value.person.to_string());
                let fields = [
                    person.as_str(),
                    week.as_str(),
                    value.question.as_str(),
                    value.option.as_str(),
                    value.schedule.as_str(),
                ];
                let mut context = serde_json::Map::new();
                for (name, field) in CONTEXT_FIELDS.iter().zip(fields) {
                    context.insert((*name).to_owned(), json!(field));
                }
                context.insert("sig".to_owned(), json!(actions.sign(&fields)));
                let chosen = button["style"] == "primary";
                json!({
                    // Alphanumeric: Mattermost routes a click by this id.
                    "id": format!("q{n}o{i}"),
                    "type": "button",
                    "name": button["text"]["text"].as_str().unwrap_or(value.option.as_str()),
                    "style": if chosen { "primary" } else { "default" },
                    "integration": { "url": actions.url, "context": context },
                })
            })
            .collect();
        attachments.push(json!({
            "text": text::convert(&question, Markup::Markdown),
            "actions": buttons,
        }));
    }
    (message, json!({ "attachments": attachments }))
}

/// A message other than a prompt: its text, and the nudge's answer buttons
/// (if it is the nudge) as one attachment of signed actions.
fn draw_nudge(text: &str, blocks: &[Value], actions: &Actions) -> (String, Value) {
    let buttons = |block: &Value| -> Vec<(NudgeButton, Value)> {
        block["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| Some((NudgeButton::parse(b["value"].as_str()?)?, b.clone())))
            .collect()
    };
    let (rows, rest): (Vec<&Value>, Vec<&Value>) = blocks
        .iter()
        .partition(|b| b["type"] == "actions" && !buttons(b).is_empty());
    let rest: Vec<Value> = rest.into_iter().cloned().collect();
    let message = text::to_text(text, &rest, Markup::Markdown);
    let drawn: Vec<Value> = rows
        .into_iter()
        .flat_map(buttons)
        .enumerate()
        .map(|(i, (value, button))| {
            let (week, person, response) = (
                value.week.to_string(),
                value.person.to_string(),
                value.response.to_string(),
            );
            let fields = [person.as_str(), week.as_str(), response.as_str()];
            let mut signed = vec![NUDGE_TAG];
            signed.extend(fields);
            let mut context = serde_json::Map::new();
            for (name, field) in NUDGE_CONTEXT_FIELDS.iter().zip(fields) {
                context.insert((*name).to_owned(), json!(field));
            }
            context.insert("sig".to_owned(), json!(actions.sign(&signed)));
            let chosen = button["style"] == "primary";
            json!({
                "id": format!("n{i}"),
                "type": "button",
                "name": button["text"]["text"].as_str().unwrap_or(response.as_str()),
                "style": if chosen { "primary" } else { "default" },
                "integration": { "url": actions.url, "context": context },
            })
        })
        .collect();
    if drawn.is_empty() {
        (message, json!({}))
    } else {
        (message, json!({ "attachments": [{ "actions": drawn }] }))
    }
}

/// Mattermost's REST API v4 as a [`ChatApi`].
pub struct MattermostChat {
    client: reqwest::Client,
    api: String,
    auth: HeaderValue,
    actions: Actions,
    bot_id: tokio::sync::OnceCell<String>,
    /// Person's user id → their DM channel with the bot.
    dms: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for MattermostChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MattermostChat")
            .field("api", &self.api)
            .field("token", &"[REDACTED]")
            .field("actions", &self.actions)
            .finish()
    }
}

impl MattermostChat {
    /// A client of the server at `url` (e.g. `https://chat.example.com`)
    /// with a bot account's `token`, drawing buttons for `actions`.
    pub fn new(url: &str, token: &SecretString, actions: Actions) -> anyhow::Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "chat.mattermost.bot_token contains characters not allowed in a header"
                )
            })?;
        auth.set_sensitive(true);
        let client = super::http_client(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            api: format!("{}/api/v4", url.trim_end_matches('/')),
            auth,
            actions,
            bot_id: tokio::sync::OnceCell::new(),
            dms: Mutex::new(HashMap::new()),
        })
    }

    /// The configured client: `chat.mattermost.url`, `bot_token`,
    /// `action_secret` and `public_url`.
    pub fn from_settings(settings: &MattermostSettings) -> anyhow::Result<Self> {
        let token = settings.bot_token.as_ref().ok_or_else(|| {
            anyhow::anyhow!("chat.mattermost.bot_token is required for the mattermost platform")
        })?;
        let actions = Actions::from_settings(settings).ok_or_else(|| {
            anyhow::anyhow!("chat.mattermost.action_secret is required for the mattermost platform")
        })?;
        Self::new(&settings.url, token, actions)
    }

    /// The bot account's own user id (`GET /api/v4/users/me`), read once.
    pub async fn bot_user_id(&self) -> Result<String, ChatError> {
        self.bot_id
            .get_or_try_init(|| async {
                let me = self.call(Method::GET, "/users/me", None).await?;
                id_of(&me, "users/me")
            })
            .await
            .cloned()
    }

    /// The DM channel between the bot and `user`, opened once.
    async fn dm_channel(&self, user: &str) -> Result<String, ChatError> {
        if let Some(channel) = self.dms.lock().expect("dm cache").get(user) {
            return Ok(channel.clone());
        }
        let bot = self.bot_user_id().await?;
        let channel = self
            .call(Method::POST, "/channels/direct", Some(&json!([bot, user])))
            .await?;
        let id = id_of(&channel, "channels/direct")?;
        self.dms
            .lock()
            .expect("dm cache")
            .insert(user.to_owned(), id.clone());
        Ok(id)
    }

    /// Calls `path` under `/api/v4` and maps every failure to a
    /// [`ChatError`]; the answer's JSON on success.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChatError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.api))
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        // Paths name ids only; the error names the call without them.
        let what = path.split('/').nth(1).unwrap_or(path);
        let response = request.send().await.map_err(|e| ChatError::Transient {
            reason: format!("{what}: {}", e.without_url()),
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ChatError::RateLimited {
                retry_after: rate_limit_wait(response.headers()).unwrap_or(DEFAULT_RETRY_AFTER),
            });
        }
        let answer = response.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&answer).map_err(|_| ChatError::Transient {
                reason: format!("{what}: unreadable answer"),
            });
        }
        let code = match error_id(&answer) {
            Some(id) => format!("{what}: {id} (HTTP {})", status.as_u16()),
            None => format!("{what}: HTTP {}", status.as_u16()),
        };
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            Err(ChatError::Transient { reason: code })
        } else {
            Err(ChatError::Permanent { code })
        }
    }
}

/// How long a 429 asks to wait: `Retry-After`, else Mattermost's own
/// `X-Ratelimit-Reset` (seconds until the limit resets), both read by
/// [`super::parse_retry_after`] and kept within its bounds.
fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    super::retry_after(headers).or_else(|| {
        let reset = headers.get("x-ratelimit-reset")?.to_str().ok()?;
        super::parse_retry_after(reset, Utc::now())
    })
}

/// The `id` of an object Mattermost answered with.
fn id_of(answer: &Value, what: &str) -> Result<String, ChatError> {
    answer["id"]
        .as_str()
        .filter(|id| is_id(id))
        .map(str::to_owned)
        .ok_or_else(|| ChatError::Transient {
            reason: format!("{what}: answer without an id"),
        })
}

/// A Mattermost id as nudged puts it in a path: letters and digits only.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The error id of a Mattermost error answer (`{"id": "api.…", …}`); only
/// a short identifier is taken, so nothing the server quoted reaches a log.
fn error_id(answer: &str) -> Option<String> {
    let json: Value = serde_json::from_str(answer).ok()?;
    let id = json["id"].as_str()?;
    (!id.is_empty()
        && id.len() <= MAX_CODE_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    .then(|| id.to_owned())
}

/// Refuses a user or post id that could not be a Mattermost id before it
/// goes into a path or a body: no retry will make it one.
fn checked_id<'a>(id: &'a str, what: &str) -> Result<&'a str, ChatError> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(ChatError::Permanent {
            code: format!("not a Mattermost {what} id"),
        })
    }
}

#[async_trait]
impl ChatApi for MattermostChat {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError> {
        match message {
            Outgoing::Post {
                channel,
                thread_ts,
                text,
                blocks,
            } => {
                let user = checked_id(channel, "user")?;
                let channel_id = self.dm_channel(user).await?;
                let (message, props) = draw(text, blocks, &self.actions);
                let mut body =
                    json!({ "channel_id": channel_id, "message": message, "props": props });
                if let Some(root) = thread_ts {
                    body["root_id"] = json!(root);
                }
                let post = self.call(Method::POST, "/posts", Some(&body)).await?;
                Ok(Delivered {
                    channel: Some(user.to_owned()),
                    ts: Some(id_of(&post, "posts")?),
                })
            }
            // No upload here: the trend post's text carries the trend.
            Outgoing::TrendPost {
                channel,
                text,
                blocks,
                ..
            } => {
                let post = Outgoing::Post {
                    channel: channel.clone(),
                    thread_ts: None,
                    text: text.clone(),
                    blocks: blocks.clone(),
                };
                self.send(&post).await
            }
            Outgoing::Update {
                channel,
                ts,
                text,
                blocks,
            } => {
                let post = checked_id(ts, "post")?;
                let (message, props) = draw(text, blocks, &self.actions);
                self.call(
                    Method::PUT,
                    &format!("/posts/{post}/patch"),
                    Some(&json!({ "message": message, "props": props })),
                )
                .await?;
                Ok(Delivered {
                    channel: Some(channel.clone()),
                    ts: Some(ts.clone()),
                })
            }
            Outgoing::PublishHome { .. } => {
                tracing::debug!("Mattermost has no App Home; nothing to publish");
                Ok(Delivered::default())
            }
        }
    }

    /// `GET /api/v4/users/{id}` → the profile's zone: the automatic one
    /// when `useAutomaticTimezone` is on, else the manual one. A zone
    /// chrono-tz does not know is treated as none (and logged).
    async fn user_tz(&self, user: &PersonId) -> Result<Option<Tz>, ChatError> {
        let id = checked_id(user.as_str(), "user")?;
        let profile = self
            .call(Method::GET, &format!("/users/{id}"), None)
            .await?;
        let zone = &profile["timezone"];
        // Mattermost writes these flags as the strings "true" / "false".
        let automatic = matches!(&zone["useAutomaticTimezone"], Value::Bool(true))
            || zone["useAutomaticTimezone"] == "true";
        let name = if automatic {
            zone["automaticTimezone"].as_str()
        } else {
            zone["manualTimezone"].as_str()
        };
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match name.parse::<Tz>() {
            Ok(tz) => Ok(Some(tz)),
            Err(_) => {
                tracing::warn!(person = %user, zone = %name, "Mattermost reports a time zone chrono-tz does not know; ignored");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{OptionKey, QuestionId, default_catalogue};

    fn actions() -> Actions {
        Actions::new(
            "https://nudged.example.com/",
            &SecretString::from("0123456789abcdef-s3cr3t"),
        )
    }

    fn sample() -> crate::render::Message {
        let catalogue = default_catalogue();
        let questions: Vec<QuestionId> = ["decisions", "capacity"]
            .map(|q| QuestionId::parse(q).unwrap())
            .into();
        let mut answered = BTreeMap::new();
        answered.insert(questions[1].clone(), OptionKey::parse("little").unwrap());
        crate::render::prompt(
            &catalogue,
            &questions,
            &PersonId::parse("abc123").unwrap(),
            "2026-W47".parse().unwrap(),
            "weekly-checkin",
            &answered,
        )
    }

    #[test]
    fn a_prompt_is_markdown_with_one_attachment_of_signed_buttons_per_question() {
        let m = sample();
        let (message, props) = draw(&m.text, &m.blocks, &actions());
        assert!(
            message.starts_with("**Weekly check-in for 2026-W47: 1 of 2 answered**\n"),
            "{message}"
        );
        let attachments = props["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 2);
        let first = &attachments[0]["actions"][0];
        assert_eq!(
            first["integration"]["url"],
            "https://nudged.example.com/mattermost/actions"
        );
        let context = &first["integration"]["context"];
        assert_eq!(context["person"], "abc123");
        assert_eq!(context["question"], "decisions");
        let fields: Vec<&str> = CONTEXT_FIELDS
            .iter()
            .map(|f| context[*f].as_str().unwrap())
            .collect();
        assert!(actions().verify(&fields, context["sig"].as_str().unwrap()));
        let chosen: Vec<&Value> = attachments[1]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["style"] == "primary")
            .collect();
        assert_eq!(chosen.len(), 1, "the answer stands out");
    }

    #[test]
    fn the_nudges_answers_are_signed_buttons_and_not_text() {
        let content = crate::render::Message {
            text: "Your role has grown".into(),
            blocks: vec![
                json!({"type": "section", "text": {"type": "mrkdwn", "text": "*Your role has grown*"}}),
            ],
        };
        let person = PersonId::parse("abc123").unwrap();
        let week = "2026-W47".parse().unwrap();
        let m = crate::render::nudge_with_answer(&content, &person, week, None, 8);
        let (message, props) = draw(&m.text, &m.blocks, &actions());
        assert_eq!(message, "**Your role has grown**");
        let buttons = props["attachments"][0]["actions"].as_array().unwrap();
        assert_eq!(buttons.len(), 3);
        let context = &buttons[0]["integration"]["context"];
        let mut signed = vec![NUDGE_TAG];
        signed.extend(NUDGE_CONTEXT_FIELDS.map(|f| context[f].as_str().unwrap()));
        assert!(actions().verify(&signed, context["sig"].as_str().unwrap()));
        // A nudge's signature is no prompt's.
        assert!(!actions().verify(&signed[1..], context["sig"].as_str().unwrap()));
    }

    #[test]
    fn a_changed_field_or_another_key_fails_the_signature() {
        let fields = ["abc123", "2026-W47", "decisions", "6+", "weekly-checkin"];
        let sig = actions().sign(&fields);
        assert!(actions().verify(&fields, &sig));
        let mut tampered = fields;
        tampered[3] = "0";
        assert!(!actions().verify(&tampered, &sig));
        // Moving a boundary between fields changes the signature too.
        assert!(!actions().verify(
            &["abc12", "32026-W47", "decisions", "6+", "weekly-checkin"],
            &sig
        ));
        let other = Actions::new("https://x", &SecretString::from("another-key-0123456"));
        assert!(!other.verify(&fields, &sig));
        assert!(!actions().verify(&fields, "not hex"));
    }

    #[test]
    fn debug_hides_the_secrets() {
        let chat = MattermostChat::new(
            "https://chat.example.com",
            &SecretString::from("bot-s3cr3t"),
            actions(),
        )
        .unwrap();
        let shown = format!("{chat:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_429_waits_for_retry_after_else_the_rate_limit_reset() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", "7".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers), Some(Duration::from_secs(3)));
        assert_eq!(rate_limit_wait(&HeaderMap::new()), None);
    }
}
