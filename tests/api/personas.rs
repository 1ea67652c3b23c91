//! The persona histories in `tests/data/personas/`, through the real binary:
//! `nudged import` then `nudged trend --json`, each landing in the state
//! `expected.txt` names.

use crate::helpers::{TestEnv, repo};

/// (persona, expected state, the date to assess at).
fn expectations() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(repo().join("tests/data/personas/expected.txt"))
        .expect("tests/data/personas/expected.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "expected.txt: {l}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

#[test]
fn every_persona_lands_in_its_expected_state() {
    let cases = expectations();
    assert!(cases.len() >= 7, "at least seven personas");
    let env = TestEnv::new();
    for (persona, state, today) in &cases {
        let csv = repo().join(format!("tests/data/personas/{persona}.csv"));
        env.ok(&["import", csv.to_str().unwrap()]);
        let out = env.ok(&["trend", persona, "--json", "--today", today]);
        let trend: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(trend["person"], persona.as_str());
        assert_eq!(trend["state"], state.as_str(), "{persona}: {out}");
        let reasons = trend["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty(), "{persona} has no reasons");
        for r in reasons {
            assert!(
                r["rule"].is_string() && r["holds"].is_boolean() && r["detail"].is_string(),
                "{r}"
            );
        }
        for w in trend["weeks"].as_array().unwrap() {
            assert!(w["week"].is_string() && w["counted"].is_boolean(), "{w}");
            assert!(w["index"].is_null() || (0.0..=1.0).contains(&w["index"].as_f64().unwrap()));
        }
    }
}

#[test]
fn trend_text_shows_weeks_sparkline_state_and_reasons() {
    let (persona, state, today) = expectations().into_iter().next().unwrap();
    let env = TestEnv::new();
    let csv = repo().join(format!("tests/data/personas/{persona}.csv"));
    env.ok(&["import", csv.to_str().unwrap()]);
    let out = env.ok(&["trend", &persona, "--today", &today]);
    assert!(out.starts_with(&persona), "{out}");
    assert!(out.contains(&format!("state {state}")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("trend ")), "{out}");
    assert!(out.contains('✓') || out.contains('✗'), "{out}");
}

#[test]
fn replay_reports_when_a_steady_owner_would_have_been_nudged_and_once_only() {
    let env = TestEnv::new();
    let cases = expectations();
    let (persona, _, today) = cases
        .iter()
        .find(|(_, state, _)| state == "sustained")
        .expect("a sustained persona");
    let csv = repo().join(format!("tests/data/personas/{persona}.csv"));
    env.ok(&["import", csv.to_str().unwrap()]);
    let out = env.ok(&["replay", "--person", persona, "--json", "--today", today]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["person"], persona.as_str());
    let nudges = lines[0]["nudges"].as_array().unwrap();
    assert_eq!(nudges.len(), 1, "{out}");
    assert!(nudges[0]["week"].as_str().unwrap().contains("-W"), "{out}");
    assert!(!nudges[0]["reasons"].as_array().unwrap().is_empty());

    let text = env.ok(&["replay", "--today", today]);
    assert!(text.contains(&format!("{persona}\n")), "{text}");
    assert!(text.contains(" nudge"), "{text}");
}
