//! Every state and transition of the readiness model, and its invariants
//! as properties over random histories.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;

use std::sync::LazyLock;

use super::*;
use crate::domain::{PersonId, default_catalogue};

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(default_catalogue);
    &CATALOGUE
}

/// Index answers for a strong week (index 1.0) and a weak one (0.0875).
const STRONG: [(&str, &str); 5] = [
    ("decisions", "6+"),
    ("stakeholders", "4+"),
    ("tradeoffs", "several"),
    ("focus", "deciding"),
    ("reversibility", "hardly"),
];
const WEAK: [(&str, &str); 5] = [
    ("decisions", "1-2"),
    ("stakeholders", "0-1"),
    ("tradeoffs", "none"),
    ("focus", "tracking"),
    ("reversibility", "easily"),
];

/// The last week of every built history.
fn last_week() -> IsoWeek {
    "2026-W46".parse().unwrap()
}

/// The Sunday of `last_week()`.
fn today() -> NaiveDate {
    last_week().monday() + Duration::days(6)
}

/// How one week of a built history looks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wk {
    Missing,
    Strong,
    Weak,
}

/// A history ending at `last_week()`: one entry per week, oldest first,
/// with the given continuity and capacity answers for every answered week
/// (the last week's capacity is `last_capacity`).
fn history(weeks: &[Wk], continuity: &str, last_capacity: &str) -> Vec<Answer> {
    let start = last_week().plus(1 - weeks.len() as i64);
    let mut out = Vec::new();
    for (k, wk) in weeks.iter().enumerate() {
        let week = start.plus(k as i64);
        let index = match wk {
            Wk::Missing => continue,
            Wk::Strong => STRONG,
            Wk::Weak => WEAK,
        };
        let capacity = if k + 1 == weeks.len() {
            last_capacity
        } else {
            "yes"
        };
        for (q, o) in index
            .iter()
            .copied()
            .chain([("continuity", continuity), ("capacity", capacity)])
        {
            out.push(answer(week, q, o));
        }
    }
    out
}

fn answer(week: IsoWeek, question: &str, option: &str) -> Answer {
    Answer {
        person: PersonId::parse("p").unwrap(),
        week,
        question: QuestionId::parse(question).unwrap(),
        option: OptionKey::parse(option).unwrap(),
    }
}

fn run(answers: &[Answer], nudges: &[NaiveDate], today: NaiveDate) -> Assessment<'static> {
    let nudges: Vec<SentNudge> = nudges.iter().copied().map(SentNudge::unanswered).collect();
    run_with(answers, &nudges, false, today)
}

fn run_with(
    answers: &[Answer],
    nudges: &[SentNudge],
    nudges_off: bool,
    today: NaiveDate,
) -> Assessment<'static> {
    assess(
        &History {
            answers,
            nudges,
            nudges_off,
        },
        catalogue(),
        &Params::default(),
        today,
    )
}

fn state(answers: &[Answer]) -> State {
    run(answers, &[], today()).state
}

use Wk::{Missing as M, Strong as S, Weak as W};

#[test]
fn the_weekly_index_is_the_renormalised_weighted_mean_of_what_was_answered() {
    let week = last_week();
    // decisions 3-5 (0.7, weight .25), focus mixed (0.5, .20), tradeoffs once (0.5, .20)
    let answers = [
        answer(week, "decisions", "3-5"),
        answer(week, "focus", "mixed"),
        answer(week, "tradeoffs", "once"),
    ];
    let a = run(&answers, &[], today());
    let w = a.weeks.last().unwrap();
    let expected = (0.25 * 0.7 + 0.2 * 0.5 + 0.2 * 0.5) / 0.65;
    assert!((w.index.unwrap() - expected).abs() < 1e-12);
    assert!(w.counted);
    // Two index answers are not enough for the week to count.
    let a = run(&answers[..2], &[], today());
    assert!(!a.weeks.last().unwrap().counted);
    assert_eq!(a.sparkline.chars().last(), Some(GAP));
    // Continuity and capacity are not part of the index.
    let a = run(
        &[
            answer(week, "continuity", "same"),
            answer(week, "capacity", "yes"),
        ],
        &[],
        today(),
    );
    assert_eq!(a.weeks.last().unwrap().index, None);
}

