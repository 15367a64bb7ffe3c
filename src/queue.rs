//! A subscription's waiting room: bounded, in publish order, with per-key lanes.
//!
//! Messages wait here until the subscription has a free slot. With `concurrency > 1`, a message
//! whose key already has a message started (or about to start) is parked in that key's lane, so
//! messages of one key never overlap and keep their order while other keys go ahead.

use crate::message::Message;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::rc::Rc;

/// What happens when a subscription's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the oldest waiting message to make room (counted as dropped).
    #[default]
    DropOldest,
    /// Drop the incoming message (counted as dropped).
    DropNewest,
    /// Refuse the publish with `QUEUE_FULL`; nothing is enqueued anywhere.
    Reject,
    /// `publish_async` waits for room; a synchronous publish is refused with `QUEUE_FULL`.
    Wait,
}

impl Overflow {
    /// Parses the JavaScript spelling (`"dropOldest"`, `"dropNewest"`, `"reject"`, `"wait"`).
    pub fn parse(name: &str) -> Option<Overflow> {
        match name {
            "dropOldest" => Some(Overflow::DropOldest),
            "dropNewest" => Some(Overflow::DropNewest),
            "reject" => Some(Overflow::Reject),
            "wait" => Some(Overflow::Wait),
            _ => None,
        }
    }

    /// The JavaScript spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DropOldest => "dropOldest",
            Overflow::DropNewest => "dropNewest",
            Overflow::Reject => "reject",
            Overflow::Wait => "wait",
        }
    }
}

/// Waiting messages of one subscription.
#[derive(Debug)]
pub(crate) struct SubQueue<P> {
    /// Allocated when a message first waits: a subscription its driver serves directly (most
    /// of them) never needs it.
    waiting: Option<Box<Waiting<P>>>,
    keyed: bool,
}

#[derive(Debug)]
struct Waiting<P> {
    /// Messages free to start, in publish order (sorted by sequence).
    ready: VecDeque<Message<P>>,
    /// Keys with a message started or ready; the value holds that key's later messages (only
    /// for a keyed queue).
    lanes: HashMap<Rc<str>, VecDeque<Message<P>>>,
    len: usize,
    /// When the expiry watch armed for this queue comes due: the earliest end of a TTL among
    /// the messages waiting when it was armed (see [`SubQueue::expire`]).
    watch: Option<u64>,
}

impl<P> Default for Waiting<P> {
    fn default() -> Self {
        Waiting {
            ready: VecDeque::new(),
            lanes: HashMap::new(),
            len: 0,
            watch: None,
        }
    }
}

impl<P> Waiting<P> {
    /// A message whose TTL ends `at` waits: the time to arm a watch at, when none is armed
    /// before then.
    fn watch_for(&mut self, at: Option<u64>) -> Option<u64> {
        let at = at?;
        if self.watch.is_some_and(|armed| armed <= at) {
            return None;
        }
        self.watch = Some(at);
        Some(at)
    }
}

impl<P> SubQueue<P> {
    /// A queue; `keyed` turns on per-key lanes (needed only when more than one message may run
    /// at once).
    pub(crate) fn new(keyed: bool) -> Self {
        SubQueue {
            waiting: None,
            keyed,
        }
    }

    fn waiting(&mut self) -> &mut Waiting<P> {
        self.waiting.get_or_insert_with(Box::default)
    }

