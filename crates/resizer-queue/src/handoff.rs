//! Passing on a job that arrived too late for the pull that asked for it.
//!
//! An idle pull waits on several streams at once with one request each; the
//! first job wins and the pull returns, but its other requests stay open at the
//! servers until they expire and may still bring a job. That job used to be
//! handed back (nak) and redelivered, two more Raft entries in its consumer's
//! group, often to a request of the same process (ADR 0009). Now the process
//! keeps those requests as its own and gives what they bring to the pull of
//! this process that has waited longest, or holds it briefly for the next pull
//! to start; only a job no pull takes within the hold is handed back, so that
//! another worker can have it.
//!
//! Generic over the message so the rules are tested without a broker.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// The pulls of one process that wait now, oldest first, and the jobs held for
/// the next pull, oldest first.
pub(crate) struct Takers<T> {
    state: Mutex<State<T>>,
    /// Hands a job back to the queue (without waiting for the broker).
    release: Box<dyn Fn(T) + Send + Sync>,
}

struct State<T> {
    next_id: u64,
    waiting: VecDeque<(u64, oneshot::Sender<T>)>,
    held: VecDeque<Held<T>>,
}

/// A job held for the next pull. `taken` ends the hold at once when a pull takes
/// the job, so a stopping process does not wait it out.
struct Held<T> {
    id: u64,
    job: T,
    taken: oneshot::Sender<()>,
}

impl<T> Held<T> {
    fn take(self) -> T {
        let _ = self.taken.send(());
        self.job
    }
}

/// A pull's place in line; leaving it (or dropping it) withdraws the pull.
pub(crate) struct Taker<'a, T> {
    takers: &'a Takers<T>,
    id: u64,
    offered: oneshot::Receiver<T>,
    done: bool,
}

/// What a pull finds when it joins the line.
pub(crate) enum Joined<'a, T> {
    /// A job held for the next pull: take it and go.
    Held(T),
    /// Nothing held: wait for an offer (alongside the pull's own requests).
    InLine(Taker<'a, T>),
}

/// What became of a job passed on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A pull took it.
    Taken,
    /// No pull took it within the hold: handed back to the queue.
    Released,
}

impl<T: Send> Takers<T> {
    /// Takers whose unwanted jobs go back to the queue through `release`.
    pub(crate) fn new(release: impl Fn(T) + Send + Sync + 'static) -> Self {
        Self {
            state: Mutex::new(State {
                next_id: 0,
                waiting: VecDeque::new(),
                held: VecDeque::new(),
            }),
            release: Box::new(release),
        }
    }

    /// The oldest job held, if any; none is offered to this caller otherwise.
    pub(crate) fn take_held(&self) -> Option<T> {
        self.lock().held.pop_front().map(Held::take)
    }

    /// The oldest job held, or else a place in line for the next one passed on.
    pub(crate) fn join(&self) -> Joined<'_, T> {
        let mut state = self.lock();
        if let Some(held) = state.held.pop_front() {
            return Joined::Held(held.take());
        }
        let (tx, offered) = oneshot::channel();
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.push_back((id, tx));
        Joined::InLine(Taker {
            takers: self,
            id,
            offered,
            done: false,
        })
    }

    /// Gives `job` to the pull that has waited longest or, with none waiting,
    /// holds it for the next pull for up to `hold`, then releases it.
    pub(crate) async fn pass_on(&self, job: T, hold: Duration) -> Outcome {
        let (id, taken) = {
            let mut state = self.lock();
            let mut job = job;
            // Sent under the lock: a pull that left the line can no longer be given anything.
            while let Some((_, tx)) = state.waiting.pop_front() {
                match tx.send(job) {
                    Ok(()) => return Outcome::Taken,
                    Err(back) => job = back,
                }
            }
            let id = state.next_id;
            state.next_id += 1;
            let (tx, taken) = oneshot::channel();
            state.held.push_back(Held { id, job, taken: tx });
            (id, taken)
        };
        let _ = tokio::time::timeout(hold, taken).await;
        let expired = {
            let mut state = self.lock();
            let at = state.held.iter().position(|held| held.id == id);
            at.and_then(|at| state.held.remove(at))
        };
        match expired {
            Some(held) => {
                (self.release)(held.job);
                Outcome::Released
            }
            None => Outcome::Taken,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Send> Taker<'_, T> {
    /// The next job offered to this pull; pending forever once one was taken.
    pub(crate) async fn offered(&mut self) -> Option<T> {
        if self.done {
            return std::future::pending().await;
        }
        let job = (&mut self.offered).await.ok();
        self.done = true;
        job
    }

    /// Leaves the line; returns a job that was offered but not taken (the pull
    /// got one of its own meanwhile), which the caller must pass on again.
    pub(crate) fn leave(mut self) -> Option<T> {
        self.withdraw();
        if self.done {
            return None;
        }
        self.offered.try_recv().ok()
    }
}

impl<T> Taker<'_, T> {
    fn withdraw(&mut self) {
        let id = self.id;
        let mut state = self.takers.state.lock().unwrap_or_else(|e| e.into_inner());
        state.waiting.retain(|(i, _)| *i != id);
    }
}

