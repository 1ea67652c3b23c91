use proptest::prelude::*;

use super::*;

#[test]
fn pulse_subcommands() {
    use PulseCommand::*;
    let table: &[(&str, PulseCommand)] = &[
        ("", Help),
        ("   ", Help),
        ("help", Help),
        ("HELP", Help),
        ("?", Help),
        ("/pulse", Help),
        ("now", Now),
        (" Now. ", Now),
        ("/pulse now", Now),
        ("trend", Trend),
        ("pause 2w", Pause { days: 14 }),
        ("pause 2 weeks", Pause { days: 14 }),
        ("PAUSE 2W", Pause { days: 14 }),
        ("pause for 3 days", Pause { days: 3 }),
        ("pause 10d", Pause { days: 10 }),
        ("pause a week", Pause { days: 7 }),
        ("pause 1 day", Pause { days: 1 }),
        ("pause 52w", Pause { days: 364 }),
        ("pause 365d", Pause { days: 365 }),
        ("resume", Resume),
        ("join", Join),
        ("leave", Leave),
        ("export", Export),
        ("forget", Forget { confirmed: false }),
        ("forget confirm", Forget { confirmed: true }),
        ("nudge on", Nudges { on: true }),
        ("Nudge OFF.", Nudges { on: false }),
        ("/pulse nudges on", Nudges { on: true }),
        ("Forget CONFIRM", Forget { confirmed: true }),
        (
            "decisions=3-5 capacity=none",
            Answer("decisions=3-5 capacity=none".into()),
        ),
        (" decisions = 3-5 ", Answer("decisions = 3-5".into())),
        ("decisions: 3-5", Answer("decisions: 3-5".into())),
        (
            "3-5, 4+, once, deciding, hardly, same, yes",
            Answer("3-5, 4+, once, deciding, hardly, same, yes".into()),
        ),
        ("/pulse 3-5, 4+", Answer("3-5, 4+".into())),
    ];
    for (text, command) in table {
        assert_eq!(parse_command(text).as_ref(), Ok(command), "{text:?}");
    }
}

#[test]
fn pulse_errors() {
    let table: &[(&str, CommandError, &str)] = &[
        (
            "dance",
            CommandError::Unknown {
                given: "dance".into(),
            },
            "\"dance\" is not a /pulse command; try /pulse help",
        ),
        (
            "pause",
            CommandError::BadPause {
                given: String::new(),
            },
            "/pulse pause needs a length: 1–52 weeks or 1–365 days, \
             like /pulse pause 2w or /pulse pause 10d",
        ),
        (
            "pause 0w",
            CommandError::BadPause { given: "0w".into() },
            "can't pause for \"0w\"; use 1–52 weeks or 1–365 days, \
             like /pulse pause 2w or /pulse pause 10d",
        ),
        (
            "pause 53w",
            CommandError::BadPause {
                given: "53w".into(),
            },
            "",
        ),
        (
            "pause 366d",
            CommandError::BadPause {
                given: "366d".into(),
            },
            "",
        ),
        (
            "pause 0d",
            CommandError::BadPause { given: "0d".into() },
            "",
        ),
        ("pause 2", CommandError::BadPause { given: "2".into() }, ""),
        (
            "pause 2 months",
            CommandError::BadPause {
                given: "2 months".into(),
            },
            "",
        ),
        (
            "pause -2w",
            CommandError::BadPause {
                given: "-2w".into(),
            },
            "",
        ),
        (
            "pause 99999999999999999999w",
            CommandError::BadPause {
                given: "99999999999999999999w".into(),
            },
            "",
        ),
        (
            "now please",
            CommandError::UnexpectedArgument {
                command: "now",
                given: "please".into(),
            },
            "/pulse now doesn't take \"please\"; try /pulse help",
        ),
        (
            "nudge",
            CommandError::BadNudge,
            "/pulse nudge takes on or off, like /pulse nudge on",
        ),
        ("nudge maybe", CommandError::BadNudge, ""),
        ("nudge on off", CommandError::BadNudge, ""),
        (
            "forget everything",
            CommandError::UnexpectedArgument {
                command: "forget",
                given: "everything".into(),
            },
            "/pulse forget doesn't take \"everything\"; try /pulse help",
        ),
        (
            "forget confirm now",
            CommandError::UnexpectedArgument {
                command: "forget",
                given: "confirm now".into(),
            },
            "",
        ),
    ];
    for (text, error, message) in table {
        assert_eq!(parse_command(text).as_ref(), Err(error), "{text:?}");
        if !message.is_empty() {
            assert_eq!(error.to_string(), *message);
        }
    }
    assert_eq!(
        parse_command(&"now ".repeat(2_000)),
        Err(CommandError::TooLong {
            max: MAX_TEXT_CHARS
        })
    );
}

#[test]
fn command_help_lists_every_subcommand() {
    for word in [
        "now", "trend", "pause", "resume", "join", "leave", "export", "forget", "nudge on", "=",
    ] {
        assert!(command_help().contains(word), "{word}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_command_never_panics(text in any::<String>()) {
        let _ = parse_command(&text);
    }

    #[test]
    fn parse_command_never_panics_on_near_misses(
        text in "(/pulse )?(pause|forget|now|help)? ?[a-z0-9 =:,;.!\\-–]{0,40}"
    ) {
        let _ = parse_command(&text);
    }
}