#[test]
fn states_table() {
    let cases: Vec<(&str, Vec<Answer>, State)> = vec![
        ("no answers", vec![], State::InsufficientData),
        (
            "three strong weeks",
            history(&[S, S, S], "same", "yes"),
            State::InsufficientData,
        ),
        (
            "eight weak weeks",
            history(&[W; 8], "same", "yes"),
            State::Building,
        ),
        (
            "four strong of eight",
            history(&[W, W, W, W, S, S, S, S], "same", "yes"),
            State::Building,
        ),
        (
            "eight strong weeks",
            history(&[S; 8], "same", "yes"),
            State::Sustained,
        ),
        (
            "five strong, recent weak",
            history(&[S, S, S, S, S, W, W, W], "same", "yes"),
            State::Building,
        ),
        (
            "strong but rotating",
            history(&[S; 16], "rotated", "yes"),
            State::Building,
        ),
        (
            "strong, no capacity now",
            history(&[S; 8], "same", "none"),
            State::WaitingForCapacity,
        ),
        (
            "strong, little capacity",
            history(&[S; 8], "same", "little"),
            State::Sustained,
        ),
        (
            "gaps but enough",
            history(&[S, S, S, M, S, S, M, S, S, S], "same", "yes"),
            State::Sustained,
        ),
        (
            "strong and anchored, too few continuity answers",
            history(&[S, M, S, S, M, S, S, S], "same", "yes"),
            State::Building,
        ),
    ];
    for (name, answers, expected) in cases {
        let a = run(&answers, &[], today());
        assert_eq!(a.state, expected, "{name}: {:#?}", a.reasons);
        assert!(
            a.reasons.len() >= 5,
            "{name}: every state carries its reasons"
        );
    }
}

#[test]
fn a_sinking_trend_is_not_sustained() {
    // Strong throughout, but each week lower: the slope rule fails.
    let week0 = last_week().plus(-7);
    let levels = [
        ("6+", "4+", "several", "deciding", "hardly"),
        ("6+", "4+", "several", "deciding", "hardly"),
        ("6+", "4+", "several", "deciding", "partly"),
        ("6+", "4+", "several", "mixed", "partly"),
        ("6+", "4+", "once", "mixed", "partly"),
        ("6+", "2-3", "once", "mixed", "partly"),
        ("3-5", "2-3", "once", "deciding", "partly"),
        ("3-5", "2-3", "once", "deciding", "partly"),
    ];
    let mut answers = Vec::new();
    for (k, (d, s, t, f, r)) in levels.iter().enumerate() {
        let w = week0.plus(k as i64);
        for (q, o) in [
            ("decisions", *d),
            ("stakeholders", *s),
            ("tradeoffs", *t),
            ("focus", *f),
            ("reversibility", *r),
            ("continuity", "same"),
            ("capacity", "yes"),
        ] {
            answers.push(answer(w, q, o));
        }
    }
    let a = run(&answers, &[], today());
    let slope_reason = a.reasons.iter().find(|r| r.rule == Rule::Slope).unwrap();
    assert!(!slope_reason.holds, "{slope_reason:?}");
    assert_eq!(a.state, State::Building);
}

