//! The append protocol as a pure state machine: the store's answer in, the
//! next step out.
//!
//! One record is placed by conditional PUTs (`If-None-Match: *`) carrying
//! one random token. The machine decides, from each answer, whether the
//! record is stored, whether to ask the same offset again, to read the
//! token back, to look for the tail past a taken offset, to pause, or to
//! give up; `wal/mod.rs` only carries the steps out. The rules:
//!
//! - 200: stored.
//! - 412 when no earlier PUT of this record at this offset may have landed:
//!   another writer took the offset; find the tail past it and go on there.
//! - 412 when one may have (the S3 client sent the PUT again after a lost
//!   answer or a damaged body, or a 409 answered a PUT while our earlier
//!   one may have been in flight): read the token back; ours means stored,
//!   another's means taken, none means the object went away (a truncate):
//!   ask the same offset again.
//! - 409 (a conflicting operation was in flight): nothing was decided; ask
//!   the same offset again after a pause.
//! - a failure (the S3 client has already retried what is worth retrying):
//!   give up, saying whether the record may be stored.
//!
//! Every rule is bounded, so an append always ends.

use std::time::Duration;

/// How often one append may meet each kind of trouble before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Offsets found taken by other writers. Each 412 means the log
    /// advanced, so only heavy contention from other machines uses these.
    pub taken: u32,
    /// 409s at one offset.
    pub conflicts: u32,
}

/// What the store answered to the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The PUT created the record.
    Created,
    /// 412: an object exists at the offset.
    Taken {
        /// The PUT was sent more than once, so the object may be our own
        /// earlier try.
        retried: bool,
    },
    /// 409: a conflicting operation was in flight; nothing was decided.
    Conflict,
    /// The request failed, retries included.
    Failed {
        /// Whether a PUT that failed so may still have stored the record:
        /// its body went out and no answer said no.
        may_have_landed: bool,
    },
    /// Whose token the object at the offset carries.
    Token(Found),
    /// The tail search found this tail.
    Tail(u64),
    /// The pause is over.
    Resumed,
}

/// What a HEAD of a taken offset found there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An object with this append's token: our own earlier try landed.
    Ours,
    /// An object another writer put there.
    Theirs,
    /// No object: whoever took the offset is gone (a truncate removed it).
    Nothing,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// PUT the record, framed for this offset, if absent.
    Put(u64),
    /// HEAD the offset and compare its token with ours.
    CheckToken(u64),
    /// Search for the tail from this offset, a record known to exist.
    FindTail(u64),
    /// Wait a random time up to this long, so that racing writers spread.
    Pause(Duration),
    /// The record is stored at this offset.
    Stored(u64),
    /// The append ends without storing the record.
    GiveUp(GiveUp),
}

/// Why an append gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// Other writers took every offset tried.
    Taken {
        /// How many offsets were found taken.
        attempts: u32,
        /// The last one.
        offset: u64,
    },
    /// The store kept answering 409 at this offset.
    Conflicted {
        /// How many PUTs were answered 409.
        attempts: u32,
        /// The offset.
        offset: u64,
    },
    /// The last request failed; the record may be stored at `offset` if
    /// `maybe_stored`.
    Failed {
        /// The offset being placed.
        offset: u64,
        /// Whether a PUT of the record at `offset` may have landed.
        maybe_stored: bool,
    },
    /// No offset follows the highest one.
    LogFull,
}

/// The pause after the `n`th 409 at one offset: short, growing.
fn conflict_pause(n: u32) -> Duration {
    Duration::from_millis(10 << n.min(6))
}

/// The pause before looking past the `n`th taken offset: a few
/// milliseconds, so that writers who lost together do not retry together.
fn taken_pause(n: u32) -> Duration {
    Duration::from_millis(u64::from(n.min(10)))
}

/// One append of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Append {
    limits: Limits,
    /// The offset being placed.
    offset: u64,
    /// What the last step asked, to know what an answer answers.
    last: Step,
    /// The step to take after a pause.
    after_pause: Step,
    /// An earlier PUT of this record at `offset` may have landed unseen.
    uncertain: bool,
    taken: u32,
    conflicts: u32,
}

