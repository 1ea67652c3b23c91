//! The `nudged` commands: argument parsing (clap) and one function per
//! command. Each command loads and validates the configuration first, so a
//! broken config is reported the same way everywhere.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::app::{self, App};
use crate::clock::{Clock, SystemClock};
use crate::config::{Platform, Settings};
use crate::console_input;
use crate::domain::{Answer, IsoWeek, PersonId};
use crate::history;
use crate::model::{self, Assessment, Replay, SentNudge};
use crate::render;
use crate::schedule::{self, ScheduleZone};
use crate::service;
use crate::store::{PersonRow, Store};

/// Weekly micro-check-ins in chat, per-person ownership trends, and one
/// well-timed readiness nudge.
#[derive(Debug, Parser)]
#[command(name = "nudged", version, about)]
pub struct Cli {
    /// The configuration file; relative paths in it are resolved against
    /// its directory.
    #[arg(
        long,
        global = true,
        default_value = "./config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP server and outbox delivery, until Ctrl-C or SIGTERM.
    Run {
        /// Ask everyone on the roster this week's check-in at start.
        #[arg(long)]
        ask_now: bool,
        /// Add a demo history of ten weeks for the console person (the
        /// roster's first), so `/pulse trend` shows a trend at once. Only on
        /// the embedded default (SQLite, console); `forget --demo` removes it.
        #[arg(long)]
        demo: bool,
    },
    /// Validate the configuration and schedules, and print each schedule's next runs.
    Check {
        /// Also ask Slack (or the webhook's host) whether the configured
        /// tokens work and have every scope nudged needs.
        #[arg(long)]
        online: bool,
    },
    /// Print the Slack app manifest (JSON) to create the app from.
    Manifest {
        /// The daemon's public HTTPS address: Slack sends events, clicks and
        /// commands to URL/slack/…; without it the app uses Socket Mode.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The app's and its bot user's name.
        #[arg(long, default_value = crate::manifest::DEFAULT_APP_NAME)]
        name: String,
    },
    /// Import answer history from CSV (person,week,question,option); all or nothing.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Print stored answers (CSV is the import format).
    Export {
        /// Only this person.
        #[arg(long)]
        person: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
    /// Remove everything stored about a person. Their id alone is kept, so
    /// the roster does not enrol them again until they `/pulse join`.
    Forget {
        #[arg(required_unless_present = "demo", conflicts_with = "demo")]
        person: Option<String>,
        /// Remove the demo history of `run --demo` instead, and the
        /// assessments and nudges made while it was stored; the console
        /// person's own answers stay.
        #[arg(long)]
        demo: bool,
    },
    /// Show a person's weeks, trend, readiness state and its reasons.
    Trend {
        person: String,
        /// Print the stable JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the trend chart the weekly post carries, as PNG, to FILE.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Assess as of this date (YYYY-MM-DD) instead of today.
        #[arg(long, value_name = "DATE")]
        today: Option<NaiveDate>,
    },
    /// Replay stored history under the current config: when would nudges have fired?
    Replay {
        /// Only this person.
        #[arg(long)]
        person: Option<String>,
        /// Print one JSON object per person instead of text.
        #[arg(long)]
        json: bool,
        /// Replay up to this date (YYYY-MM-DD) instead of today.
        #[arg(long, value_name = "DATE")]
        today: Option<NaiveDate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// Runs the parsed command with the settings loaded from `cli.config`.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Run { ask_now, demo } => {
            if demo && let Some(refusal) = service::demo::refusal(&settings) {
                bail!(refusal);
            }
            let app = App::build(settings, clock).await?;
            if demo {
                add_demo(&app).await?;
            }
            if ask_now {
                app.ask_roster_now().await?;
            }
            start_console_input(&app);
            // At shutdown a reply being recorded is finished; then the
            // reader stops with the other workers.
            app.run_until(app::shutdown_signal()).await
        }
        Command::Check { online } => {
            check(&settings, clock.as_ref())?;
            if online {
                crate::online_check::run(&settings).await?;
            }
            Ok(())
        }
        Command::Manifest { url, name } => {
            let manifest =
                crate::manifest::build(&name, url.as_deref()).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            // The manifest and the daemon must agree on the transport.
            let socket_mode = settings.chat.slack.socket_mode;
            if url.is_none() && !socket_mode {
                eprintln!(
                    "note: this manifest turns Socket Mode on; set chat.slack.socket_mode = true and chat.slack.app_token in {}",
                    settings.file.display()
                );
            } else if url.is_some() && socket_mode {
                eprintln!(
                    "note: this manifest uses request URLs; set chat.slack.socket_mode = false and chat.slack.signing_secret in {}",
                    settings.file.display()
                );
            }
            Ok(())
        }
        Command::Import { file } => import(&settings, clock.as_ref(), &file).await,
        Command::Export { person, format } => export(&settings, person.as_deref(), format).await,
        Command::Forget { person, demo } => match person {
            Some(person) if !demo => forget(&settings, &person).await,
            _ => forget_demo(&settings).await,
        },
        Command::Trend {
            person,
            json,
            png,
            today,
        } => {
            trend(
                &settings,
                clock.as_ref(),
                &person,
                json,
                png.as_deref(),
                today,
            )
            .await
        }
        Command::Replay {
            person,
            json,
            today,
        } => replay(&settings, clock.as_ref(), person.as_deref(), json, today).await,
    }
}

