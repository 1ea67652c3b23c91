//! Assessing a whole company: 10,000 people × 104 weeks of full answers,
//! single-threaded. `cargo bench --bench assess`.

use std::hint::black_box;

use chrono::{Duration, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use nudged::domain::{Answer, IsoWeek, PersonId, default_catalogue};
use nudged::model::{History, Params, assess};

const PEOPLE: usize = 10_000;
const WEEKS: i64 = 104;

/// Deterministic pseudo-random numbers (xorshift64*), so every run assesses
/// the same population.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn population() -> (Vec<Vec<Answer>>, NaiveDate) {
    let catalogue = default_catalogue();
    let last: IsoWeek = "2026-W46".parse().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let people = (0..PEOPLE)
        .map(|p| {
            let person = PersonId::parse(&format!("U{p:08}")).unwrap();
            let mut answers = Vec::with_capacity(WEEKS as usize * 7);
            for k in 0..WEEKS {
                let week = last.plus(k - WEEKS + 1);
                for q in catalogue.questions() {
                    let o = (rng.next() % q.options.len() as u64) as usize;
                    answers.push(Answer {
                        person: person.clone(),
                        week,
                        question: q.id.clone(),
                        option: q.options[o].key.clone(),
                    });
                }
            }
            answers
        })
        .collect();
    (people, last.monday() + Duration::days(6))
}

fn bench(c: &mut Criterion) {
    let catalogue = default_catalogue();
    let params = Params::default();
    let (people, today) = population();
    let mut group = c.benchmark_group("assess");
    group.sample_size(10);
    group.bench_function("10000 people x 104 weeks", |b| {
        b.iter(|| {
            for answers in &people {
                black_box(assess(
                    &History {
                        answers,
                        nudges: &[],
                        nudges_off: false,
                    },
                    &catalogue,
                    &params,
                    today,
                ));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
