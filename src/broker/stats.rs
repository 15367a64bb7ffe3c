//! Statistics snapshots for the bus, each subscription and each group.

use super::*;

impl<P: Clone> Broker<P> {
    /// Counters of the whole broker.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A statistics snapshot of the broker and every live subscription.
    pub fn stats(&self) -> BusStats {
        let per: Vec<SubscriptionStats> = self
            .subs
            .iter()
            .filter(|(_, _, s)| s.live && !matches!(s.kind, Kind::Group(_)))
            .map(|(_, _, s)| s.stats(s.order, self.group_name(s).map(|g| &**g)))
            .collect();
        let per = crate::order::sorted_by_key(per, |s| s.id);
        let groups: Vec<(u64, GroupStats)> = self
            .groups
            .values()
            .map(|&p| unpack(p))
            .filter_map(|gid| self.subs.get(gid.index, gid.gen))
            .filter_map(|g| match &g.kind {
                Kind::Group(wq) => Some((
                    g.order,
                    GroupStats {
                        name: wq.name().to_string(),
                        pattern: g.pattern.as_str().to_owned(),
                        members: wq.member_count() as u64,
                        depth: wq.depth() as u64,
                        retrying: wq.retrying() as u64,
                        in_flight: wq.in_flight() as u64,
                        published: wq.counters().published,
                        done: wq.counters().done,
                        retried: wq.counters().retried,
                        dead: wq.counters().dead,
                        expired: wq.counters().expired,
                        dropped: g.counters().dropped,
                        remembered: wq.remembered() as u64,
                    },
                )),
                _ => None,
            })
            .collect();
        let groups = crate::order::sorted_by_key(groups, |(order, _)| *order);
        let group_depth: usize = groups.iter().map(|(_, g)| g.depth as usize).sum();
        let c = &self.counters;
        BusStats {
            published: c.published,
            delivered: c.delivered,
            duplicates: c.duplicates,
            dropped: c.dropped,
            expired: c.expired,
            failed: c.failed,
            cancelled: c.cancelled,
            queued: (self.queued + group_depth) as u64,
            in_flight: self.in_flight as u64,
            subscriptions: per.len() as u64,
            latency: summary(&self.latency, self.direct_delivered),
            per_subscription: per,
            delayed: self.scheduled.len() as u64,
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            requests: self.request_stats(),
            logs: self.logs.stats(),
        }
    }

    /// A subscription's id (its order) and pattern, for a report about it; `(0, "")` when it is
    /// gone.
    pub fn describe(&self, id: SubId) -> (u64, String) {
        self.subs
            .get(id.index, id.gen)
            .map_or((0, String::new()), |s| {
                (s.order, s.pattern.as_str().to_owned())
            })
    }

    /// Statistics of one subscription (also after it unsubscribed, while deliveries finish).
    pub fn subscription_stats(&self, id: SubId) -> Option<SubscriptionStats> {
        self.subs
            .get(id.index, id.gen)
            .map(|s| s.stats(s.order, self.group_name(s).map(|g| &**g)))
    }

    pub(super) fn group_name(&self, s: &Sub<P>) -> Option<&Rc<str>> {
        match s.kind {
            Kind::Member(gid) => match self.subs.get(gid.index, gid.gen) {
                Some(Sub {
                    kind: Kind::Group(wq),
                    ..
                }) => Some(wq.name()),
                _ => None,
            },
            _ => None,
        }
    }
}