/// On the console platform with a terminal on standard input, reads each
/// typed line as the roster's first person's reply (see [`console_input`]), as a
/// supervised worker of the app.
fn start_console_input(app: &App) {
    let settings = app.settings();
    if settings.chat.platform != Platform::Console || !console_input::stdin_is_interactive() {
        return;
    }
    let Some(person) = settings.people.first().map(|p| p.id.clone()) else {
        tracing::info!("no [[people]] in the config: typed replies are off");
        return;
    };
    tracing::info!(%person, "type your replies here, as {person}; /pulse help lists the commands");
    let input = console_input::ConsoleInput {
        settings,
        store: app.store(),
        clock: app.clock(),
        assessor: app.assessor(),
        person,
    };
    // One reader for every run of the worker: a restart reads on from
    // where the failed run stopped, and no second thread competes for the
    // terminal.
    let reader = Arc::new(tokio::sync::Mutex::new(console_input::stdin_reader()));
    app.supervisor()
        .spawn("console", None, move |heartbeat, stop| {
            let (input, reader) = (input.clone(), reader.clone());
            async move {
                let mut reader = reader.lock().await;
                heartbeat.beat();
                console_input::read_lines(&input, &mut *reader, tokio::io::stdout(), stop)
                    .await
                    .context("console input failed")
            }
        });
}

/// Adds the demo history for the console person (`run --demo`).
async fn add_demo(app: &App) -> anyhow::Result<()> {
    let settings = app.settings();
    let Some(id) = settings.people.first().map(|p| &p.id) else {
        bail!(
            "--demo needs a person in [[people]] of {}: the demo history is theirs",
            settings.file.display()
        );
    };
    let store = app.store();
    let Some(person) = store.person(id).await? else {
        bail!("--demo: {id} was forgotten; their own `/pulse join` brings them back");
    };
    let outcome = service::demo::add(store.as_ref(), &person, app.clock().now()).await?;
    tracing::info!(
        %id,
        added = outcome.inserted + outcome.changed,
        "demo history added for {id}; `/pulse trend` shows it, `nudged forget --demo` removes it"
    );
    Ok(())
}

/// Removes the demo history (`forget --demo`): of whoever holds demo
/// answers, so an edited roster leaves none behind.
async fn forget_demo(settings: &Settings) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let mut removed = false;
    for person in store.people().await? {
        let report = service::demo::forget(store.as_ref(), &person.id).await?;
        if report.answers > 0 {
            removed = true;
            println!(
                "removed the demo history of {}: {} answers, {} assessments, {} nudges, {} outbox messages",
                person.id, report.answers, report.assessments, report.nudges, report.outbox
            );
        }
    }
    if !removed {
        println!("no demo history is stored");
    }
    Ok(())
}

fn parse_person(id: &str) -> anyhow::Result<PersonId> {
    PersonId::parse(id).map_err(|e| anyhow::anyhow!("person {id:?} {e}"))
}

fn check(settings: &Settings, clock: &dyn Clock) -> anyhow::Result<()> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok ({} chat, {} people, {} schedules)",
        settings.file.display(),
        settings.chat.platform.as_str(),
        settings.people.len(),
        settings.schedules.list.len()
    );
    let now = clock.now();
    for s in &settings.schedules.list {
        let _ = writeln!(
            out,
            "{} ({}, cron {:?})",
            s.name,
            s.kind.as_str(),
            s.cron_text
        );
        let zones = match &s.zone {
            ScheduleZone::Fixed(tz) => vec![*tz],
            ScheduleZone::Person { fallback } => {
                let mut zones: Vec<_> = settings
                    .people
                    .iter()
                    .map(|p| p.tz.unwrap_or(*fallback))
                    .collect();
                if zones.is_empty() {
                    zones.push(*fallback);
                }
                zones.sort_by_key(|tz| tz.name());
                zones.dedup();
                zones
            }
        };
        for tz in zones {
            let runs: Vec<String> = schedule::next_runs(s, tz, now, 3)
                .iter()
                .map(|t| t.format("%a %Y-%m-%d %H:%M %Z").to_string())
                .collect();
            let _ = writeln!(out, "  {:<20} {}", tz.name(), runs.join(" · "));
        }
    }
    print!("{out}");
    Ok(())
}