#[test]
fn reasons_carry_the_numbers() {
    let a = run(
        &history(&[W, W, S, S, S, S, S, S], "same", "yes"),
        &[],
        today(),
    );
    let detail = |rule| {
        a.reasons
            .iter()
            .find(|r| r.rule == rule)
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(
        detail(Rule::StrongWeeks),
        "index ≥ 0.6 in 6 of the last 8 weeks (need 5)"
    );
    assert_eq!(
        detail(Rule::EnoughData),
        "8 of the last 8 weeks answered (need 4)"
    );
    assert!(
        detail(Rule::Continuity).starts_with("same product 8 of 8"),
        "{}",
        detail(Rule::Continuity)
    );
    assert!(detail(Rule::Capacity).contains("yes"));
}

#[test]
fn continuity_counts_only_with_enough_answers_and_says_how_many_more() {
    let continuity = |a: &Assessment| {
        a.reasons
            .iter()
            .find(|r| r.rule == Rule::Continuity)
            .unwrap()
            .clone()
    };
    // Six strong weeks, all on the same product: "6 of 6" is not enough.
    let a = run(&history(&[S; 6], "same", "yes"), &[], today());
    assert_eq!(a.state, State::Building);
    let reason = continuity(&a);
    assert!(!reason.holds);
    assert_eq!(
        reason.detail,
        "same product 6 of 6 answered weeks in the last 16; 2 more weeks answered needed (need 8)"
    );
    assert!(matches!(
        reason.facts,
        Facts::Continuity {
            answered: 6,
            need: 8,
            ..
        }
    ));
    // Every other rule holds: the minimum alone decides.
    assert!(
        a.reasons
            .iter()
            .all(|r| r.holds || r.rule == Rule::Continuity),
        "{:#?}",
        a.reasons
    );
    // Two more weeks answered, and it holds.
    let a = run(&history(&[S; 8], "same", "yes"), &[], today());
    assert_eq!(a.state, State::Sustained);
    assert!(continuity(&a).holds);
    // A lower minimum is a choice in config.
    let params = Params {
        min_continuity_answers: 6,
        ..Params::default()
    };
    let answers = history(&[S; 6], "same", "yes");
    let history = History {
        answers: &answers,
        nudges: &[],
        nudges_off: false,
    };
    let a = assess(&history, catalogue(), &params, today());
    assert_eq!(a.state, State::Sustained, "{:#?}", a.reasons);
}

#[test]
fn after_a_nudge_the_state_is_nudged_until_cooldown_and_a_dip_below_low() {
    let strong = history(&[S; 8], "same", "yes");
    let nudged_on = today() - Duration::days(7);
    let a = run(&strong, &[nudged_on], today());
    assert_eq!(a.state, State::Nudged);
    let cooldown = a.reasons.iter().find(|r| r.rule == Rule::Cooldown).unwrap();
    assert!(!cooldown.holds);

    // Cooldown passed but the trend never dipped: still nudged.
    let long_ago = today() - Duration::days(120);
    assert_eq!(
        run(&history(&[S; 20], "same", "yes"), &[long_ago], today()).state,
        State::Nudged
    );

    // Dipped below low after the nudge, cooldown passed, strong again: re-armed.
    let mut weeks = vec![S; 4];
    weeks.extend([W; 6]);
    weeks.extend([S; 8]);
    let answers = history(&weeks, "same", "yes");
    let nudged_on = last_week().plus(-17).monday() + Duration::days(6);
    assert!((today() - nudged_on).num_days() >= 90);
    let a = run(&answers, &[nudged_on], today());
    assert_eq!(a.state, State::Sustained, "{:#?}", a.reasons);

    // The same dip, but the cooldown has not passed.
    let recent = today() - Duration::days(60);
    assert_eq!(run(&answers, &[recent], today()).state, State::Nudged);
}

/// A nudge sent on `sent` and answered `response` on `on`.
fn answered(sent: NaiveDate, response: NudgeResponse, on: NaiveDate) -> SentNudge {
    SentNudge {
        sent_on: sent,
        answer: Some(NudgeAnswer { response, on }),
    }
}

#[test]
fn not_now_asks_again_after_the_configured_weeks_if_still_sustained() {
    let strong = history(&[S; 20], "same", "yes");
    let weeks = i64::from(Params::default().not_now_weeks);
    let answered_on = today() - Duration::weeks(weeks) + Duration::days(1);
    let sent = answered_on - Duration::days(2);
    let nudge = answered(sent, NudgeResponse::NotNow, answered_on);

    // A day short of the weeks: still nudged, and it says when.
    let a = run_with(&strong, &[nudge], false, today());
    assert_eq!(a.state, State::Nudged, "{:#?}", a.reasons);
    let not_now = a.reasons.iter().find(|r| r.rule == Rule::NotNow).unwrap();
    assert!(!not_now.holds);
    assert_eq!(
        not_now.facts,
        Facts::NotNow {
            answered_on,
            weeks: weeks - 1,
            not_now_weeks: 8
        }
    );

    // The next day: due again, well inside the 90-day cooldown and with no
    // dip, because the answer was about timing.
    let a = run_with(&strong, &[nudge], false, today() + Duration::days(1));
    assert_eq!(a.state, State::Sustained, "{:#?}", a.reasons);
    assert!(a.reasons.iter().any(|r| r.rule == Rule::NotNow && r.holds));
    assert!((today() - sent).num_days() < 90);
}

#[test]
fn not_now_re_arms_only_a_role_that_is_still_sustained() {
    // Strong until the nudge, weak since: after the weeks, building.
    let mut weeks = vec![S; 10];
    weeks.extend([W; 10]);
    let answers = history(&weeks, "same", "yes");
    let sent = last_week().plus(-10).monday();
    let nudge = answered(sent, NudgeResponse::NotNow, sent + Duration::days(1));
    assert_eq!(
        run_with(&answers, &[nudge], false, today()).state,
        State::Building
    );
}

#[test]
fn interested_keeps_the_usual_cooldown() {
    let strong = history(&[S; 20], "same", "yes");
    let sent = today() - Duration::weeks(10);
    let nudge = answered(sent, NudgeResponse::Interested, sent + Duration::days(1));
    let a = run_with(&strong, &[nudge], false, today());
    assert_eq!(a.state, State::Nudged);
    assert!(!a.reasons.iter().any(|r| r.rule == Rule::NotNow));
    assert_eq!(a.nudge, Some(nudge));
}

#[test]
fn not_for_me_sends_nothing_until_the_person_turns_nudges_back_on() {
    // Dipped and cooled down: the usual rules would re-arm.
    let mut weeks = vec![S; 4];
    weeks.extend([W; 6]);
    weeks.extend([S; 8]);
    let answers = history(&weeks, "same", "yes");
    let sent = last_week().plus(-17).monday() + Duration::days(6);
    let nudge = answered(sent, NudgeResponse::NotForMe, sent + Duration::days(1));

    let off = run_with(&answers, &[nudge], true, today());
    assert_eq!(off.state, State::Declined, "{:#?}", off.reasons);
    let reason = off
        .reasons
        .iter()
        .find(|r| r.rule == Rule::NudgesOff)
        .unwrap();
    assert_eq!(reason.facts, Facts::NudgesOff { off: true });
    assert!(!reason.holds);

    // Turned back on: due again at once, even inside the cooldown.
    let recent = today() - Duration::weeks(2);
    let nudge = answered(recent, NudgeResponse::NotForMe, recent);
    let strong = history(&[S; 20], "same", "yes");
    assert_eq!(
        run_with(&strong, &[nudge], true, today()).state,
        State::Nudged
    );
    let on = run_with(&strong, &[nudge], false, today());
    assert_eq!(on.state, State::Sustained, "{:#?}", on.reasons);
    assert!(
        on.reasons
            .iter()
            .any(|r| r.rule == Rule::NudgesOff && r.holds)
    );
}

#[test]
fn nudges_turned_off_before_any_nudge_hold_a_sustained_role_as_declined() {
    let strong = history(&[S; 10], "same", "yes");
    assert_eq!(run_with(&strong, &[], true, today()).state, State::Declined);
    let held = history(&[S; 10], "same", "none");
    assert_eq!(run_with(&held, &[], true, today()).state, State::Declined);
    let weak = history(&[W; 10], "same", "yes");
    assert_eq!(run_with(&weak, &[], true, today()).state, State::Building);
}

#[test]
fn an_answer_given_after_the_day_assessed_is_not_seen() {
    let strong = history(&[S; 20], "same", "yes");
    let sent = today() - Duration::weeks(12);
    let nudge = answered(sent, NudgeResponse::NotNow, today() + Duration::days(1));
    let a = run_with(&strong, &[nudge], false, today());
    assert_eq!(a.state, State::Nudged);
    assert_eq!(a.nudge, Some(SentNudge::unanswered(sent)));
}

#[test]
fn each_signal_counts_the_weeks_it_showed_in() {
    // decisions: 3-5 (present) in 5 weeks, 1-2 (not) in 3.
    let mut answers = Vec::new();
    for k in 0..8 {
        let week = last_week().plus(-k);
        answers.push(answer(week, "decisions", if k < 5 { "3-5" } else { "1-2" }));
        answers.push(answer(week, "stakeholders", "2-3"));
    }
    answers.sort_by_key(|a| a.week);
    let a = run(&answers, &[], today());
    let signal = |q: &str| a.signals.iter().find(|s| s.question.as_str() == q).unwrap();
    assert_eq!(
        (
            signal("decisions").present_weeks,
            signal("decisions").answered_weeks
        ),
        (5, 8)
    );
    assert_eq!(
        (
            signal("stakeholders").present_weeks,
            signal("stakeholders").answered_weeks
        ),
        (8, 8)
    );
    assert_eq!(
        (
            signal("focus").present_weeks,
            signal("focus").answered_weeks
        ),
        (0, 0)
    );
}

#[test]
fn every_reason_carries_its_numbers() {
    let a = run(&history(&[S; 10], "same", "little"), &[], today());
    for r in &a.reasons {
        let matches = matches!(
            (r.rule, &r.facts),
            (Rule::EnoughData, Facts::EnoughData { .. })
                | (Rule::StrongWeeks, Facts::StrongWeeks { .. })
                | (Rule::RecentAverage, Facts::RecentAverage { .. })
                | (Rule::Slope, Facts::Slope { .. })
                | (Rule::Continuity, Facts::Continuity { .. })
                | (Rule::Capacity, Facts::Capacity { .. })
        );
        assert!(matches, "{r:?}");
    }
    let capacity = a.reasons.iter().find(|r| r.rule == Rule::Capacity).unwrap();
    assert_eq!(
        capacity.facts,
        Facts::Capacity {
            week: last_week(),
            answer: OptionKey::parse("little").unwrap(),
            held_weeks: 0,
            hold_weeks: 6
        }
    );
    let json = serde_json::to_value(capacity).unwrap();
    assert_eq!(json["facts"]["answer"], "little");
    assert_eq!(json["facts"]["held_weeks"], 0);
}

#[test]
fn a_capacity_hold_lasts_at_most_the_configured_weeks() {
    // Sustained for many weeks; capacity "none" for the last `held` weeks.
    let with_none_for = |held: usize| {
        let mut answers = history(&[S; 16], "same", "none");
        let none_from = last_week().plus(1 - held as i64);
        for a in &mut answers {
            if a.question.as_str() == "capacity" && a.week >= none_from {
                a.option = OptionKey::parse("none").unwrap();
            }
        }
        answers
    };
    for held in 1..=6 {
        let a = run(&with_none_for(held), &[], today());
        assert_eq!(a.state, State::WaitingForCapacity, "held {held}");
    }
    let a = run(&with_none_for(7), &[], today());
    assert_eq!(a.state, State::Sustained);
    let reason = a.reasons.iter().find(|r| r.rule == Rule::Capacity).unwrap();
    assert!(
        reason.detail.contains("the timing is your call"),
        "{}",
        reason.detail
    );
}

#[test]
fn a_capacity_answer_releases_a_held_nudge() {
    let held = history(&[S; 8], "same", "none");
    assert_eq!(state(&held), State::WaitingForCapacity);
    let mut released = held.clone();
    released.push(answer(last_week(), "capacity", "little"));
    released.sort_by_key(|a| a.week);
    released.retain(|a| !(a.week == last_week() && a.option.as_str() == "none"));
    assert_eq!(state(&released), State::Sustained);
}

#[test]
fn replay_nudges_once_and_again_only_after_cooldown_and_a_dip() {
    let catalogue = default_catalogue();
    let params = Params::default();
    let mut weeks = vec![S; 10];
    weeks.extend([W; 8]);
    weeks.extend([S; 10]);
    let answers = history(&weeks, "same", "yes");
    let r = replay(&answers, &catalogue, &params, today());
    assert_eq!(r.nudges.len(), 2, "{r:#?}");
    let gap = r.nudges[1].week.weeks_since(r.nudges[0].week);
    assert!(
        gap * 7 >= i64::from(params.cooldown_days),
        "{gap} weeks apart"
    );
    assert!(r.held.is_empty());

    // Only strong weeks: one nudge, however long.
    let r = replay(
        &history(&[S; 40], "same", "yes"),
        &catalogue,
        &params,
        today(),
    );
    assert_eq!(r.nudges.len(), 1);
    assert_eq!(
        r.nudges[0].week,
        last_week().plus(-32),
        "after min_continuity_answers weeks answered"
    );
}

#[test]
fn replay_reports_the_weeks_held_for_capacity() {
    let mut answers = history(&[S; 11], "same", "none");
    // Capacity none in every week: held from the first sustained week,
    // the eighth (`min_continuity_answers`).
    for a in &mut answers {
        if a.question.as_str() == "capacity" {
            a.option = OptionKey::parse("none").unwrap();
        }
    }
    let r = replay(&answers, &default_catalogue(), &Params::default(), today());
    assert!(r.nudges.is_empty());
    assert_eq!(r.held.len(), 4, "{r:#?}");
    assert!(
        r.held
            .iter()
            .all(|h| h.reason.rule == Rule::Capacity && !h.reason.holds)
    );
}

#[test]
fn assessment_json_has_the_documented_shape() {
    let a = run(&history(&[S; 8], "same", "yes"), &[], today());
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["state"], "sustained");
    assert_eq!(json["weeks"].as_array().unwrap().len(), 8);
    assert_eq!(json["weeks"][7]["week"], "2026-W46");
    assert_eq!(json["weeks"][7]["answers"]["decisions"], "6+");
    assert_eq!(json["weeks"][7]["counted"], true);
    assert_eq!(json["reasons"][0]["rule"], "enough-data");
    assert!(json["ewma"].is_f64() && json["slope"].is_f64());
    assert_eq!(json["signals"].as_array().unwrap().len(), 7);
}

