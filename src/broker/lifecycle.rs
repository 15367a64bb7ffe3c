//! Flushing, draining and closing.

use super::*;

impl<P: Clone> Broker<P> {
    /// Seals every open batch so partial batches are delivered.
    pub fn flush(&mut self) {
        let ids: Vec<SubId> = self
            .subs
            .iter_mut()
            .filter_map(|(index, gen, s)| match &mut s.kind {
                Kind::Batch(b) if b.has_open() => {
                    b.seal();
                    Some(SubId { index, gen })
                }
                Kind::Group(wq) if wq.ready_len() > 0 => {
                    wq.flush();
                    Some(SubId { index, gen })
                }
                _ => None,
            })
            .collect();
        for id in ids {
            self.start(id);
        }
    }

    /// Refuses every later publish and subscribe with `CLOSED`, and flushes open batches.
    pub fn close(&mut self) {
        self.closed = true;
        self.flush();
    }

    /// Whether [`Broker::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether nothing is queued, ready or running (open batches count as queued).
    ///
    /// Work-queue messages count while their group has a member to take them; messages of a
    /// group whose members all left, and delayed messages not visible yet, do not (a close
    /// reports them, see [`Broker::remaining`]). Once closed, messages waiting for a retry do not
    /// count either (nor those parked behind them by key): a close lists them instead of waiting
    /// out their backoff.
    pub fn is_idle(&self) -> bool {
        self.queued == 0
            && self.in_flight == 0
            && self.groups.values().map(|&p| unpack(p)).all(|gid| {
                matches!(
                    self.subs.get(gid.index, gid.gen),
                    Some(Sub { kind: Kind::Group(wq), .. })
                        if wq.member_count() == 0
                            || wq.depth() == 0
                            || (self.closed && wq.in_flight() == 0 && wq.ready_len() == 0)
                )
            })
    }

    /// Whether deliveries are ready to run now.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Whether events wait for [`Broker::poll_event`].
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// How many timers and expiry watches are armed, live or not. Only [`Broker::fire_timers`]
    /// and [`Broker::next_deadline`] take any away, so a driver that compares it before and
    /// after another call learns whether that call armed one (and its deadline may be earlier).
    pub fn armed(&self) -> usize {
        self.timers.len() + self.watches.len()
    }
}