async fn import(settings: &Settings, clock: &dyn Clock, file: &PathBuf) -> anyhow::Result<()> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let answers = history::read_csv(std::io::BufReader::new(reader), &settings.catalogue)
        .with_context(|| format!("{}: nothing imported", file.display()))?;
    let store = app::open_store(settings).await?;
    let outcome = store.import_answers(&answers, clock.now()).await?;
    println!(
        "imported {}: {} new, {} changed, {} unchanged answers; {} new people",
        file.display(),
        outcome.inserted,
        outcome.changed,
        outcome.unchanged,
        outcome.new_people
    );
    Ok(())
}

async fn export(settings: &Settings, person: Option<&str>, format: Format) -> anyhow::Result<()> {
    let person = person.map(parse_person).transpose()?;
    let store = app::open_store(settings).await?;
    if let Some(id) = &person {
        known_person(store.as_ref(), id).await?;
    }
    let mut answers: Vec<Answer> = store
        .answers(person.as_ref())
        .await?
        .into_iter()
        .map(|row| row.answer)
        .collect();
    history::sort_for_export(&mut answers, &settings.catalogue);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Csv => history::write_csv(&mut out, &answers)?,
        Format::Json => history::write_json(&mut out, &answers)?,
    }
    out.flush()?;
    Ok(())
}

async fn known_person(store: &dyn Store, id: &PersonId) -> anyhow::Result<()> {
    if store.person(id).await?.is_none() {
        bail!("unknown person {id}: nothing is stored about them");
    }
    Ok(())
}

async fn forget(settings: &Settings, person: &str) -> anyhow::Result<()> {
    let id = parse_person(person)?;
    let store = app::open_store(settings).await?;
    known_person(store.as_ref(), &id).await?;
    let report = store.forget(&id).await?;
    println!(
        "forgot {id}: {} rows ({} person, {} answers, {} check-ins, {} schedule runs, {} assessments, {} nudges, {} outbox messages, {} click ids)",
        report.total(),
        report.people,
        report.answers,
        report.checkins,
        report.schedule_runs,
        report.assessments,
        report.nudges,
        report.outbox,
        report.seen_events
    );
    println!(
        "{id} stays opted out: only their id is kept, so the roster does not enrol them again; their own `/pulse join` brings them back"
    );
    if settings.people.iter().any(|p| p.id == id) {
        println!(
            "note: {id} is still on the roster in {}; remove them there (`nudged run` warns at every start until then)",
            settings.file.display()
        );
    }
    Ok(())
}

/// Today's date where the person lives, by the daemon's own rule
/// ([`service::readiness::today`]): their stored zone, which every start of the
/// daemon keeps from the roster, else UTC. Not the roster's zone read
/// here: after the roster was edited, and before the daemon restarted,
/// that would show another week than the daemon's.
fn today_for(person: Option<&PersonRow>, clock: &dyn Clock) -> NaiveDate {
    match person {
        Some(person) => service::readiness::today(person, clock.now()),
        None => clock.now().with_timezone(&Utc).date_naive(),
    }
}

/// What `trend --json` prints.
#[derive(Serialize)]
struct TrendJson<'a> {
    person: &'a PersonId,
    #[serde(flatten)]
    assessment: &'a Assessment<'a>,
}

async fn trend(
    settings: &Settings,
    clock: &dyn Clock,
    person: &str,
    json: bool,
    png: Option<&std::path::Path>,
    today: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let id = parse_person(person)?;
    let store = app::open_store(settings).await?;
    let Some(row) = store.person(&id).await? else {
        bail!("unknown person {id}: nothing is stored about them");
    };
    let today = today.unwrap_or_else(|| today_for(Some(&row), clock));
    let assessment = service::readiness::assess_on(settings, store.as_ref(), &row, today).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&TrendJson {
                person: &id,
                assessment: &assessment
            })?
        );
    } else {
        print!(
            "{}",
            render_trend(&id, row.name.as_deref(), &assessment, settings)
        );
    }
    if let Some(path) = png {
        let (answers, _) = service::history::person_history(store.as_ref(), &id).await?;
        let chart = model::chart(&answers, &settings.catalogue, &settings.model, today);
        let bytes = render::chart_png(&chart)?;
        std::fs::write(path, bytes)
            .with_context(|| format!("cannot write the chart to {}", path.display()))?;
        // On stderr, so `--json` output stays one JSON document.
        eprintln!("chart saved to {}", path.display());
    }
    Ok(())
}