#[test]
fn params_validation_names_the_key() {
    let c = default_catalogue();
    assert_eq!(Params::default().validate(&c), Ok(()));
    let check = |p: Params| p.validate(&c).unwrap_err().0;
    assert_eq!(
        check(Params {
            low: 0.7,
            ..Params::default()
        }),
        "model.low"
    );
    assert_eq!(
        check(Params {
            alpha: 0.0,
            ..Params::default()
        }),
        "model.alpha"
    );
    assert_eq!(
        check(Params {
            window: 0,
            ..Params::default()
        }),
        "model.window"
    );
    assert_eq!(
        check(Params {
            min_strong_weeks: 9,
            ..Params::default()
        }),
        "model.min_strong_weeks"
    );
    assert_eq!(
        check(Params {
            min_continuity_answers: 0,
            ..Params::default()
        }),
        "model.min_continuity_answers"
    );
    assert_eq!(
        check(Params {
            min_continuity_answers: 17,
            ..Params::default()
        }),
        "model.min_continuity_answers"
    );
    let mut p = Params::default();
    p.weights.insert("mood".into(), 0.1);
    assert_eq!(check(p), "model.weights.mood");
    let mut p = Params::default();
    p.weights.values_mut().for_each(|w| *w = 0.0);
    assert_eq!(check(p), "model.weights");
}

