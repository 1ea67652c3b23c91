//! A simulated population, seeded and deterministic: how often the model
//! nudges people whose role is not sustained ownership, and how soon it
//! finds the people whose role crosses into it. The README's figures for
//! `model.min_continuity_answers` come from [`simulate`].
//!
//! 3,000 people answer for 104 weeks, a fifth of the weeks unanswered:
//! - coordinators: light weeks anchored to one product, with an
//!   occasional hectic week;
//! - owners: like coordinators until a random week, strong and anchored
//!   from then on;
//! - rotators: strong weeks, but on another product most weeks.
//!
//! Each history is replayed ([`replay`]) so cooldown and hysteresis apply as
//! they would live. A nudge to a coordinator, a rotator, or an owner before
//! their crossing is false.

use chrono::Duration;

use super::{Params, replay};
use crate::domain::{Answer, Catalogue, IsoWeek, OptionKey, PersonId, default_catalogue};

/// People per group in the measured population (3,000 people in all).
const PER_GROUP: usize = 1_000;
/// People per group in the quick run every `cargo test` makes.
const QUICK_PER_GROUP: usize = 200;
/// Weeks simulated: two years.
const WEEKS: i64 = 104;
/// Share of weeks nobody answers.
const UNANSWERED: f64 = 0.2;
/// Share of a coordinator's weeks that are hectic (index-level like an owner's).
const HECTIC: f64 = 0.12;
/// The level around which a light and a strong week's answers scatter.
const LIGHT: f64 = 0.3;
const STRONG: f64 = 0.75;
/// Chance of answering `same` product: anchored people and rotators.
const ANCHORED_SAME: f64 = 0.9;
const ROTATOR_SAME: f64 = 0.3;
/// Chance of answering capacity `none`.
const NO_ROOM: f64 = 0.1;
/// Owners cross in a week in this range, so most can be found by the end.
const CROSSING: std::ops::Range<i64> = 8..88;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal around 0 with a standard deviation of 0.2.
    fn noise(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() - 1.5) * 0.4
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Group {
    Coordinator,
    /// Strong and anchored from this week (0-based) on.
    Owner(i64),
    Rotator,
}

/// What the population shows under one set of params.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Figures {
    /// False nudges per 100 person-years, per group; for owners, over the
    /// weeks before their crossing.
    pub coordinators: f64,
    pub owners_before: f64,
    pub rotators: f64,
    /// Owners nudged after their crossing, of those who crossed.
    pub owners_found: usize,
    /// Median weeks from crossing to the nudge, over the owners found.
    pub median_delay: i64,
}

fn first_week() -> IsoWeek {
    "2024-W47".parse().unwrap()
}

fn history(group: Group, person: usize, catalogue: &Catalogue, rng: &mut Rng) -> Vec<Answer> {
    let person = PersonId::parse(&format!("U{person:08}")).unwrap();
    let mut out = Vec::new();
    for k in 0..WEEKS {
        if rng.unit() < UNANSWERED {
            continue;
        }
        let (level, same) = match group {
            Group::Coordinator => (
                if rng.unit() < HECTIC { STRONG } else { LIGHT },
                ANCHORED_SAME,
            ),
            Group::Owner(from) if k >= from => (STRONG, ANCHORED_SAME),
            Group::Owner(_) => (
                if rng.unit() < HECTIC { STRONG } else { LIGHT },
                ANCHORED_SAME,
            ),
            Group::Rotator => (STRONG, ROTATOR_SAME),
        };
        for q in catalogue.questions() {
            let key: &OptionKey = match q.id.as_str() {
                super::CONTINUITY => {
                    let u = rng.unit();
                    let key = if u < same {
                        "same"
                    } else if u < same + 0.1 {
                        "partly"
                    } else {
                        "rotated"
                    };
                    &q.option(key).unwrap().key
                }
                super::CAPACITY => {
                    let key = if rng.unit() < NO_ROOM { "none" } else { "yes" };
                    &q.option(key).unwrap().key
                }
                _ => {
                    let x = level + rng.noise();
                    &q.options
                        .iter()
                        .min_by(|a, b| (a.score - x).abs().total_cmp(&(b.score - x).abs()))
                        .unwrap()
                        .key
                }
            };
            out.push(Answer {
                person: person.clone(),
                week: first_week().plus(k),
                question: q.id.clone(),
                option: key.clone(),
            });
        }
    }
    out
}

/// Replays a population of `per_group` people per group under `params`.
pub(super) fn simulate(params: &Params, per_group: usize) -> Figures {
    let catalogue = default_catalogue();
    let mut rng = Rng(0x5EED_0F0B_5E55_u64);
    let until = first_week().plus(WEEKS - 1).monday() + Duration::days(6);
    let years = WEEKS as f64 / 52.0;
    let per_100 = |nudges: usize, person_years: f64| 100.0 * nudges as f64 / person_years;
    let (mut coordinators, mut rotators, mut owners_before) = (0, 0, 0);
    let mut owner_years = 0.0;
    let mut delays = Vec::new();
    for person in 0..3 * per_group {
        let group = match person % 3 {
            0 => Group::Coordinator,
            1 => Group::Owner(
                CROSSING.start + (rng.next() % (CROSSING.end - CROSSING.start) as u64) as i64,
            ),
            _ => Group::Rotator,
        };
        let answers = history(group, person, &catalogue, &mut rng);
        let nudged: Vec<i64> = replay(&answers, &catalogue, params, until)
            .nudges
            .iter()
            .map(|n| n.week.weeks_since(first_week()))
            .collect();
        match group {
            Group::Coordinator => coordinators += nudged.len(),
            Group::Rotator => rotators += nudged.len(),
            Group::Owner(from) => {
                owner_years += from as f64 / 52.0;
                owners_before += nudged.iter().filter(|k| **k < from).count();
                if let Some(k) = nudged.iter().find(|k| **k >= from) {
                    delays.push(k - from);
                }
            }
        }
    }
    delays.sort_unstable();
    Figures {
        coordinators: per_100(coordinators, per_group as f64 * years),
        owners_before: per_100(owners_before, owner_years),
        rotators: per_100(rotators, per_group as f64 * years),
        owners_found: delays.len(),
        median_delay: delays.get(delays.len() / 2).copied().unwrap_or(-1),
    }
}

/// Without the minimum (1 answer is enough, the old rule) rotators are
/// nudged far more often; with it, owners are still found as soon.
#[test]
fn the_continuity_minimum_cuts_false_nudges_to_rotators_and_still_finds_owners() {
    let with = simulate(&Params::default(), QUICK_PER_GROUP);
    let without = simulate(
        &Params {
            min_continuity_answers: 1,
            ..Params::default()
        },
        QUICK_PER_GROUP,
    );
    println!("with the minimum: {with:?}\nwithout: {without:?}");
    assert!(
        with.rotators < without.rotators / 2.0,
        "{with:?} {without:?}"
    );
    assert!(
        with.coordinators <= without.coordinators,
        "{with:?} {without:?}"
    );
    assert!(with.owners_found * 100 >= QUICK_PER_GROUP * 95, "{with:?}");
    assert!((5..=6).contains(&with.median_delay), "{with:?}");
}

/// The figures of the README: `cargo test --release --lib simulation --
/// --ignored --nocapture` (about a minute in a debug build).
#[test]
#[ignore = "slow in a debug build; run it in release to measure"]
fn the_measured_population() {
    for need in [1, 8] {
        let params = Params {
            min_continuity_answers: need,
            ..Params::default()
        };
        println!(
            "min_continuity_answers = {need}: {:?}",
            simulate(&params, PER_GROUP)
        );
    }
}
