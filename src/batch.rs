//! Batch processing policy: messages are grouped and handed over together when the batch reaches
//! `max_size` messages, `max_bytes` bytes or `max_wait` of age, whichever comes first.
//!
//! Batches of one processor run one at a time and in order. A failed batch is retried with
//! exponential backoff up to `max_attempts`, then reported. Flushing seals the open batch so
//! nothing is left behind on `flush`, `drain` or `close`.

use crate::error::{Error, Result};
use crate::message::Message;
use std::collections::VecDeque;

/// When a batch is flushed and how a failed one is retried. Times are in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Most messages in one batch (default 100).
    pub max_size: usize,
    /// Most bytes in one batch (default 1 MiB). A single message larger than this is refused
    /// with `MESSAGE_TOO_LARGE`.
    pub max_bytes: u64,
    /// Longest a message waits for its batch to fill (default 10 ms).
    pub max_wait: u64,
    /// Tries per batch before it is reported as failed (default 3; 1 means no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (default 50 ms); doubles on each further retry.
    pub backoff_initial: u64,
    /// Longest delay between retries (default 5 s).
    pub backoff_max: u64,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_size: 100,
            max_bytes: 1 << 20,
            max_wait: 10_000,
            max_attempts: 3,
            backoff_initial: 50_000,
            backoff_max: 5_000_000,
        }
    }
}

impl BatchPolicy {
    /// Checks every limit is in range.
    pub fn validate(&self) -> Result<()> {
        if self.max_size == 0 {
            return Err(Error::invalid_option("batch.maxSize", "must be at least 1"));
        }
        if self.max_bytes == 0 {
            return Err(Error::invalid_option(
                "batch.maxBytes",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::invalid_option(
                "batch.maxAttempts",
                "must be at least 1",
            ));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(Error::invalid_option(
                "batch.backoff.maxMs",
                "must not be below backoff.initialMs",
            ));
        }
        Ok(())
    }

    /// Delay before retry number `attempt` (1 is the delay after the first failure).
    pub fn backoff(&self, attempt: u32) -> u64 {
        exponential_backoff(self.backoff_initial, self.backoff_max, attempt)
    }
}

/// `initial · 2^(attempt−1)`, capped at `max` (`attempt` 1 is the delay after the first failure).
pub(crate) fn exponential_backoff(initial: u64, max: u64, attempt: u32) -> u64 {
    let shift = attempt.saturating_sub(1).min(40);
    initial.saturating_mul(1u64 << shift).min(max)
}

/// The messages of one batch subscription that have not started yet.
#[derive(Debug)]
pub(crate) struct BatchQueue<P> {
    pub(crate) policy: BatchPolicy,
    open: Vec<Message<P>>,
    open_bytes: u64,
    /// Identifies the open batch, so a stale wait timer does not seal a later one.
    open_gen: u64,
    sealed: VecDeque<Vec<Message<P>>>,
    queued: usize,
    /// A failed batch waiting for its retry, with the attempt it will be.
    pub(crate) retry: Option<(Vec<Message<P>>, u32)>,
}

/// What pushing a message did.
pub(crate) enum Pushed {
    /// It opened a new batch: a wait timer is due at the given generation.
    Opened(u64),
    /// It joined the open batch (which may have been sealed by it).
    Joined,
}

impl<P> BatchQueue<P> {
    pub(crate) fn new(policy: BatchPolicy) -> Self {
        BatchQueue {
            policy,
            open: Vec::new(),
            open_bytes: 0,
            open_gen: 0,
            sealed: VecDeque::new(),
            queued: 0,
            retry: None,
        }
    }

    /// Messages waiting (open and sealed batches, not the one running or awaiting retry).
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    pub(crate) fn push(&mut self, msg: Message<P>) -> Pushed {
        // Room left, not bytes summed: sizes and limits may be as large as u64 holds (an open
        // batch is under its limit, else it was sealed).
        if !self.open.is_empty() && msg.size > self.policy.max_bytes.saturating_sub(self.open_bytes)
        {
            self.seal();
        }
        let opened = self.open.is_empty();
        if opened {
            self.open_gen += 1;
        }
        self.open_bytes = self.open_bytes.saturating_add(msg.size);
        self.open.push(msg);
        self.queued += 1;
        if self.open.len() >= self.policy.max_size || self.open_bytes >= self.policy.max_bytes {
            self.seal();
        }
        if opened {
            Pushed::Opened(self.open_gen)
        } else {
            Pushed::Joined
        }
    }

    /// Seals the open batch so it runs next in line.
    pub(crate) fn seal(&mut self) {
        if !self.open.is_empty() {
            self.sealed.push_back(std::mem::take(&mut self.open));
            self.open_bytes = 0;
        }
    }

    /// Seals the open batch if `gen` is still the open one (its wait timer fired).
    pub(crate) fn seal_if(&mut self, gen: u64) {
        if gen == self.open_gen {
            self.seal();
        }
    }

    /// The next sealed batch, if any.
    pub(crate) fn pop(&mut self) -> Option<Vec<Message<P>>> {
        let b = self.sealed.pop_front()?;
        self.queued -= b.len();
        Some(b)
    }