/// A pull cancelled after a job was given to it releases the job.
impl<T> Drop for Taker<'_, T> {
    fn drop(&mut self) {
        self.withdraw();
        if let Ok(job) = self.offered.try_recv() {
            (self.takers.release)(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Takers that log what they release.
    fn takers() -> (Arc<Takers<u32>>, Arc<Mutex<Vec<u32>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let takers = Takers::new(move |job| sink.lock().unwrap().push(job));
        (Arc::new(takers), log)
    }

    fn in_line<T: Send>(takers: &Takers<T>) -> Taker<'_, T> {
        match takers.join() {
            Joined::InLine(taker) => taker,
            Joined::Held(_) => panic!("a job was held"),
        }
    }

    #[tokio::test]
    async fn test_a_job_goes_to_the_pull_that_waited_longest() {
        let (takers, released) = takers();
        let mut first = in_line(&takers);
        let mut second = in_line(&takers);
        assert_eq!(takers.pass_on(7, Duration::ZERO).await, Outcome::Taken);
        assert_eq!(first.offered().await, Some(7));
        assert_eq!(takers.pass_on(8, Duration::ZERO).await, Outcome::Taken);
        assert_eq!(second.offered().await, Some(8));
        assert!(released.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn test_held_jobs_go_to_the_next_pulls_oldest_first_within_the_hold() {
        let (takers, released) = takers();
        let hold = |job| {
            let takers = takers.clone();
            tokio::spawn(async move { takers.pass_on(job, Duration::from_millis(50)).await })
        };
        let (five, six) = (hold(5), hold(6));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(takers.take_held(), Some(5));
        assert!(matches!(takers.join(), Joined::Held(6)));
        assert!(matches!(takers.join(), Joined::InLine(_)));
        assert_eq!(five.await.unwrap(), Outcome::Taken);
        assert_eq!(six.await.unwrap(), Outcome::Taken);
        assert!(released.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn test_a_hold_ends_when_its_job_is_taken() {
        let (takers, _) = takers();
        let passing = {
            let takers = takers.clone();
            tokio::spawn(async move { takers.pass_on(1, Duration::from_secs(3600)).await })
        };
        let job = loop {
            if let Some(job) = takers.take_held() {
                break job;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(job, 1);
        // Real time: had the hold run its course this would wait an hour.
        let outcome = tokio::time::timeout(Duration::from_secs(10), passing).await;
        assert_eq!(outcome.expect("the hold ended").unwrap(), Outcome::Taken);
    }

    #[tokio::test(start_paused = true)]
    async fn test_a_job_nobody_takes_within_the_hold_is_released() {
        let (takers, released) = takers();
        assert_eq!(
            takers.pass_on(9, Duration::from_millis(50)).await,
            Outcome::Released
        );
        assert_eq!(*released.lock().unwrap(), vec![9]);
        assert_eq!(takers.take_held(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn test_a_pull_that_leaves_or_is_cancelled_loses_no_job() {
        let (takers, released) = takers();
        let gone = in_line(&takers);
        let mut staying = in_line(&takers);
        assert_eq!(gone.leave(), None);
        assert_eq!(takers.pass_on(3, Duration::ZERO).await, Outcome::Taken);
        assert_eq!(staying.offered().await, Some(3));
        // Offered to a pull that then got a job of its own: the job comes back.
        let offered_too_late = in_line(&takers);
        assert_eq!(takers.pass_on(4, Duration::ZERO).await, Outcome::Taken);
        assert_eq!(offered_too_late.leave(), Some(4));
        // Given to a pull that is then cancelled: released, not lost.
        let cancelled = in_line(&takers);
        assert_eq!(takers.pass_on(6, Duration::ZERO).await, Outcome::Taken);
        drop(cancelled);
        assert_eq!(*released.lock().unwrap(), vec![6]);
        // With nobody in line and nobody coming, the job is released after the hold.
        assert_eq!(
            takers.pass_on(8, Duration::from_millis(10)).await,
            Outcome::Released
        );
        assert_eq!(*released.lock().unwrap(), vec![6, 8]);
    }
}