impl Append {
    /// An append that first tries `offset`, one past the tail it found.
    pub(crate) fn at(offset: u64, limits: Limits) -> Append {
        Append {
            limits,
            offset,
            last: Step::Put(offset),
            after_pause: Step::Put(offset),
            uncertain: false,
            taken: 0,
            conflicts: 0,
        }
    }

    /// The first step.
    pub(crate) fn start(&self) -> Step {
        self.last
    }

    /// The step after `answer` to the last one.
    pub(crate) fn next(&mut self, answer: Answer) -> Step {
        let step = self.decide(answer);
        self.last = step;
        step
    }

    fn pause_then(&mut self, pause: Duration, then: Step) -> Step {
        self.after_pause = then;
        Step::Pause(pause)
    }

    /// The same offset once more, after a pause: a 409 decided nothing,
    /// and a vanished object left the offset free; both are bounded.
    fn same_offset_again(&mut self) -> Step {
        self.conflicts += 1;
        if self.conflicts >= self.limits.conflicts {
            return Step::GiveUp(GiveUp::Conflicted {
                attempts: self.conflicts,
                offset: self.offset,
            });
        }
        self.pause_then(conflict_pause(self.conflicts), Step::Put(self.offset))
    }

    fn decide(&mut self, answer: Answer) -> Step {
        let offset = self.offset;
        match (self.last, answer) {
            (Step::Pause(_), Answer::Resumed) => self.after_pause,
            (Step::Put(_), Answer::Created) | (Step::CheckToken(_), Answer::Token(Found::Ours)) => {
                Step::Stored(offset)
            }
            (Step::Put(_), Answer::Taken { retried }) if retried || self.uncertain => {
                self.uncertain = true;
                Step::CheckToken(offset)
            }
            (Step::Put(_), Answer::Taken { .. })
            | (Step::CheckToken(_), Answer::Token(Found::Theirs)) => {
                self.uncertain = false;
                self.taken += 1;
                if self.taken >= self.limits.taken {
                    return Step::GiveUp(GiveUp::Taken {
                        attempts: self.taken,
                        offset,
                    });
                }
                self.pause_then(taken_pause(self.taken), Step::FindTail(offset))
            }
            (Step::CheckToken(_), Answer::Token(Found::Nothing)) => {
                // The object that was there is gone (a truncate raced us):
                // the offset is free again, but not for ever, and an
                // earlier try of ours may still be in flight and land.
                self.uncertain = true;
                self.same_offset_again()
            }
            (Step::Put(_), Answer::Conflict) => {
                // The PUT it conflicted with may have been our own earlier
                // try, still in flight: a 412 after this must be checked.
                self.uncertain = true;
                self.same_offset_again()
            }

            (step @ (Step::Put(_) | Step::CheckToken(_)), Answer::Failed { may_have_landed }) => {
                Step::GiveUp(GiveUp::Failed {
                    offset,
                    maybe_stored: self.uncertain || (may_have_landed && step == Step::Put(offset)),
                })
            }
            (Step::FindTail(_), Answer::Tail(tail)) => match tail.checked_add(1) {
                Some(next) => {
                    self.offset = next;
                    self.conflicts = 0;
                    Step::Put(next)
                }
                None => Step::GiveUp(GiveUp::LogFull),
            },
            (last, answer) => unreachable!("{answer:?} cannot answer {last:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const LIMITS: Limits = Limits {
        taken: 100,
        conflicts: 8,
    };

    const TAKEN: Answer = Answer::Taken { retried: false };
    /// A 412 to a PUT the client sent again after a lost answer.
    const TAKEN_AFTER_RETRY: Answer = Answer::Taken { retried: true };

    /// Feeds `answers` to an append at offset 5 and returns every step.
    fn steps(answers: &[Answer]) -> Vec<Step> {
        let mut append = Append::at(5, LIMITS);
        let mut steps = vec![append.start()];
        for &answer in answers {
            steps.push(append.next(answer));
        }
        steps
    }

    fn last(answers: &[Answer]) -> Step {
        *steps(answers).last().unwrap()
    }

    #[test]
    fn first_step_puts_at_the_offset_past_the_tail() {
        assert_eq!(steps(&[]), [Step::Put(5)]);
    }

    #[test]
    fn created_record_is_stored_where_it_was_put() {
        assert_eq!(last(&[Answer::Created]), Step::Stored(5));
    }

    #[test]
    fn taken_offset_looks_for_the_tail_past_it_after_a_short_pause() {
        assert_eq!(
            steps(&[TAKEN, Answer::Resumed, Answer::Tail(9)]),
            [
                Step::Put(5),
                Step::Pause(Duration::from_millis(1)),
                Step::FindTail(5),
                Step::Put(10),
            ]
        );
    }

    #[test]
    fn taken_after_a_lost_answer_checks_the_token() {
        assert_eq!(last(&[TAKEN_AFTER_RETRY]), Step::CheckToken(5));
    }

    #[test]
    fn our_token_means_the_lost_answer_had_stored_the_record() {
        let answers = [TAKEN_AFTER_RETRY, Answer::Token(Found::Ours)];
        assert_eq!(last(&answers), Step::Stored(5));
    }

    #[test]
    fn another_token_means_the_offset_is_taken() {
        let answers = [TAKEN_AFTER_RETRY, Answer::Token(Found::Theirs)];
        assert_eq!(last(&answers), Step::Pause(Duration::from_millis(1)));
        let mut more = answers.to_vec();
        more.push(Answer::Resumed);
        assert_eq!(last(&more), Step::FindTail(5));
    }

    #[test]
    fn vanished_object_frees_the_offset() {
        let answers = [
            TAKEN_AFTER_RETRY,
            Answer::Token(Found::Nothing),
            Answer::Resumed,
        ];
        assert_eq!(last(&answers), Step::Put(5));
    }

    #[test]
    fn conflict_retries_the_same_offset_after_a_pause() {
        assert_eq!(
            steps(&[Answer::Conflict, Answer::Resumed]),
            [
                Step::Put(5),
                Step::Pause(Duration::from_millis(20)),
                Step::Put(5)
            ]
        );
    }

    #[test]
    fn taken_after_a_conflict_checks_the_token() {
        let answers = [Answer::Conflict, Answer::Resumed, TAKEN];
        assert_eq!(last(&answers), Step::CheckToken(5));
    }

    #[test]
    fn endless_conflicts_give_up_naming_the_offset() {
        let answers: Vec<Answer> = [Answer::Conflict, Answer::Resumed]
            .repeat(8)
            .into_iter()
            .take(15)
            .collect();
        assert_eq!(
            last(&answers),
            Step::GiveUp(GiveUp::Conflicted {
                attempts: 8,
                offset: 5
            })
        );
    }

    #[test]
    fn failure_whose_body_went_out_gives_up_saying_the_record_may_be_stored() {
        let lost = Answer::Failed {
            may_have_landed: true,
        };
        assert_eq!(
            last(&[lost]),
            Step::GiveUp(GiveUp::Failed {
                offset: 5,
                maybe_stored: true
            })
        );
    }

    #[test]
    fn failure_before_the_body_left_gives_up_with_nothing_stored() {
        let refused = Answer::Failed {
            may_have_landed: false,
        };
        assert_eq!(
            last(&[refused]),
            Step::GiveUp(GiveUp::Failed {
                offset: 5,
                maybe_stored: false
            })
        );
    }

    #[test]
    fn failed_token_check_gives_up_saying_the_record_may_be_stored() {
        let failed = Answer::Failed {
            may_have_landed: false,
        };
        assert_eq!(
            last(&[TAKEN_AFTER_RETRY, failed]),
            Step::GiveUp(GiveUp::Failed {
                offset: 5,
                maybe_stored: true
            })
        );
    }

    #[test]
    fn endless_contention_gives_up_after_the_limit() {
        let mut append = Append::at(1, LIMITS);
        let mut step = append.start();
        for round in 0.. {
            step = match step {
                Step::Put(_) => append.next(TAKEN),
                Step::Pause(_) => append.next(Answer::Resumed),
                Step::FindTail(offset) => append.next(Answer::Tail(offset + 1)),
                _ => break,
            };
            assert!(round < 1000);
        }
        assert_eq!(
            step,
            Step::GiveUp(GiveUp::Taken {
                attempts: 100,
                offset: 199
            })
        );
    }

    #[test]
    fn no_offset_follows_the_highest() {
        let answers = [TAKEN, Answer::Resumed, Answer::Tail(u64::MAX)];
        assert_eq!(last(&answers), Step::GiveUp(GiveUp::LogFull));
    }

    /// Every answer the store can give to `step`.
    fn answers_to(step: Step) -> Vec<Answer> {
        let failures = [true, false].map(|may_have_landed| Answer::Failed { may_have_landed });
        match step {
            Step::Put(_) => [Answer::Created, TAKEN, TAKEN_AFTER_RETRY, Answer::Conflict]
                .into_iter()
                .chain(failures)
                .collect(),
            Step::CheckToken(_) => [Found::Ours, Found::Theirs, Found::Nothing]
                .map(Answer::Token)
                .into_iter()
                .chain(failures)
                .collect(),
            Step::FindTail(offset) => vec![Answer::Tail(offset), Answer::Tail(offset + 3)],
            Step::Pause(_) => vec![Answer::Resumed],
            Step::Stored(_) | Step::GiveUp(_) => Vec::new(),
        }
    }

    /// What the store may hold of ours, judged from the answers alone.
    #[derive(Clone, Default)]
    struct Model {
        /// Offsets where a PUT of ours may have landed, not disproved.
        maybe_ours: BTreeSet<u64>,
    }

    /// Walks every schedule of answers, depth first, checking after each
    /// step that the machine never leaves an offset that may hold its
    /// record (that would store it twice), never claims a record it cannot
    /// know is stored, and always ends. Returns the schedules walked.
    fn walk(append: &Append, step: Step, model: &Model, depth: usize) -> u64 {
        let choices = answers_to(step);
        if choices.is_empty() {
            return 1;
        }
        assert!(depth < 60, "an append did not end: {append:?}");
        let mut walked = 0;
        for answer in choices {
            let mut append = append.clone();
            let mut model = model.clone();
            let next = append.next(answer);
            match (step, answer) {
                (
                    Step::Put(o),
                    Answer::Failed {
                        may_have_landed: true,
                    }
                    | Answer::Conflict,
                ) => {
                    model.maybe_ours.insert(o);
                }
                // The client sent this PUT again: its first try may have
                // landed, and this 412 may be to our own record.
                (Step::Put(o), TAKEN_AFTER_RETRY) => {
                    model.maybe_ours.insert(o);
                }
                (Step::CheckToken(o), Answer::Token(Found::Theirs)) => {
                    model.maybe_ours.remove(&o);
                }
                _ => {}
            }
            match next {
                Step::Stored(o) => assert!(
                    matches!(
                        (step, answer),
                        (Step::Put(p), Answer::Created) | (Step::CheckToken(p), Answer::Token(Found::Ours)) if p == o
                    ),
                    "stored at {o} after {answer:?} to {step:?}"
                ),
                Step::FindTail(o) => {
                    assert!(
                        !model.maybe_ours.contains(&o),
                        "left {o}, which may hold the record"
                    )
                }
                Step::GiveUp(GiveUp::Failed {
                    offset,
                    maybe_stored,
                }) => assert!(
                    maybe_stored || !model.maybe_ours.contains(&offset),
                    "gave up at {offset} without saying the record may be there"
                ),
                _ => {}
            }
            walked += walk(&append, next, &model, depth + 1);
        }
        walked
    }

    #[test]
    fn every_schedule_of_answers_ends_without_a_duplicate_or_a_false_claim() {
        let limits = Limits {
            taken: 3,
            conflicts: 3,
        };
        let append = Append::at(1, limits);
        let walked = walk(&append, append.start(), &Model::default(), 0);
        println!("{walked} schedules of answers walked");
        assert!(walked > 10_000, "only {walked} schedules");
    }
}