    /// Drops the oldest waiting message (from the oldest batch not yet started).
    pub(crate) fn drop_oldest(&mut self) -> Option<Message<P>> {
        let msg = if let Some(front) = self.sealed.front_mut() {
            let m = front.remove(0);
            if front.is_empty() {
                self.sealed.pop_front();
            }
            m
        } else if !self.open.is_empty() {
            let m = self.open.remove(0);
            self.open_bytes -= m.size;
            m
        } else {
            return None;
        };
        self.queued -= 1;
        Some(msg)
    }

    /// Empties every batch not yet started; returns how many messages that was.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.queued + self.retry.as_ref().map_or(0, |(m, _)| m.len());
        self.open.clear();
        self.open_bytes = 0;
        self.sealed.clear();
        self.queued = 0;
        self.retry = None;
        n
    }

    /// Whether a wait timer for batch `gen` still has a batch to seal.
    pub(crate) fn is_open(&self, gen: u64) -> bool {
        gen == self.open_gen && !self.open.is_empty()
    }

    pub(crate) fn has_open(&self) -> bool {
        !self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use std::rc::Rc;

    fn msg(seq: u64, size: u64) -> Message<u64> {
        Message {
            published_at: Some(0),
            ..Message::direct(Rc::from("t"), seq, size, seq)
        }
    }

    fn policy(max_size: usize, max_bytes: u64) -> BatchPolicy {
        BatchPolicy {
            max_size,
            max_bytes,
            ..BatchPolicy::default()
        }
    }

    #[test]
    fn seals_on_size() {
        let mut q = BatchQueue::new(policy(3, 1000));
        for i in 0..7 {
            q.push(msg(i, 1));
        }
        assert_eq!(q.queued(), 7);
        let b: Vec<u64> = q.pop().unwrap().iter().map(|m| m.seq).collect();
        assert_eq!(b, vec![0, 1, 2]);
        assert_eq!(q.pop().unwrap().len(), 3);
        assert!(q.pop().is_none(), "the 7th message is still open");
        q.seal();
        assert_eq!(q.pop().unwrap()[0].seq, 6);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn seals_on_bytes_before_overflowing() {
        let mut q = BatchQueue::new(policy(100, 10));
        q.push(msg(0, 4));
        q.push(msg(1, 4));
        q.push(msg(2, 4)); // 12 > 10: the first two are sealed first
        assert_eq!(q.pop().unwrap().len(), 2);
        assert!(q.pop().is_none());
        q.push(msg(3, 6)); // exactly 10: sealed at once
        assert_eq!(q.pop().unwrap().len(), 2);
    }

    #[test]
    fn sizes_near_the_top_of_u64_never_overflow_a_batch() {
        // Two messages whose sizes add up past u64::MAX: a sum would wrap (or saturate to the
        // limit) and let them share a batch over max_bytes.
        let half = u64::MAX / 2 + 1;
        let mut q = BatchQueue::new(policy(100, u64::MAX));
        q.push(msg(0, half));
        q.push(msg(1, half));
        assert_eq!(q.pop().unwrap().len(), 1);
        assert!(q.pop().is_none(), "the second is open, alone");
        // A limit above 4 GiB holds on every target (wasm32's usize is 32 bits).
        let mut q = BatchQueue::new(policy(100, 6_000_000_000));
        q.push(msg(2, 3_000_000_000));
        q.push(msg(3, 3_000_000_001));
        assert_eq!(q.pop().unwrap().len(), 1);
        q.push(msg(4, 2_999_999_999));
        q.seal();
        let b: Vec<u64> = q.pop().unwrap().iter().map(|m| m.seq).collect();
        assert_eq!(b, vec![3, 4], "6,000,000,000 bytes: within the limit");
    }

    #[test]
    fn stale_wait_timer_does_not_seal_a_newer_batch() {
        let mut q = BatchQueue::new(policy(2, 1000));
        let Pushed::Opened(g1) = q.push(msg(0, 1)) else {
            panic!("first push opens a batch")
        };
        q.push(msg(1, 1)); // sealed by size
        let Pushed::Opened(g2) = q.push(msg(2, 1)) else {
            panic!("next push opens a new batch")
        };
        assert_ne!(g1, g2);
        q.seal_if(g1);
        assert_eq!(q.pop().unwrap().len(), 2);
        assert!(q.pop().is_none(), "the new batch stays open");
        q.seal_if(g2);
        assert_eq!(q.pop().unwrap().len(), 1);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = BatchPolicy {
            backoff_initial: 100,
            backoff_max: 1000,
            ..BatchPolicy::default()
        };
        let delays: Vec<u64> = (1..=6).map(|a| p.backoff(a)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), 1000);
    }

    #[test]
    fn validation_names_the_option() {
        let e = policy(0, 1).validate().unwrap_err();
        assert!(e.message().contains("batch.maxSize"), "{e}");
        let e = BatchPolicy {
            max_attempts: 0,
            ..BatchPolicy::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.message().contains("maxAttempts"), "{e}");
    }

    #[test]
    fn drop_oldest_takes_from_the_oldest_batch() {
        let mut q = BatchQueue::new(policy(2, 1000));
        for i in 0..3 {
            q.push(msg(i, 1));
        }
        assert_eq!(q.drop_oldest().unwrap().seq, 0);
        assert_eq!(q.drop_oldest().unwrap().seq, 1);
        assert_eq!(q.drop_oldest().unwrap().seq, 2);
        assert!(q.drop_oldest().is_none());
        assert_eq!(q.queued(), 0);
    }
}
