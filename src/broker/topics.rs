//! Resolving topics to handles, the cached routes behind them, and their invalidation.

use super::*;

impl<P: Clone> Broker<P> {
    /// Validates `topic` and returns its handle (`INVALID_TOPIC` otherwise).
    // Inlined into every publish: the repeated topic's check is a few instructions, a call
    // around it cost about a fifth of a native publish.
    #[inline(always)]
    pub fn resolve(&mut self, topic: &str) -> Result<TopicHandle> {
        if let Some(handle) = self.resolved_last(topic) {
            return Ok(handle);
        }
        self.resolve_known(topic).map(|(handle, _)| handle)
    }

    /// The handle of `topic` when it is the topic resolved last (resolving it changes nothing).
    #[inline(always)]
    pub(crate) fn resolved_last(&self, topic: &str) -> Option<TopicHandle> {
        match &self.last_topic {
            Some((last, h)) if same_topic(last, topic) => {
                Some(TopicHandle::from_parts(*h, self.topics_gen))
            }
            _ => None,
        }
    }

    /// [`Broker::resolve`], and whether the topic was in the table already. A driver that
    /// caches routes keeps only those of known topics: a topic published once (every topic
    /// unique) is not worth a cache entry, and the second publish of a topic finds it known.
    pub fn resolve_known(&mut self, topic: &str) -> Result<(TopicHandle, bool)> {
        let gen = self.topics_gen;
        if let Some((last, h)) = &self.last_topic {
            if **last == *topic {
                return Ok((TopicHandle::from_parts(*h, gen), true));
            }
        }
        if let Some((name, &h)) = self.topic_ids.get_key_value(topic) {
            let h = h as u32;
            self.last_topic = Some((name.clone(), h));
            return Ok((TopicHandle::from_parts(h, gen), true));
        }
        validate_topic(topic)?;
        if self.topics.len() >= self.config.max_topics {
            self.clear_topics();
        }
        let topic: Rc<str> = Rc::from(topic);
        let h = self.topics.len() as u32;
        self.topics.push(TopicEntry {
            topic: topic.clone(),
            gen: u64::MAX,
            subs: Rc::from([]),
            all_direct: false,
            direct_gen: u32::MAX,
        });
        self.topic_ids.insert(topic.clone(), u64::from(h));
        // Into the trie only when a subscription change needs it (most topics never do).
        self.trie_pending.push(h);
        self.last_topic = Some((topic, h));
        Ok((TopicHandle::from_parts(h, self.topics_gen), false))
    }

    /// Forgets every resolved topic and bumps the table's generation: handles given out before
    /// are refused afterwards (never misrouted).
    pub fn clear_topics(&mut self) {
        self.last_topic = None;
        self.last_literal = None;
        self.topic_ids.clear();
        self.topic_trie.clear();
        self.trie_pending.clear();
        self.invalidated.clear();
        self.topics.clear();
        self.topics_gen = self.topics_gen.wrapping_add(1);
    }

    /// Marks stale the cached routes of the topics `pattern` reaches (and only those), after a
    /// subscription on it came or went.
    pub(super) fn invalidate_routes(&mut self, pattern: &Pattern) {
        let mut found = std::mem::take(&mut self.scratch_handles);
        found.clear();
        // A literal pattern reaches one topic, its own text: no walk (and the trie need not be
        // current). Found as a topic, it is one (topics hold no wildcard): no need to look at
        // its bytes first.
        let remembered = match &self.last_literal {
            Some((last, h)) if last.is_same(pattern) => Some(*h),
            _ => None,
        };
        if let Some(h) = remembered {
            found.push(h);
        } else if let Some(&h) = self.topic_ids.get(pattern.as_str()) {
            let h = h as u32;
            found.push(h);
            self.last_literal = Some((pattern.clone(), h));
        } else if pattern.is_literal() {
            // A topic not resolved yet: no cached route to mark.
        } else {
            for h in self.trie_pending.drain(..) {
                if let Some(entry) = self.topics.get(h as usize) {
                    self.topic_trie.insert(&entry.topic, h);
                }
            }
            self.topic_trie.matching(pattern, &mut found);
        }
        for &h in &found {
            if let Some(entry) = self.topics.get_mut(h as usize) {
                entry.gen = u64::MAX;
                entry.direct_gen = u32::MAX;
            }
        }
        if self.config.report_invalidated {
            self.invalidated.extend_from_slice(&found);
        }
        self.scratch_handles = found;
    }

