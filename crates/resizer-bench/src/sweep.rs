//! The sweep's schedule: rising rates by a fixed step until one fails, then
//! bisection between the last good rate and the first failing one. Pure, so
//! the schedule is tested without a server.

/// Where a finished sweep ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Still running.
    Running,
    /// The first rate already failed.
    NeverGood,
    /// Every rate up to the maximum passed.
    ReachedMax,
    /// `good` passed, `bad` failed, and no rate between them is left to try.
    TippedOver {
        /// Highest rate that passed.
        good: f64,
        /// Lowest rate that failed.
        bad: f64,
    },
}

/// The schedule's state.
#[derive(Debug, Clone)]
pub struct Sweep {
    step: f64,
    max: f64,
    refinements_left: u32,
    next: Option<f64>,
    good: Option<f64>,
    bad: Option<f64>,
    outcome: Outcome,
}

impl Sweep {
    /// Starts at `start`, rises by `step` up to `max`, then bisects `refine` times.
    pub fn new(start: f64, step: f64, max: f64, refine: u32) -> Self {
        Self {
            step: step.max(f64::MIN_POSITIVE),
            max,
            refinements_left: refine,
            next: (start > 0.0 && start <= max).then_some(start),
            good: None,
            bad: None,
            outcome: Outcome::Running,
        }
    }

    /// The next rate to run, or `None` when the sweep is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records whether `rate` passed and schedules the next one.
    pub fn record(&mut self, rate: f64, passed: bool) {
        if passed {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else {
            self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
        }
        self.next = match (self.good, self.bad) {
            (None, Some(_)) => {
                self.outcome = Outcome::NeverGood;
                None
            }
            (Some(good), None) => {
                let rate = good + self.step;
                if rate > self.max {
                    self.outcome = Outcome::ReachedMax;
                    None
                } else {
                    Some(rate)
                }
            }
            (Some(good), Some(bad)) => {
                // A rate within 1 req/s of both ends is not worth a stage.
                if self.refinements_left == 0 || bad - good < 2.0 {
                    self.outcome = Outcome::TippedOver { good, bad };
                    None
                } else {
                    self.refinements_left -= 1;
                    Some(((good + bad) / 2.0).round())
                }
            }
            (None, None) => None,
        };
    }

    /// How the sweep ended ([`Outcome::Running`] until it has).
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sweep against a server that passes every rate up to `limit`.
    fn run(mut s: Sweep, limit: f64) -> (Vec<f64>, Outcome) {
        let mut rates = Vec::new();
        while let Some(r) = s.next_rate() {
            rates.push(r);
            s.record(r, r <= limit);
            assert!(rates.len() < 100, "sweep does not end");
        }
        (rates, s.outcome())
    }

    #[test]
    fn test_sweep_rises_then_bisects() {
        let (rates, outcome) = run(Sweep::new(150.0, 50.0, 1000.0, 3), 321.0);
        assert_eq!(
            rates,
            vec![150.0, 200.0, 250.0, 300.0, 350.0, 325.0, 313.0, 319.0]
        );
        assert_eq!(
            outcome,
            Outcome::TippedOver {
                good: 319.0,
                bad: 325.0
            }
        );
    }

    #[test]
    fn test_sweep_without_refinement_is_the_plain_step() {
        let (rates, outcome) = run(Sweep::new(100.0, 100.0, 1000.0, 0), 250.0);
        assert_eq!(rates, vec![100.0, 200.0, 300.0]);
        assert_eq!(
            outcome,
            Outcome::TippedOver {
                good: 200.0,
                bad: 300.0
            }
        );
    }

    #[test]
    fn test_sweep_edges() {
        assert_eq!(
            run(Sweep::new(100.0, 50.0, 1000.0, 3), 50.0),
            (vec![100.0], Outcome::NeverGood)
        );
        let (rates, outcome) = run(Sweep::new(100.0, 50.0, 200.0, 3), 1e9);
        assert_eq!((rates, outcome), (vec![100.0, 150.0, 200.0], Outcome::ReachedMax));
        // Bisection stops once the interval is under 2 req/s.
        let (rates, outcome) = run(Sweep::new(10.0, 2.0, 100.0, 10), 13.0);
        assert_eq!(rates, vec![10.0, 12.0, 14.0, 13.0]);
        assert_eq!(
            outcome,
            Outcome::TippedOver {
                good: 13.0,
                bad: 14.0
            }
        );
    }
}
