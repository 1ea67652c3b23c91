//! Each configuration problem a person can make, and the line they see.

use std::fs;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use super::*;
use crate::domain::default_catalogue;

const SCHEDULE: &str = r#"
name = "weekly-checkin"
cron = "0 0 16 * * THU"
timezone = "person"
kind = "checkin"
questions = ["decisions", "capacity"]
audience = "all"
"#;

/// A temp directory with `config.toml` holding `body` and one valid schedule.
fn write_config(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("schedules")).unwrap();
    fs::write(dir.path().join("schedules/weekly.toml"), SCHEDULE).unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, body).unwrap();
    (dir, file)
}

fn load(body: &str) -> Result<Settings, ConfigError> {
    load_env(body, &[])
}

fn load_env(body: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let (_dir, file) = write_config(body);
    Settings::load_with_env(
        &file,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn error(body: &str) -> ConfigError {
    load(body).expect_err("config should be rejected")
}

#[test]
fn the_shipped_config_loads_with_the_embedded_defaults() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let s = Settings::load_with_env(&file, []).unwrap();
    assert_eq!(s.server.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(s.chat.platform, Platform::Console);
    assert!(s.storage.url.starts_with("sqlite://"));
    assert!(s.storage.url.ends_with("data/nudged.db"));
    assert_eq!(s.people.len(), 1);
    assert_eq!(s.model, Params::default());
    assert_eq!(s.delivery, DeliverySettings::default());
    assert_eq!(s.catalogue, default_catalogue());
    assert!(!s.schedules.list.is_empty());
}

#[test]
fn an_empty_file_means_all_defaults() {
    let s = load("").unwrap();
    assert_eq!(s.server.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(s.chat.platform, Platform::Console);
    assert_eq!(s.schedules.grace, chrono::Duration::hours(24));
}

#[test]
fn errors_name_the_file_the_key_and_the_problem() {
    let (_dir, file) = write_config("[chat]\nplatform = \"irc\"\n");
    let e = Settings::load_with_env(&file, []).unwrap_err();
    let line = e.to_string();
    assert!(
        line.starts_with(&format!("{}: chat.platform: ", file.display())),
        "{line}"
    );
    assert!(line.contains("irc"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn a_missing_file_is_named() {
    let e = Settings::load_with_env(Path::new("/nonexistent/nudged.toml"), []).unwrap_err();
    assert_eq!(e.file, Path::new("/nonexistent/nudged.toml"));
    assert!(e.problem.contains("no such config file"), "{e}");
}

#[test]
fn toml_syntax_errors_are_reported() {
    let e = error("[server\nbind = 1");
    assert!(e.problem.contains("not valid TOML"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = error("[chat]\nplaform = \"slack\"\n");
    assert_eq!(e.key, "chat.plaform");
    assert!(e.problem.starts_with("unknown key"), "{e}");

    let e = error("[model]\nhigh_threshold = 0.7\n");
    assert_eq!(e.key, "model.high_threshold", "{e}");

    let e = error("[surver]\nbind = \"x\"\n");
    assert_eq!(e.key, "surver", "{e}");
}

#[test]
fn a_bad_bind_address_is_rejected() {
    let e = error("[server]\nbind = \"localhost\"\n");
    assert_eq!(e.key, "server.bind");
    assert!(e.problem.contains("address with a port"), "{e}");
}

#[test]
fn an_unknown_time_zone_is_rejected() {
    let e = error("[[people]]\nid = \"U1\"\ntz = \"Europe/Berln\"\n");
    assert_eq!(e.key, "people[0].tz");
    assert!(
        e.problem.contains("unknown time zone \"Europe/Berln\""),
        "{e}"
    );
}

#[test]
fn duplicate_and_malformed_people_are_rejected() {
    let e = error("[[people]]\nid = \"U1\"\n[[people]]\nid = \"U1\"\n");
    assert_eq!(e.key, "people[1].id");
    assert!(e.problem.contains("twice"), "{e}");

    let e = error("[[people]]\nid = \"U 1\"\n");
    assert_eq!(e.key, "people[0].id");

    let e = error("[[people]]\nid = \"U1\"\nzone = \"Europe/Berlin\"\n");
    assert_eq!(e.key, "people[0].zone");
    assert!(e.problem.starts_with("unknown key"), "{e}");

    let e = error("people = [{ id = \"U1\" }]\n[[people]]\nid = \"U2\"\n");
    assert_eq!(e.key, "people");
}

#[test]
fn a_roster_written_inline_or_between_other_tables_is_read_in_order() {
    let inline =
        load("people = [{ id = \"U1\" }, { id = \"U2\", tz = \"Asia/Tokyo\" }]\n").unwrap();
    let ids: Vec<_> = inline.people.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["U1", "U2"]);

    let between = load(
        "[[people]]\nid = \"U1\"\n[server]\nbind = \"127.0.0.1:4000\"\n\
         [[people]]\nid = \"U2\"\n[model]\nalpha = 0.5\n",
    )
    .unwrap();
    let ids: Vec<_> = between.people.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["U1", "U2"]);
    assert_eq!(between.server.bind.port(), 4000);
    assert_eq!(between.model.alpha, 0.5);
}

#[test]
fn a_toml_error_after_the_roster_names_the_files_own_line() {
    // Well formed to the parser, so the roster is cut out; the duplicate key
    // is found afterwards, in what is left, on the file's line 8.
    let e = error(
        "[[people]]\nid = \"U1\"\n\n[[people]]\nid = \"U2\"\n[server]\n\
         bind = \"127.0.0.1:1\"\nbind = \"127.0.0.1:2\"\n",
    );
    assert!(e.problem.contains("line 8"), "{e}");
}

#[test]
fn thresholds_out_of_range_are_rejected() {
    let e = error("[model]\nlow = 0.7\nhigh = 0.6\n");
    assert!(e.key.starts_with("model."), "{e}");
    let e = error("[model]\nalpha = 0\n");
    assert_eq!(e.key, "model.alpha", "{e}");
    let e = error("[model]\nweights = { decisions = -1.0 }\n");
    assert!(e.key.starts_with("model.weights"), "{e}");
    let e = error("[model]\nnot_now_weeks = 0\n");
    assert_eq!(e.key, "model.not_now_weeks", "{e}");
}

#[test]
fn not_now_waits_eight_weeks_unless_configured() {
    assert_eq!(load("").unwrap().model.not_now_weeks, 8);
    let s = load_env("", &[("NUDGED__MODEL__NOT_NOW_WEEKS", "4")]).unwrap();
    assert_eq!(s.model.not_now_weeks, 4);
}

#[test]
fn a_weight_for_a_question_that_does_not_exist_is_rejected() {
    let e = error("[model]\nweights = { decisions = 0.5, mood = 0.5 }\n");
    assert!(e.key.starts_with("model.weights"), "{e}");
    assert!(e.problem.contains("mood"), "{e}");
}

#[test]
fn slack_without_its_secrets_is_rejected_and_names_the_env_var() {
    let e = error("[chat]\nplatform = \"slack\"\n");
    assert_eq!(e.key, "chat.slack.bot_token");
    assert!(e.problem.contains("NUDGED__CHAT__SLACK__BOT_TOKEN"), "{e}");

    let e = load_env(
        "[chat]\nplatform = \"slack\"\n",
        &[("NUDGED__CHAT__SLACK__BOT_TOKEN", "xoxb-1")],
    )
    .unwrap_err();
    assert_eq!(e.key, "chat.slack.signing_secret");
}

#[test]
fn webhook_without_a_url_is_rejected() {
    let e = error("[chat]\nplatform = \"webhook\"\n");
    assert_eq!(e.key, "chat.webhook.url");
    assert!(e.problem.contains("NUDGED__CHAT__WEBHOOK__URL"), "{e}");
}

const WEBHOOK: &str = "[chat]\nplatform = \"webhook\"\n[chat.webhook]\nurl = \"https://chat.example.com/hooks/s3cr3t-key\"\n";

#[test]
fn the_webhook_flavor_defaults_to_slack_and_can_be_chosen() {
    let s = load(WEBHOOK).unwrap();
    assert_eq!(s.chat.webhook.flavor, WebhookFlavor::Slack);

    let s = load(&format!("{WEBHOOK}flavor = \"mattermost\"\n")).unwrap();
    assert_eq!(s.chat.webhook.flavor, WebhookFlavor::Mattermost);

    let s = load_env(WEBHOOK, &[("NUDGED__CHAT__WEBHOOK__FLAVOR", "rocketchat")]).unwrap();
    assert_eq!(s.chat.webhook.flavor, WebhookFlavor::Rocketchat);
    let s = load(&format!("{WEBHOOK}flavor = \"rocket.chat\"\n")).unwrap();
    assert_eq!(s.chat.webhook.flavor, WebhookFlavor::Rocketchat);
}

#[test]
fn an_unknown_webhook_flavor_is_rejected_with_the_choices() {
    let e = error(&format!("{WEBHOOK}flavor = \"teams\"\n"));
    assert_eq!(e.key, "chat.webhook.flavor", "{e}");
    assert!(e.problem.contains("teams"), "{e}");
    assert!(e.problem.contains("mattermost"), "{e}");

    let e = load_env(WEBHOOK, &[("NUDGED__CHAT__WEBHOOK__FLAVOR", "irc")]).unwrap_err();
    assert_eq!(e.key, "chat.webhook.flavor", "{e}");
    assert!(e.problem.contains("\"irc\""), "{e}");
}

#[test]
fn a_bad_webhook_url_is_rejected_without_echoing_it() {
    for url in [
        "ftp://chat.example.com/hooks/s3cr3t-key",
        "https://",
        "https:///hooks/s3cr3t-key",
        "https://chat.example.com/hooks/s3cr3t key",
    ] {
        let e = load_env(WEBHOOK, &[("NUDGED__CHAT__WEBHOOK__URL", url)]).unwrap_err();
        assert_eq!(e.key, "chat.webhook.url", "{url}: {e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}

#[test]
fn the_webhook_url_never_prints() {
    let s = load(WEBHOOK).unwrap();
    assert_eq!(
        s.chat.webhook.url.as_ref().unwrap().expose_secret(),
        "https://chat.example.com/hooks/s3cr3t-key"
    );
    let shown = format!("{s:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[test]
fn environment_overrides_the_file_and_secrets_stay_hidden() {
    let s = load_env(
        "[chat]\nplatform = \"console\"\n",
        &[
            ("NUDGED__CHAT__PLATFORM", "slack"),
            ("NUDGED__CHAT__SLACK__BOT_TOKEN", "xoxb-very-secret"),
            (
                "NUDGED__CHAT__SLACK__SIGNING_SECRET",
                "8f742231b10e8888abcd99yyyzzz85a5",
            ),
            ("NUDGED__SERVER__BIND", "0.0.0.0:8080"),
            ("NUDGED__MODEL__HIGH", "0.7"),
            ("NUDGED__SCHEDULES__GRACE_HOURS", "6"),
            ("OTHER__SERVER__BIND", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(s.chat.platform, Platform::Slack);
    assert_eq!(s.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(s.model.high, 0.7);
    assert_eq!(s.schedules.grace, chrono::Duration::hours(6));
    let token = s.chat.slack.bot_token.as_ref().unwrap();
    assert_eq!(token.expose_secret(), "xoxb-very-secret");
    let shown = format!("{s:?}");
    assert!(!shown.contains("xoxb-very-secret"), "{shown}");
    assert!(!shown.contains("8f742231b10e"), "{shown}");
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let e = load_env("", &[("NUDGED__MODEL__WINDOW", "eight")]).unwrap_err();
    assert_eq!(e.key, "model.window", "{e}");
    assert!(e.problem.contains("NUDGED__MODEL__WINDOW"), "{e}");
}

#[test]
fn a_bad_schedule_is_reported_against_its_own_file() {
    let (dir, file) = write_config("");
    fs::write(
        dir.path().join("schedules/weekly.toml"),
        SCHEDULE.replace("0 0 16 * * THU", "0 61 * * * *"),
    )
    .unwrap();
    let e = Settings::load_with_env(&file, []).unwrap_err();
    assert_eq!(e.file, dir.path().join("schedules/weekly.toml"));
    assert_eq!(e.key, "cron");
    let line = format!(
        "{}: cron: ",
        dir.path().join("schedules/weekly.toml").display()
    );
    assert!(e.to_string().starts_with(&line), "{e}");
}

#[test]
fn a_schedule_asking_an_unknown_question_is_rejected() {
    let (dir, file) = write_config("");
    fs::write(
        dir.path().join("schedules/weekly.toml"),
        SCHEDULE.replace("\"capacity\"", "\"mood\""),
    )
    .unwrap();
    let e = Settings::load_with_env(&file, []).unwrap_err();
    assert_eq!(e.key, "questions[1]");
    assert!(e.problem.contains("mood"), "{e}");
}

#[test]
fn questions_can_be_replaced_and_are_validated() {
    let custom = r#"
[[questions]]
id = "decisions"
text = "Calls you made"
options = [{ key = "few", score = 0.0 }, { key = "many", label = "Many", score = 1.0 }]
[[questions]]
id = "continuity"
text = "Same product?"
options = [{ key = "rotated", score = 0.0 }, { key = "same", score = 1.0 }]
[[questions]]
id = "capacity"
text = "Room to learn?"
options = [{ key = "none", score = 0.0 }, { key = "yes", score = 1.0 }]
"#;
    let model = "[model]\nweights = { decisions = 1.0 }\nmin_answered = 1\n";
    let (dir, file) = write_config(&format!("{model}{custom}"));
    fs::write(
        dir.path().join("schedules/weekly.toml"),
        SCHEDULE.replace("[\"decisions\", \"capacity\"]", "[\"decisions\"]"),
    )
    .unwrap();
    let s = Settings::load_with_env(&file, []).unwrap();
    assert_eq!(s.catalogue.score("decisions", "many"), Some(1.0));
    assert_eq!(
        s.catalogue.get("decisions").unwrap().options[0].label,
        "few"
    );

    let e = error(&format!(
        "{model}{}",
        custom.replace(
            "score = 1.0 }]\n[[questions]]\nid = \"continuity\"",
            "score = 1.5 }]\n[[questions]]\nid = \"continuity\""
        )
    ));
    assert_eq!(e.key, "questions[0].options[1].score", "{e}");
}

#[test]
fn a_storage_url_of_another_kind_is_rejected_without_leaking_a_password() {
    let e = error("[storage]\nurl = \"mysql://root:hunter2@db/nudged\"\n");
    assert_eq!(e.key, "storage.url");
    assert!(!e.problem.contains("hunter2"), "{e}");
}

#[test]
fn nudge_templates_default_and_can_be_reworded() {
    let s = load("").unwrap();
    assert_eq!(s.messages.nudge_title, DEFAULT_NUDGE_TITLE);
    let s = load("[messages]\nnudge_title = \"Well done, {name}\"\n").unwrap();
    assert_eq!(s.messages.nudge_title, "Well done, {name}");
    assert_eq!(s.messages.nudge_body, DEFAULT_NUDGE_BODY);
}

#[test]
fn with_no_messages_section_the_nudge_has_the_shipped_wording() {
    assert_eq!(load("").unwrap().messages, MessageSettings::default());
}

#[test]
fn a_nudge_template_with_an_unknown_placeholder_or_nothing_in_it_is_rejected() {
    let e = error("[messages]\nnudge_body = \"Hi {nmae}\"\n").to_string();
    assert!(
        e.contains("messages.nudge_body: unknown placeholder {nmae}"),
        "{e}"
    );
    let e = error("[messages]\nnudge_title = \"  \"\n").to_string();
    assert!(e.contains("messages.nudge_title: must not be empty"), "{e}");
    let e = error("[messages]\nnudge_title = \"Hi {name\"\n").to_string();
    assert!(e.contains("without a closing"), "{e}");
}

#[test]
fn the_training_is_unnamed_and_unlinked_by_default_and_can_be_set_from_file_or_env() {
    let s = load("").unwrap();
    assert_eq!(s.messages.training_name, None);
    assert_eq!(s.messages.training_url, None);
    assert_eq!(s.messages.nudge_next_step, DEFAULT_NUDGE_NEXT_STEP);
    let s = load_env(
        "[messages]\ntraining_name = \" The CSPO course of our academy \"\n",
        &[(
            "NUDGED__MESSAGES__TRAINING_URL",
            "https://learning.example.com/cspo",
        )],
    )
    .unwrap();
    assert_eq!(
        s.messages.training_name.as_deref(),
        Some("The CSPO course of our academy")
    );
    assert_eq!(
        s.messages.training_url.as_deref(),
        Some("https://learning.example.com/cspo")
    );
    // Blank is the same as not set.
    let s = load("[messages]\ntraining_name = \" \"\ntraining_url = \"\"\n").unwrap();
    assert_eq!(s.messages.training_name, None);
    assert_eq!(s.messages.training_url, None);
}

#[test]
fn a_training_url_that_is_not_an_http_link_is_rejected_naming_the_key() {
    for url in [
        "javascript:alert(1)",
        "ftp://example.com/cspo",
        "learning.example.com/cspo",
        "https://",
        "https://exa mple.com",
    ] {
        let e = error(&format!("[messages]\ntraining_url = \"{url}\"\n"));
        assert_eq!(e.key, "messages.training_url", "{url}: {e}");
        assert!(e.problem.contains("http"), "{url}: {e}");
    }
    let long = format!("https://example.com/{}", "a".repeat(3000));
    let e = error(&format!("[messages]\ntraining_url = \"{long}\"\n"));
    assert_eq!(e.key, "messages.training_url");
    let e = error(&format!(
        "[messages]\ntraining_name = \"{}\"\n",
        "a".repeat(201)
    ));
    assert_eq!(e.key, "messages.training_name");
}

#[test]
fn each_nudge_text_takes_its_own_placeholders_only() {
    let s = load(
        "[messages]\nnudge_next_step = \"{name}: try {training}\"\n\
         nudge_timing = \"You have {room}\"\nnudge_timing_released = \"After {weeks} weeks\"\n",
    )
    .unwrap();
    assert_eq!(s.messages.nudge_next_step, "{name}: try {training}");
    for (key, text) in [
        ("nudge_body", "try {training}"),
        ("nudge_timing", "after {weeks} weeks"),
        ("nudge_timing_released", "you have {room}"),
        ("nudge_timing_unknown", "{room}"),
    ] {
        let e = error(&format!("[messages]\n{key} = \"{text}\"\n"));
        assert_eq!(e.key, format!("messages.{key}"), "{e}");
        assert!(e.problem.contains("unknown placeholder"), "{e}");
    }
    let e = error("[messages]\nnudge_next_step = \"{trainig}\"\n");
    assert!(
        e.problem
            .contains("only {name} and {training} are replaced"),
        "{e}"
    );
}

#[test]
fn storage_pool_keys_default_to_the_engines_own_and_can_be_set() {
    let s = load("").unwrap();
    assert_eq!(s.storage.options.max_connections, None);
    assert_eq!(
        s.storage.options.connect_timeout,
        Some(crate::store::DEFAULT_CONNECT_TIMEOUT)
    );

    let s = load_env(
        "[storage]\nmax_connections = 20\nconnect_timeout_secs = 5\n",
        &[("NUDGED__STORAGE__MAX_CONNECTIONS", "12")],
    )
    .unwrap();
    assert_eq!(s.storage.options.max_connections, Some(12));
    assert_eq!(
        s.storage.options.connect_timeout,
        Some(std::time::Duration::from_secs(5))
    );
}

#[test]
fn storage_pool_keys_must_be_positive_numbers() {
    let e = error("[storage]\nmax_connections = 0\n");
    assert_eq!(e.key, "storage.max_connections", "{e}");
    assert!(e.problem.contains("at least 1"), "{e}");

    let e = error("[storage]\nconnect_timeout_secs = 0\n");
    assert_eq!(e.key, "storage.connect_timeout_secs", "{e}");

    // Before it was bounded, a deadline this far away panicked on opening.
    let e = load_env(
        "",
        &[(
            "NUDGED__STORAGE__CONNECT_TIMEOUT_SECS",
            "18446744073709551615",
        )],
    )
    .unwrap_err();
    assert_eq!(e.key, "storage.connect_timeout_secs", "{e}");
    assert!(e.problem.contains("from 1 to 3600"), "{e}");

    let e = error("[storage]\nconnect_timeout_secs = \"soon\"\n");
    assert_eq!(e.key, "storage.connect_timeout_secs", "{e}");

    let e = error("[storage]\nmax_conections = 4\n");
    assert_eq!(e.key, "storage.max_conections", "{e}");
    assert!(e.problem.starts_with("unknown key"), "{e}");
}

#[test]
fn a_postgres_url_from_the_environment_is_kept_and_never_shown() {
    let url = "postgres://nudged:hunter2@db.internal:5432/nudged";
    let s = load_env("", &[("NUDGED__STORAGE__URL", url)]).unwrap();
    assert_eq!(s.storage.url, url);
    let shown = format!("{s:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("db.internal:5432/nudged"), "{shown}");
}

#[test]
fn delivery_defaults_follow_slacks_documented_limits() {
    let s = load("").unwrap();
    assert_eq!(s.delivery, DeliverySettings::default());
    assert_eq!(
        s.delivery.per_channel_interval,
        std::time::Duration::from_secs(1)
    );
    assert_eq!(
        s.delivery.global_interval,
        std::time::Duration::from_millis(200)
    );
    assert_eq!(s.delivery.concurrency, 4);
    assert_eq!(s.delivery.lease, std::time::Duration::from_secs(60));
}

#[test]
fn delivery_rates_and_concurrency_can_be_set_from_file_and_environment() {
    let s = load_env(
        "[delivery]\nper_channel_per_sec = 0.5\nconcurrency = 8\nlease_secs = 30\n",
        &[("NUDGED__DELIVERY__GLOBAL_PER_SEC", "100")],
    )
    .unwrap();
    assert_eq!(
        s.delivery.per_channel_interval,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        s.delivery.global_interval,
        std::time::Duration::from_millis(10)
    );
    assert_eq!(s.delivery.concurrency, 8);
    assert_eq!(s.delivery.lease, std::time::Duration::from_secs(30));
}

#[test]
fn delivery_values_out_of_range_are_rejected_with_their_key() {
    for (body, key) in [
        ("per_channel_per_sec = 0", "delivery.per_channel_per_sec"),
        ("per_channel_per_sec = -1", "delivery.per_channel_per_sec"),
        ("global_per_sec = 1e9", "delivery.global_per_sec"),
        ("global_per_sec = nan", "delivery.global_per_sec"),
        // One message in 10^300 s: an interval no duration can hold.
        (
            "per_channel_per_sec = 1e-300",
            "delivery.per_channel_per_sec",
        ),
        ("global_per_sec = 0.0009", "delivery.global_per_sec"),
        ("concurrency = 0", "delivery.concurrency"),
        ("concurrency = 1000", "delivery.concurrency"),
        ("lease_secs = 1", "delivery.lease_secs"),
    ] {
        let e = error(&format!("[delivery]\n{body}\n"));
        assert_eq!(e.key, key, "{body}: {e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    let e = error("[delivery]\nglobal_rate = 5\n");
    assert_eq!(e.key, "delivery.global_rate", "{e}");
    assert!(e.problem.starts_with("unknown key"), "{e}");
    let e = load_env("", &[("NUDGED__DELIVERY__CONCURRENCY", "many")]).unwrap_err();
    assert_eq!(e.key, "delivery.concurrency", "{e}");
    assert!(e.problem.contains("NUDGED__DELIVERY__CONCURRENCY"), "{e}");
}

#[test]
fn the_readyz_outbox_lag_defaults_and_can_be_set() {
    let s = load("").unwrap();
    assert_eq!(
        s.server.readyz_max_outbox_lag,
        std::time::Duration::from_secs(600)
    );
    let s = load_env("", &[("NUDGED__SERVER__READYZ_MAX_OUTBOX_LAG_SECS", "120")]).unwrap();
    assert_eq!(
        s.server.readyz_max_outbox_lag,
        std::time::Duration::from_secs(120)
    );
    for body in [
        "readyz_max_outbox_lag_secs = 0",
        "readyz_max_outbox_lag_secs = -5",
    ] {
        let e = error(&format!("[server]\n{body}\n"));
        assert_eq!(e.key, "server.readyz_max_outbox_lag_secs", "{body}: {e}");
    }
}

#[test]
fn retention_days_default_to_ninety_and_can_be_set() {
    let s = load("").unwrap();
    assert_eq!(s.storage.retention, chrono::Duration::days(90));
    let s = load_env("", &[("NUDGED__STORAGE__RETENTION_DAYS", "7")]).unwrap();
    assert_eq!(s.storage.retention, chrono::Duration::days(7));
    let s = load("[storage]\nretention_days = 36500\n").unwrap();
    assert_eq!(s.storage.retention, chrono::Duration::days(36_500));
}

#[test]
fn retention_days_out_of_range_are_rejected_with_their_key() {
    // 4294967295 days would put the cut-off before the clock's first day.
    for value in ["0", "36501", "4294967295", "-1", "\"forever\""] {
        let e = error(&format!("[storage]\nretention_days = {value}\n"));
        assert_eq!(e.key, "storage.retention_days", "{value}: {e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

#[test]
fn the_server_limits_default_and_can_be_set() {
    let s = load("").unwrap();
    let limits = s.server.limits;
    assert_eq!(
        limits.header_read_timeout,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(60));
    assert_eq!(limits.max_connections, 1024);

    let s = load_env(
        "[server]\nheader_read_timeout_secs = 2\n",
        &[
            ("NUDGED__SERVER__IDLE_TIMEOUT_SECS", "5"),
            ("NUDGED__SERVER__MAX_CONNECTIONS", "16"),
        ],
    )
    .unwrap();
    let limits = s.server.limits;
    assert_eq!(
        limits.header_read_timeout,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(5));
    assert_eq!(limits.max_connections, 16);
}

#[test]
fn server_limits_out_of_range_are_rejected_by_key() {
    for (body, key) in [
        (
            "header_read_timeout_secs = 0",
            "server.header_read_timeout_secs",
        ),
        (
            "header_read_timeout_secs = 601",
            "server.header_read_timeout_secs",
        ),
        ("idle_timeout_secs = 0", "server.idle_timeout_secs"),
        ("idle_timeout_secs = 3601", "server.idle_timeout_secs"),
        ("max_connections = 0", "server.max_connections"),
        ("max_connections = 100000", "server.max_connections"),
    ] {
        let e = error(&format!("[server]\n{body}\n"));
        assert_eq!(e.key, key, "{body}: {e}");
    }
    let e = error("[server]\nmax_connections = -1\n");
    assert_eq!(e.key, "server.max_connections", "{e}");
}

#[test]
fn the_slack_api_must_be_https_unless_it_is_on_this_machine() {
    for url in [
        "https://slack.com/api",
        "https://slack.example.com:8443/api",
        "http://127.0.0.1:4000/api",
        "http://127.8.9.10/api",
        "http://127.1/api",
        "http://[::1]:4000/api",
        "http://localhost:4000/api",
        "http://LOCALHOST/api",
    ] {
        let s = load_env("", &[("NUDGED__CHAT__SLACK__API_BASE_URL", url)])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(s.chat.slack.api_base_url, url);
    }
    for url in [
        "http://slack.com/api",
        "http://10.0.0.1/api",
        "http://[::2]/api",
        "http://127.0.0.1.example.com/api",
        "http://localhost.example.com/api",
        "http://0.0.0.0:4000/api",
        "ftp://slack.com/api",
    ] {
        let e = load_env("", &[("NUDGED__CHAT__SLACK__API_BASE_URL", url)]).unwrap_err();
        assert_eq!(e.key, "chat.slack.api_base_url", "{url}: {e}");
    }
    let e = load_env(
        "",
        &[("NUDGED__CHAT__SLACK__API_BASE_URL", "http://slack.com/api")],
    )
    .unwrap_err();
    assert!(e.problem.contains("https://"), "{e}");
    assert!(e.problem.contains("loopback"), "{e}");
}

#[test]
fn a_plain_http_webhook_is_refused_unless_on_this_machine_and_never_echoed() {
    let e = load_env(
        WEBHOOK,
        &[(
            "NUDGED__CHAT__WEBHOOK__URL",
            "http://chat.example.com/hooks/s3cr3t-key",
        )],
    )
    .unwrap_err();
    assert_eq!(e.key, "chat.webhook.url", "{e}");
    assert!(e.problem.contains("https://"), "{e}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");

    for url in [
        "http://127.0.0.1:9000/hooks/s3cr3t-key",
        "http://[::1]:9000/hooks/s3cr3t-key",
        "http://localhost/hooks/s3cr3t-key",
    ] {
        let s = load_env(WEBHOOK, &[("NUDGED__CHAT__WEBHOOK__URL", url)])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(s.chat.webhook.url.unwrap().expose_secret(), url);
    }
}

#[test]
fn the_workspace_and_app_can_be_pinned() {
    let s = load("").unwrap();
    assert_eq!(s.chat.slack.team_id, None);
    assert_eq!(s.chat.slack.app_id, None);

    let s = load_env(
        "[chat.slack]\nteam_id = \"T0001\"\n",
        &[("NUDGED__CHAT__SLACK__APP_ID", " A0001 ")],
    )
    .unwrap();
    assert_eq!(s.chat.slack.team_id.as_deref(), Some("T0001"));
    assert_eq!(s.chat.slack.app_id.as_deref(), Some("A0001"));

    // Blank is unset, as for the secrets.
    let s = load("[chat.slack]\nteam_id = \"\"\n").unwrap();
    assert_eq!(s.chat.slack.team_id, None);

    let e = error("[chat.slack]\nteam_id = \"my team\"\n");
    assert_eq!(e.key, "chat.slack.team_id", "{e}");
    let e = load_env("", &[("NUDGED__CHAT__SLACK__APP_ID", "a0001")]).unwrap_err();
    assert_eq!(e.key, "chat.slack.app_id", "{e}");
}

#[test]
fn a_variable_that_names_no_key_is_named() {
    for name in [
        "NUDGED__",
        "NUDGED____BIND",
        "NUDGED__SERVER__",
        "NUDGED__SERVER____BIND",
    ] {
        let e = load_env("", &[(name, "true")]).unwrap_err();
        assert_eq!(e.key, name, "{e}");
        assert!(e.problem.contains("names no key"), "{e}");
    }
}

#[test]
fn an_unknown_key_from_the_environment_names_the_variable() {
    let e = load_env("", &[("NUDGED__SERVER__PORT", "3000")]).unwrap_err();
    assert_eq!(e.key, "server.port", "{e}");
    assert!(e.problem.contains("(set by NUDGED__SERVER__PORT)"), "{e}");
    let e = load_env("", &[("NUDGED___X", "1")]).unwrap_err();
    assert!(e.problem.contains("(set by NUDGED___X)"), "{e}");
}

#[test]
fn a_capacity_hold_longer_than_any_window_is_rejected_not_a_panic() {
    for weeks in ["521", "3000000000", "4294967295"] {
        let e = error(&format!("[model]\ncapacity_hold_weeks = {weeks}\n"));
        assert_eq!(e.key, "model.capacity_hold_weeks", "{e}");
    }
    // The longest hold accepted, and none at all, still assess.
    for weeks in [0, 520] {
        let s = load(&format!("[model]\ncapacity_hold_weeks = {weeks}\n")).unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
        let history = crate::model::History {
            answers: &[],
            nudges: &[crate::model::SentNudge {
                sent_on: today,
                answer: None,
            }],
            nudges_off: false,
        };
        let a = crate::model::assess(&history, &s.catalogue, &s.model, today);
        assert!(!a.reasons.is_empty());
    }
}
