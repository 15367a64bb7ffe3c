//! A small single-threaded executor for asynchronous handlers.
//!
//! Tasks live on the thread that spawned them (their futures need not be `Send`); wakers are
//! thread-safe, so a future woken from another thread (a channel fed by a worker thread, say)
//! makes its task runnable again and unparks a thread waiting in [`LocalExecutor::park`].

use crate::slab::Slab;
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Wake, Waker};

/// Identifies a spawned task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskId {
    index: u32,
    gen: u32,
}

#[derive(Default)]
struct Shared {
    woken: Mutex<VecDeque<TaskId>>,
    signal: Condvar,
}

struct TaskWaker {
    id: TaskId,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Ok(mut q) = self.shared.woken.lock() {
            q.push_back(self.id);
        }
        self.shared.signal.notify_one();
    }
}

/// The executor. Not `Send`: it runs where it was made.
pub(crate) struct LocalExecutor {
    tasks: RefCell<Slab<Option<LocalBoxFuture<'static, ()>>>>,
    shared: Arc<Shared>,
}

impl LocalExecutor {
    pub(crate) fn new() -> Self {
        LocalExecutor {
            tasks: RefCell::new(Slab::new()),
            shared: Arc::new(Shared::default()),
        }
    }

    /// Spawns `fut`; it first runs at the next [`LocalExecutor::run_ready`].
    pub(crate) fn spawn(&self, fut: LocalBoxFuture<'static, ()>) -> TaskId {
        let (index, gen) = self.tasks.borrow_mut().insert(Some(fut), None);
        let id = TaskId { index, gen };
        if let Ok(mut q) = self.shared.woken.lock() {
            q.push_back(id);
        }
        id
    }

    /// Tasks not yet finished.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Polls every woken task once (and tasks woken meanwhile). Returns how many were polled.
    pub(crate) fn run_ready(&self) -> usize {
        let mut polled = 0;
        loop {
            let next = self
                .shared
                .woken
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front());
            let Some(id) = next else { break };
            // Take the future out so the task may spawn or cancel tasks while it runs.
            let fut = match self.tasks.borrow_mut().get_mut(id.index, id.gen) {
                Some(slot) => slot.take(),
                None => continue,
            };
            let Some(mut fut) = fut else { continue };
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                shared: self.shared.clone(),
            }));
            polled += 1;
            let done = fut
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            let mut tasks = self.tasks.borrow_mut();
            if done {
                tasks.remove(id.index, id.gen);
            } else if let Some(slot) = tasks.get_mut(id.index, id.gen) {
                *slot = Some(fut);
            }
        }
        polled
    }

    /// Whether a task is waiting to be polled.
    pub(crate) fn has_woken(&self) -> bool {
        self.shared
            .woken
            .lock()
            .map(|q| !q.is_empty())
            .unwrap_or(false)
    }

    /// Blocks the thread until a task is woken or `timeout` passes (forever when `None`).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn park(&self, timeout: Option<std::time::Duration>) {
        let Ok(q) = self.shared.woken.lock() else {
            return;
        };
        if !q.is_empty() {
            return;
        }
        let _unused = match timeout {
            Some(t) => self.shared.signal.wait_timeout(q, t).map(|(g, _)| g).ok(),
            None => self.shared.signal.wait(q).ok(),
        };
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use futures::channel::oneshot;
    use futures::FutureExt;
    use std::rc::Rc;

    #[test]
    fn runs_tasks_when_woken() {
        let ex = LocalExecutor::new();
        let (tx, rx) = oneshot::channel::<u32>();
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        ex.spawn(
            async move {
                *g.borrow_mut() = rx.await.ok();
            }
            .boxed_local(),
        );
        assert_eq!(ex.run_ready(), 1);
        assert_eq!(*got.borrow(), None);
        assert!(!ex.has_woken());
        tx.send(7).unwrap();
        assert!(ex.has_woken());
        ex.run_ready();
        assert_eq!(*got.borrow(), Some(7));
        assert_eq!(ex.len(), 0);
    }
}
