//! systemd's `JobRemoved` signals, heard by one listener per connection and handed to the job
//! that waits for each.
//!
//! Why one listener: zbus stops reading the socket while any signal stream's queue (64
//! messages) is full. A stream per job (the earlier way) is not read while its own queue call
//! (`StartUnit`) is under way, so with many jobs at once their streams could fill with each
//! other's signals, stop the socket, and leave the queue calls' answers behind them unread
//! until the jobs' timeouts (zbus's documented behaviour; issue 37). This listener is always
//! read; a result that comes before its job's queue call has answered (systemd may finish a job
//! before the caller reads the job's path) is kept until that call registers for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures_lite::StreamExt as _;
use tokio::sync::oneshot;

use super::ManagerProxy;
use crate::drivers::JobResult;
use crate::util::lock;

/// The results of the jobs queued on one connection.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    state: Mutex<State>,
    /// The listener's task, ended with the last holder of these jobs.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Debug, Default)]
struct State {
    /// The jobs waited for, by object path.
    waiting: HashMap<String, oneshot::Sender<JobResult>>,
    /// Results whose job has no waiter yet; kept only while a queue call is under way (a
    /// result no one can still ask for is not kept: systemd's own jobs, other clients').
    early: HashMap<String, JobResult>,
    /// Queue calls under way.
    queuing: usize,
    /// The listener ended (the connection closed): no result comes any more.
    closed: bool,
}

/// A queue call under way: results that come meanwhile are kept for it.
pub(super) struct Queuing<'a>(&'a Jobs);

impl Drop for Queuing<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.queuing -= 1;
        if state.queuing == 0 {
            state.early.clear();
        }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Jobs {
    /// Hears `JobRemoved` on `connection` from now on (its match rule is in place when this
    /// returns).
    pub(super) async fn listen(connection: &zbus::Connection) -> zbus::Result<Arc<Self>> {
        let mut removed = ManagerProxy::new(connection)
            .await?
            .receive_job_removed()
            .await?;
        let jobs = Arc::new(Self::default());
        let heard: Weak<Self> = Arc::downgrade(&jobs);
        let task = tokio::spawn(async move {
            while let Some(signal) = removed.next().await {
                let Some(jobs) = heard.upgrade() else { return };
                if let Ok(args) = signal.args() {
                    jobs.removed(args.job.as_str(), JobResult::from(args.result));
                }
            }
            if let Some(jobs) = heard.upgrade() {
                jobs.close();
            }
        });
        *lock(&jobs.task) = Some(task.abort_handle());
        Ok(jobs)
    }

    /// Before a job is queued; `None` when the connection closed.
    pub(super) fn queuing(&self) -> Option<Queuing<'_>> {
        let mut state = lock(&self.state);
        if state.closed {
            return None;
        }
        state.queuing += 1;
        Some(Queuing(self))
    }

    /// The result of `job` (the path its queue call answered), once systemd says it; the
    /// receiver errs when the connection closes first.
    pub(super) fn result_of(
        &self,
        queuing: Queuing<'_>,
        job: &str,
    ) -> oneshot::Receiver<JobResult> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            if let Some(result) = state.early.remove(job) {
                let _ = sender.send(result);
            } else if !state.closed {
                state.waiting.insert(job.to_owned(), sender);
            }
        }
        drop(queuing);
        receiver
    }

    /// A job no longer waited for (its wait timed out).
    pub(super) fn forget(&self, job: &str) {
        lock(&self.state).waiting.remove(job);
    }

    /// systemd said `job` ended with `result`.
    fn removed(&self, job: &str, result: JobResult) {
        let mut state = lock(&self.state);
        if let Some(waiter) = state.waiting.remove(job) {
            let _ = waiter.send(result);
        } else if state.queuing > 0 {
            state.early.insert(job.to_owned(), result);
        }
    }

    /// The connection closed: every waiter hears so.
    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.waiting.clear();
        state.early.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_reaches_its_waiter_whether_it_comes_before_or_after_the_queue_calls_answer() {
        let jobs = Jobs::default();
        // Before: the job ended while its queue call's answer was still on its way.
        let queuing = jobs.queuing().unwrap();
        jobs.removed("/job/1", JobResult::Done);
        let mut early = jobs.result_of(queuing, "/job/1");
        assert_eq!(early.try_recv().unwrap(), JobResult::Done);
        // After.
        let queuing = jobs.queuing().unwrap();
        let mut late = jobs.result_of(queuing, "/job/2");
        assert!(late.try_recv().is_err(), "nothing yet");
        jobs.removed("/job/2", JobResult::Failed);
        assert_eq!(late.try_recv().unwrap(), JobResult::Failed);
        // Each result to its own job, in any order.
        let (a, b) = (jobs.queuing().unwrap(), jobs.queuing().unwrap());
        let mut a = jobs.result_of(a, "/job/3");
        let mut b = jobs.result_of(b, "/job/4");
        jobs.removed("/job/4", JobResult::Other("canceled".into()));
        jobs.removed("/job/3", JobResult::Done);
        assert_eq!(a.try_recv().unwrap(), JobResult::Done);
        assert_eq!(b.try_recv().unwrap(), JobResult::Other("canceled".into()));
    }

    #[test]
    fn results_no_one_can_ask_for_are_not_kept() {
        let jobs = Jobs::default();
        // No queue call under way: another client's job.
        jobs.removed("/job/7", JobResult::Done);
        assert!(lock(&jobs.state).early.is_empty());
        // Kept while a call is under way, dropped when the last one registered.
        let queuing = jobs.queuing().unwrap();
        jobs.removed("/job/8", JobResult::Done);
        let _mine = jobs.result_of(queuing, "/job/9");
        let state = lock(&jobs.state);
        assert!(state.early.is_empty());
        assert_eq!(state.queuing, 0);
    }

    #[test]
    fn a_closed_connection_ends_every_wait_and_refuses_new_ones() {
        let jobs = Jobs::default();
        let queuing = jobs.queuing().unwrap();
        let mut waiting = jobs.result_of(queuing, "/job/1");
        jobs.close();
        assert!(matches!(
            waiting.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(jobs.queuing().is_none());
    }

    #[test]
    fn a_forgotten_job_keeps_no_waiter() {
        let jobs = Jobs::default();
        let queuing = jobs.queuing().unwrap();
        let _waiting = jobs.result_of(queuing, "/job/1");
        jobs.forget("/job/1");
        jobs.removed("/job/1", JobResult::Done);
        let state = lock(&jobs.state);
        assert!(state.waiting.is_empty() && state.early.is_empty());
    }
}