// ---- properties -------------------------------------------------------------

/// One random week: `None` missing, else option indexes for the seven
/// questions (each may be unanswered).
fn arb_week() -> impl Strategy<Value = Option<[Option<usize>; 7]>> {
    prop::option::weighted(
        0.85,
        prop::array::uniform7(prop::option::weighted(0.9, 0usize..4)),
    )
}

fn arb_history(max_weeks: usize) -> impl Strategy<Value = Vec<Option<[Option<usize>; 7]>>> {
    prop::collection::vec(arb_week(), 1..max_weeks)
}

/// Builds answers from random weeks ending at `last_week()`.
fn build(weeks: &[Option<[Option<usize>; 7]>]) -> Vec<Answer> {
    let c = default_catalogue();
    let start = last_week().plus(1 - weeks.len() as i64);
    let mut out = Vec::new();
    for (k, week) in weeks.iter().enumerate() {
        let Some(week) = week else { continue };
        for (q, pick) in week.iter().enumerate() {
            let Some(pick) = pick else { continue };
            let question = &c.questions()[q];
            let option = &question.options[pick % question.options.len()];
            out.push(Answer {
                person: PersonId::parse("p").unwrap(),
                week: start.plus(k as i64),
                question: question.id.clone(),
                option: option.key.clone(),
            });
        }
    }
    out
}