fn render_trend(id: &PersonId, name: Option<&str>, a: &Assessment, settings: &Settings) -> String {
    let mut out = String::new();
    let _ = match name {
        Some(name) => writeln!(out, "{id} ({name})"),
        None => writeln!(out, "{id}"),
    };
    let _ = writeln!(out, "{:<9} {:>5}  answers", "week", "index");
    for w in &a.weeks {
        let index = match w.index {
            Some(i) if w.counted => format!("{i:.2}"),
            _ => "–".to_owned(),
        };
        let mut answers: Vec<_> = w.answers.iter().collect();
        answers.sort_by_key(|(q, _)| {
            settings
                .catalogue
                .position(q.as_str())
                .unwrap_or(usize::MAX)
        });
        let answers: Vec<String> = answers.iter().map(|(q, o)| format!("{q}={o}")).collect();
        let _ = writeln!(
            out,
            "{:<9} {:>5}  {}",
            w.week.to_string(),
            index,
            answers.join(" ")
        );
    }
    let num = |v: Option<f64>, signed: bool| match v {
        Some(v) if signed => format!("{v:+.3}"),
        Some(v) => format!("{v:.2}"),
        None => "–".to_owned(),
    };
    let _ = writeln!(
        out,
        "trend {}  ewma {}  slope {}/week",
        a.sparkline,
        num(a.ewma, false),
        num(a.slope, true)
    );
    let _ = writeln!(out, "state {}", a.state.as_str());
    for r in &a.reasons {
        let _ = writeln!(out, "  {} {}", if r.holds { "✓" } else { "✗" }, r.detail);
    }
    if let Some(nudge) = &a.nudge {
        let _ = writeln!(out, "nudge sent {}, {}", nudge.sent_on, answered(nudge));
    }
    out
}

/// How a nudge was answered, for the text output of `trend` and `replay`.
fn answered(nudge: &SentNudge) -> String {
    match nudge.answer {
        Some(a) => format!("answered {} on {}", a.response, a.on),
        None => "not answered".to_owned(),
    }
}

/// What `replay --json` prints, one per line: the replayed nudges, and
/// the nudges actually sent (`sent`) with the person's answers, to hold
/// the replay against.
#[derive(Serialize)]
struct ReplayJson<'a> {
    person: &'a PersonId,
    #[serde(flatten)]
    replay: &'a Replay,
    sent: &'a [SentNudge],
}

async fn replay(
    settings: &Settings,
    clock: &dyn Clock,
    person: Option<&str>,
    json: bool,
    today: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let only = person.map(parse_person).transpose()?;
    let store = app::open_store(settings).await?;
    if let Some(id) = &only {
        known_person(store.as_ref(), id).await?;
    }
    let people = match only {
        Some(id) => vec![id],
        None => store.people().await?.into_iter().map(|p| p.id).collect(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for id in people {
        let (answers, sent) = service::history::person_history(store.as_ref(), &id).await?;
        let row = store.person(&id).await?;
        let until = today.unwrap_or_else(|| today_for(row.as_ref(), clock));
        let result = model::replay(&answers, &settings.catalogue, &settings.model, until);
        if json {
            serde_json::to_writer(
                &mut out,
                &ReplayJson {
                    person: &id,
                    replay: &result,
                    sent: &sent,
                },
            )?;
            writeln!(out)?;
        } else {
            writeln!(out, "{id}")?;
            if result.nudges.is_empty() && result.held.is_empty() {
                writeln!(out, "  no nudge")?;
            }
            for hold in &result.held {
                writeln!(out, "  {} held: {}", hold.week, hold.reason.detail)?;
            }
            for nudge in &result.nudges {
                writeln!(out, "  {} nudge", nudge.week)?;
                for r in &nudge.reasons {
                    writeln!(out, "    {} {}", if r.holds { "✓" } else { "✗" }, r.detail)?;
                }
            }
            for nudge in &sent {
                writeln!(
                    out,
                    "  {} sent on {}, {}",
                    IsoWeek::of(nudge.sent_on),
                    nudge.sent_on,
                    answered(nudge)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