    /// Messages waiting (ready and parked).
    pub(crate) fn len(&self) -> usize {
        self.waiting.as_ref().map_or(0, |w| w.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `msg` last in publish order. Returns the time to arm the queue's expiry watch at,
    /// when `msg`'s TTL ends before the watch armed already.
    pub(crate) fn push(&mut self, msg: Message<P>) -> Option<u64> {
        let keyed = self.keyed;
        let w = self.waiting();
        w.len += 1;
        let watch = w.watch_for(msg.expires_at);
        match (&msg.key, keyed) {
            (Some(key), true) => {
                if let Some(lane) = w.lanes.get_mut(&**key) {
                    lane.push_back(msg);
                } else {
                    w.lanes.insert(key.clone(), VecDeque::new());
                    w.ready.push_back(msg);
                }
            }
            _ => w.ready.push_back(msg),
        }
        watch
    }

    /// Marks `key` busy for a message that started without passing through the queue (a handler
    /// the driver called directly), so later messages of the key wait for it.
    pub(crate) fn activate(&mut self, key: Option<&Rc<str>>) {
        if let (Some(key), true) = (key, self.keyed) {
            let w = self.waiting();
            if !w.lanes.contains_key(&**key) {
                w.lanes.insert(key.clone(), VecDeque::new());
            }
        }
    }

    /// Puts back a message that was taken to start but did not: it is the oldest waiting, and
    /// its key is still marked busy by it. Returns the time to arm the expiry watch at, as
    /// [`SubQueue::push`].
    pub(crate) fn push_front(&mut self, msg: Message<P>) -> Option<u64> {
        let w = self.waiting();
        w.len += 1;
        let watch = w.watch_for(msg.expires_at);
        w.ready.push_front(msg);
        watch
    }

    /// When the expiry watch armed for this queue comes due, if one is armed.
    pub(crate) fn watch(&self) -> Option<u64> {
        self.waiting.as_ref()?.watch
    }

    /// The watch came due at `now`: removes the waiting messages whose TTL ended by then (ready
    /// and parked; a key whose ready message left lets its next one go). Returns how many left,
    /// and the time to arm the next watch at (the earliest TTL end among those still waiting).
    pub(crate) fn expire(&mut self, now: u64) -> (usize, Option<u64>) {
        let keyed = self.keyed;
        let Some(w) = self.waiting.as_mut() else {
            return (0, None);
        };
        let mut left = 0;
        let mut watch = None;
        for lane in w.lanes.values_mut() {
            keep_unexpired(lane, now, &mut left, &mut watch, |_| {});
        }
        let mut freed = Vec::new();
        keep_unexpired(&mut w.ready, now, &mut left, &mut watch, |m| {
            if let (true, Some(key)) = (keyed, &m.key) {
                freed.push(key.clone());
            }
        });
        let expired = w.len - left;
        w.len = left;
        w.watch = watch;
        // A ready message that left lets the next of its key go (that one did not expire).
        for key in &freed {
            self.release(Some(key));
        }
        (expired, watch)
    }

    /// Takes the next message free to start. Its key stays busy until [`SubQueue::release`].
    pub(crate) fn pop(&mut self) -> Option<Message<P>> {
        let w = self.waiting.as_mut()?;
        let msg = w.ready.pop_front()?;
        w.len -= 1;
        Some(msg)
    }

    /// A message of `key` finished (or was dropped before starting): the key's next message, if
    /// any, becomes free to start, in sequence order among the others.
    pub(crate) fn release(&mut self, key: Option<&Rc<str>>) {
        let (Some(key), true, Some(w)) = (key, self.keyed, self.waiting.as_mut()) else {
            return;
        };
        let next = match w.lanes.get_mut(&**key) {
            Some(lane) => lane.pop_front(),
            None => return,
        };
        match next {
            Some(msg) => {
                let at = w.ready.partition_point(|m| m.seq < msg.seq);
                w.ready.insert(at, msg);
            }
            None => {
                w.lanes.remove(&**key);
            }
        }
    }

    /// Removes the oldest waiting message (lowest sequence), ready or parked.
    pub(crate) fn drop_oldest(&mut self) -> Option<Message<P>> {
        let w = self.waiting.as_ref()?;
        let ready_seq = w.ready.front().map(|m| m.seq);
        let parked = w
            .lanes
            .iter()
            .filter_map(|(k, lane)| lane.front().map(|m| (m.seq, k.clone())))
            .min_by_key(|(seq, _)| *seq);
        match (ready_seq, parked) {
            (Some(r), Some((p, key))) if p < r => self.take_parked(&key),
            (Some(_), _) => {
                let msg = self.pop()?;
                // It never started: its key's next message may go.
                self.release(msg.key.as_ref());
                Some(msg)
            }
            (None, Some((_, key))) => self.take_parked(&key),
            (None, None) => None,
        }
    }

    fn take_parked(&mut self, key: &Rc<str>) -> Option<Message<P>> {
        let w = self.waiting.as_mut()?;
        let msg = w.lanes.get_mut(&**key)?.pop_front()?;
        w.len -= 1;
        Some(msg)
    }

    /// Empties the queue, returning how many messages were waiting.
    pub(crate) fn clear(&mut self) -> usize {
        self.waiting.take().map_or(0, |w| w.len)
    }
}

/// Keeps the messages of `msgs` whose TTL has not ended by `now`, in order, adding them to
/// `left` and the earliest end of their TTLs to `watch`; `gone` sees each one that expired.
fn keep_unexpired<P>(
    msgs: &mut VecDeque<Message<P>>,
    now: u64,
    left: &mut usize,
    watch: &mut Option<u64>,
    mut gone: impl FnMut(&Message<P>),
) {
    for _ in 0..msgs.len() {
        let Some(m) = msgs.pop_front() else { break };
        if m.is_expired(now) {
            gone(&m);
            continue;
        }
        if let Some(at) = m.expires_at {
            *watch = Some(watch.map_or(at, |w: u64| w.min(at)));
        }
        *left += 1;
        msgs.push_back(m);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn msg(seq: u64, key: Option<&str>) -> Message<u64> {
        Message {
            topic: Rc::from("t"),
            payload: seq,
            id: None,
            key: key.map(Rc::from),
            headers: None,
            published_at: Some(0),
            expires_at: None,
            size: 0,
            seq,
            topic_seq: 0,
            attempt: 1,
            prior: 0,
            letter: None,
            request: None,
        }
    }

    #[test]
    fn unkeyed_is_fifo() {
        let mut q = SubQueue::new(false);
        for i in 0..5 {
            q.push(msg(i, Some("k")));
        }
        let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|m| m.seq)).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn keyed_parks_until_release() {
        let mut q = SubQueue::new(true);
        q.push(msg(1, Some("a")));
        q.push(msg(2, Some("a")));
        q.push(msg(3, Some("b")));
        q.push(msg(4, None));
        assert_eq!(q.len(), 4);
        let first = q.pop().unwrap();
        assert_eq!(first.seq, 1);
        // Key "a" is busy: 2 waits, 3 and 4 may go.
        assert_eq!(q.pop().unwrap().seq, 3);
        assert_eq!(q.pop().unwrap().seq, 4);
        assert!(q.pop().is_none());
        q.release(first.key.as_ref());
        assert_eq!(q.pop().unwrap().seq, 2);
        assert!(q.is_empty());
    }

    #[test]
    fn released_message_keeps_sequence_order() {
        let mut q = SubQueue::new(true);
        q.push(msg(1, Some("a")));
        q.push(msg(2, Some("a")));
        q.push(msg(5, Some("b")));
        let a1 = q.pop().unwrap();
        q.release(a1.key.as_ref());
        // 2 (key a) was published before 5 (key b).
        assert_eq!(q.pop().unwrap().seq, 2);
        assert_eq!(q.pop().unwrap().seq, 5);
    }

    #[test]
    fn drop_oldest_finds_parked_messages() {
        let mut q = SubQueue::new(true);
        q.push(msg(1, Some("a")));
        q.push(msg(2, Some("a")));
        q.push(msg(3, Some("b")));
        let a1 = q.pop().unwrap(); // 1 is running
        assert_eq!(a1.seq, 1);
        // Waiting: 2 (parked behind 1) and 3 (ready). Oldest is 2.
        assert_eq!(q.drop_oldest().unwrap().seq, 2);
        assert_eq!(q.len(), 1);
        assert_eq!(q.drop_oldest().unwrap().seq, 3);
        assert!(q.drop_oldest().is_none());
    }

    #[test]
    fn dropping_a_ready_message_frees_its_key() {
        let mut q = SubQueue::new(true);
        q.push(msg(1, Some("a")));
        q.push(msg(2, Some("a")));
        assert_eq!(q.drop_oldest().unwrap().seq, 1);
        assert_eq!(q.pop().unwrap().seq, 2);
    }

    #[test]
    fn an_activated_key_parks_its_next_message() {
        let mut q = SubQueue::new(true);
        let key: Rc<str> = Rc::from("a");
        q.activate(Some(&key));
        q.push(msg(1, Some("a")));
        q.push(msg(2, Some("b")));
        assert_eq!(q.pop().unwrap().seq, 2, "key a is busy: 1 waits");
        assert!(q.pop().is_none());
        q.release(Some(&key));
        assert_eq!(q.pop().unwrap().seq, 1);
    }

    #[test]
    fn overflow_names_round_trip() {
        for o in [
            Overflow::DropOldest,
            Overflow::DropNewest,
            Overflow::Reject,
            Overflow::Wait,
        ] {
            assert_eq!(Overflow::parse(o.as_str()), Some(o));
        }
        assert_eq!(Overflow::parse("drop_oldest"), None);
    }
}