fn rank(s: State) -> u8 {
    match s {
        State::InsufficientData => 0,
        State::Building => 1,
        State::Sustained | State::WaitingForCapacity | State::Nudged | State::Declined => 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_index_is_always_within_the_unit_interval(weeks in arb_history(30)) {
        let a = run(&build(&weeks), &[], today());
        for w in &a.weeks {
            if let Some(i) = w.index {
                prop_assert!((0.0..=1.0).contains(&i));
            }
        }
        if let Some(e) = a.ewma {
            prop_assert!((0.0..=1.0).contains(&e));
        }
    }

    #[test]
    fn a_missing_week_never_changes_another_weeks_index(weeks in arb_history(12), drop in 0usize..12) {
        let before = run(&build(&weeks), &[], today());
        let mut fewer = weeks.clone();
        if drop < fewer.len() {
            fewer[drop] = None;
        }
        let after = run(&build(&fewer), &[], today());
        let offset = before.weeks.len() as i64 - weeks.len() as i64;
        for (k, (b, a)) in before.weeks.iter().zip(&after.weeks).enumerate() {
            if k as i64 - offset != drop as i64 {
                prop_assert_eq!(b.index, a.index);
            }
        }
    }

    #[test]
    fn a_stronger_week_never_moves_the_state_backwards(weeks in arb_history(16), pick in 0usize..16) {
        let answers = build(&weeks);
        let before = state(&answers);
        let mut stronger = weeks.clone();
        let k = pick % stronger.len();
        // The same week answered at full strength, continuity and capacity kept.
        let kept = stronger[k].unwrap_or([None; 7]);
        let mut week = [Some(3), Some(2), Some(2), Some(2), Some(2), kept[5], kept[6]];
        if kept.iter().take(5).all(Option::is_none) && stronger[k].is_none() {
            week[5] = None;
            week[6] = None;
        }
        stronger[k] = Some(week);
        let after = state(&build(&stronger));
        prop_assert!(rank(after) >= rank(before), "{:?} -> {:?}", before, after);
    }

    #[test]
    fn one_strong_week_in_a_weak_history_is_never_sustained(len in 4usize..20, at in 0usize..20) {
        let mut weeks = vec![W; len];
        weeks[at % len] = S;
        prop_assert_ne!(state(&history(&weeks, "same", "yes")), State::Sustained);
    }

    #[test]
    fn a_role_that_rotates_most_weeks_is_never_sustained(weeks in arb_history(24), rotate in prop::collection::vec(any::<bool>(), 24)) {
        let mut answers = build(&weeks);
        // Every week answers continuity; most say "rotated".
        let start = last_week().plus(1 - weeks.len() as i64);
        answers.retain(|a| a.question.as_str() != "continuity");
        let rotated = rotate.iter().take(weeks.len()).filter(|r| **r).count();
        prop_assume!(rotated * 2 > weeks.len());
        for (k, r) in rotate.iter().take(weeks.len()).enumerate() {
            answers.push(answer(start.plus(k as i64), "continuity", if *r { "rotated" } else { "same" }));
        }
        answers.sort_by_key(|a| a.week);
        prop_assert_ne!(state(&answers), State::Sustained);
    }

    #[test]
    fn no_capacity_in_the_latest_week_always_holds_the_nudge(weeks in arb_history(16)) {
        let mut answers = build(&weeks);
        answers.retain(|a| !(a.week == last_week() && a.question.as_str() == "capacity"));
        answers.push(answer(last_week(), "capacity", "none"));
        answers.sort_by_key(|a| a.week);
        // Within the hold (no earlier "none"), never sustained.
        answers.retain(|a| !(a.question.as_str() == "capacity" && a.week < last_week() && a.option.as_str() == "none"));
        prop_assert_ne!(state(&answers), State::Sustained);
    }

    #[test]
    fn with_nudges_off_no_nudge_is_ever_due(weeks in arb_history(24), answer in 0usize..4, ago in 0i64..200) {
        let answers = build(&weeks);
        let sent = today() - Duration::days(ago);
        let nudges: Vec<SentNudge> = match answer {
            0 => vec![],
            1 => vec![SentNudge::unanswered(sent)],
            n => vec![SentNudge {
                sent_on: sent,
                answer: Some(NudgeAnswer { response: NudgeResponse::ALL[n - 1], on: sent }),
            }],
        };
        let a = run_with(&answers, &nudges, true, today());
        prop_assert_ne!(a.state, State::Sustained);
        prop_assert_ne!(a.state, State::WaitingForCapacity);
    }

    #[test]
    fn not_now_never_asks_again_before_its_weeks_are_up(weeks in arb_history(24), waited in 0i64..56) {
        let answers = build(&weeks);
        let on = today() - Duration::days(waited);
        let nudge = SentNudge { sent_on: on, answer: Some(NudgeAnswer { response: NudgeResponse::NotNow, on }) };
        let a = run_with(&answers, &[nudge], false, today());
        prop_assert_ne!(a.state, State::Sustained);
    }

    #[test]
    fn replay_never_nudges_twice_within_cooldown_or_without_a_dip(weeks in arb_history(60)) {
        let catalogue = default_catalogue();
        let params = Params::default();
        let answers = build(&weeks);
        let r = replay(&answers, &catalogue, &params, today());
        for pair in r.nudges.windows(2) {
            let days = pair[1].week.weeks_since(pair[0].week) * 7;
            prop_assert!(days >= i64::from(params.cooldown_days) - 6, "{} days apart", days);
            // The EWMA dipped below `low` at some week between the two.
            let mut week = pair[0].week.plus(1);
            let mut dipped = false;
            while week <= pair[1].week {
                let at = assess(
                    &History { answers: &answers, nudges: &[], nudges_off: false },
                    &catalogue,
                    &params,
                    week.monday() + Duration::days(6),
                );
                dipped |= at.ewma.is_some_and(|e| e < params.low);
                week = week.plus(1);
            }
            prop_assert!(dipped, "no dip between {} and {}", pair[0].week, pair[1].week);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reading_only_recent_weeks_moves_the_ewma_by_less_than_its_shown_precision(weeks in arb_history(80)) {
        let answers = build(&weeks);
        let params = Params::default();
        let recent = assess(&History { answers: &answers, nudges: &[], nudges_off: false }, catalogue(), &params, today());
        let full = Scored::new(&answers, catalogue(), &params).assess(&[], false, today());
        // Without a counted week in the horizon there is no current trend
        // (`None`), where the whole history would still carry a stale one.
        if let (Some(r), Some(f)) = (recent.ewma, full.ewma) {
            prop_assert!((r - f).abs() < 1e-4, "{} vs {}", r, f);
        }
        prop_assert!(recent.ewma.is_none() || full.ewma.is_some());
        prop_assert_eq!(recent.state, full.state);
    }
}