    /// The topic handles whose cached route went stale since the last call (only with
    /// `report_invalidated`): a driver that caches routes by handle drops exactly these.
    pub fn take_invalidated(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.invalidated)
    }

    /// Whether cached routes went stale since [`Broker::take_invalidated`] last ran.
    pub fn has_invalidated(&self) -> bool {
        !self.invalidated.is_empty()
    }

    /// [`Broker::take_invalidated`] into `out` (appended), keeping this broker's buffer.
    pub fn drain_invalidated(&mut self, out: &mut Vec<u32>) {
        out.append(&mut self.invalidated);
    }

    /// The generation of the topic table: handles of another generation are stale.
    pub fn topics_generation(&self) -> u32 {
        self.topics_gen
    }

    pub(super) fn entry(&self, handle: TopicHandle) -> Result<&TopicEntry> {
        if handle.gen != self.topics_gen {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "stale topic handle {} (the topic table was reset after {} topics); resolve the topic again",
                    handle.index, self.config.max_topics
                ),
            ));
        }
        self.topics.get(handle.index as usize).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("unknown topic handle {}", handle.index),
            )
        })
    }

    /// The subscriptions `handle`'s topic reaches, in subscription order.
    #[inline(always)]
    pub fn route(&mut self, handle: TopicHandle) -> Result<Rc<[SubId]>> {
        let entry = self.entry(handle)?;
        if entry.gen == self.routes_gen {
            return Ok(entry.subs.clone());
        }
        self.route_stale(handle)
    }

    /// [`Broker::route`] when the cached route is stale: matches the topic again.
    pub(super) fn route_stale(&mut self, handle: TopicHandle) -> Result<Rc<[SubId]>> {
        let gen = self.routes_gen;
        let entry = self.entry(handle)?;
        let topic = entry.topic.clone();
        let list = self.match_topic(&topic);
        let entry = &mut self.topics[handle.index as usize];
        entry.gen = gen;
        entry.subs = list.clone();
        entry.direct_gen = u32::MAX;
        Ok(list)
    }

    /// The subscriptions a (valid) topic reaches, in subscription order, without caching.
    pub(super) fn match_topic(&mut self, topic: &str) -> Rc<[SubId]> {
        let mut found = std::mem::take(&mut self.scratch);
        found.clear();
        self.router.matches(topic, &mut found);
        let subs = &self.subs;
        let order = |id: &SubId| subs.get(id.index, id.gen).map_or(0, |s| s.order);
        // Each subscription's order looked up once, not at every comparison; `(order, id)`
        // pairs (orders are unique) sorted by the crate's one sort routine.
        let pair = |id: &SubId| (order(id), u64::from(id.index) << 32 | u64::from(id.gen));
        let unpair = |(_, id): (u64, u64)| SubId::from_parts((id >> 32) as u32, id as u32);
        const FEW: usize = 16;
        if found.len() <= 1 {
            // In order already (most topics have one subscriber).
        } else if found.len() <= FEW {
            let mut keyed = [(0, 0); FEW];
            for (k, id) in keyed.iter_mut().zip(&found) {
                *k = pair(id);
            }
            let keyed = &mut keyed[..found.len()];
            crate::order::sort_pairs(keyed);
            for (id, &k) in found.iter_mut().zip(keyed.iter()) {
                *id = unpair(k);
            }
        } else {
            let mut keyed: Vec<(u64, u64)> = found.iter().map(pair).collect();
            crate::order::sort_pairs(&mut keyed);
            for (id, &k) in found.iter_mut().zip(keyed.iter()) {
                *id = unpair(k);
            }
        }
        let list: Rc<[SubId]> = Rc::from(&found[..]);
        self.scratch = found;
        list
    }
}

/// `a == b`, comparing a topic of 8 to 16 bytes as two overlapping words: the last topic is
/// compared on every publish, and a call to `memcmp` cost more than the rest of the look-up.
#[inline(always)]
fn same_topic(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[at..at + 8]);
            u64::from_ne_bytes(w)
        };
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}
