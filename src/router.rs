//! Subscription trie: finds every subscriber whose pattern matches a topic.
//!
//! Memory follows the subscriptions: a node's literal children sit in a small, exactly sized
//! slice, scanned linearly, until there are more than `children::FEW`; only then in a hash map
//! (see `children`). Most nodes of a topic tree have one child (`orders.<id>.created`), and a hash
//! map's smallest table holds four entries. Up to two values sit in the node itself, more in an
//! exactly sized slice.

use crate::children::{push_exact, swap_remove_exact, Children};
use crate::topic::{is_reserved, Pattern, PatternToken, PatternTokens};

/// Maps patterns to values (e.g. subscription ids) and finds the values
/// whose pattern matches a topic.
///
/// The same (pattern, value) pair inserted twice is held twice.
#[derive(Debug)]
pub struct Router<V> {
    root: Node<V>,
    len: usize,
}

#[derive(Debug)]
struct Node<V> {
    literals: Children<Node<V>>,
    /// Values of patterns that end exactly at this node.
    exact: Values<V>,
    /// Its wildcards, boxed: most nodes (a topic tree's literal levels) have none.
    wild: Option<Box<Wild<V>>>,
}

#[derive(Debug)]
struct Wild<V> {
    star: Option<Node<V>>,
    /// Values of patterns whose '>' sits right below the node.
    rest: Values<V>,
}

/// The values at one place of the trie: up to two in place, more in an exactly sized slice. A
/// topic's usual one or two subscribers take no allocation, and a subscription coming and going
/// beside one that stays allocates and frees nothing.
#[derive(Debug)]
enum Values<V> {
    Empty,
    One(V),
    Two([V; 2]),
    /// Three or more.
    More(Box<[V]>),
}

impl<V> Values<V> {
    fn as_slice(&self) -> &[V] {
        match self {
            Values::Empty => &[],
            Values::One(v) => std::slice::from_ref(v),
            Values::Two(v) => v,
            Values::More(v) => v,
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Values::Empty)
    }
}

impl<V: Copy + Eq> Values<V> {
    fn push(&mut self, value: V) {
        *self = match std::mem::replace(self, Values::Empty) {
            Values::Empty => Values::One(value),
            Values::One(a) => Values::Two([a, value]),
            Values::Two([a, b]) => Values::More(Box::new([a, b, value])),
            Values::More(mut more) => {
                push_exact(&mut more, value);
                Values::More(more)
            }
        };
    }

    /// Removes one `value`; returns whether it was there. Order is not kept.
    fn remove(&mut self, value: V) -> bool {
        let left = match self {
            Values::Empty => return false,
            Values::One(a) if *a == value => Values::Empty,
            Values::Two([a, b]) if *a == value => Values::One(*b),
            Values::Two([a, b]) if *b == value => Values::One(*a),
            Values::One(_) | Values::Two(_) => return false,
            Values::More(more) => {
                let Some(at) = more.iter().position(|v| *v == value) else {
                    return false;
                };
                if more.len() > 3 {
                    swap_remove_exact(more, at);
                    return true;
                }
                let mut kept = more.iter().enumerate().filter(|(i, _)| *i != at);
                match (kept.next(), kept.next()) {
                    (Some((_, &a)), Some((_, &b))) => Values::Two([a, b]),
                    _ => unreachable!("three values, one removed"),
                }
            }
        };
        *self = left;
        true
    }
}

impl<V> Node<V> {
    fn new() -> Self {
        Node {
            literals: Children::default(),
            exact: Values::Empty,
            wild: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.exact.is_empty() && self.wild.is_none()
    }

    fn star(&self) -> Option<&Node<V>> {
        self.wild.as_ref()?.star.as_ref()
    }

    fn rest(&self) -> &[V] {
        self.wild.as_ref().map_or(&[], |w| w.rest.as_slice())
    }

    fn wild_mut(&mut self) -> &mut Wild<V> {
        self.wild.get_or_insert_with(|| {
            Box::new(Wild {
                star: None,
                rest: Values::Empty,
            })
        })
    }

    /// Drops the wildcard part once it holds nothing, so memory follows the subscriptions.
    fn prune_wild(&mut self) {
        if self
            .wild
            .as_ref()
            .is_some_and(|w| w.star.is_none() && w.rest.is_empty())
        {
            self.wild = None;
        }
    }

    #[cfg(test)]
    fn count_below(&self) -> usize {
        let literal_nodes: usize = self.literals.iter().map(|(_, n)| 1 + n.count_below()).sum();
        let star_nodes = self.star().map_or(0, |n| 1 + n.count_below());
        literal_nodes + star_nodes
    }
}

impl<V: Copy + Eq> Default for Router<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Copy + Eq> Router<V> {
    /// An empty router.
    pub fn new() -> Self {
        Router {
            root: Node::new(),
            len: 0,
        }
    }

    /// Adds one (pattern, value) entry.
    pub fn insert(&mut self, pattern: &Pattern, value: V) {
        let mut node = &mut self.root;
        for token in pattern.tokens() {
            node = match token {
                PatternToken::Literal(literal) => {
                    node.literals.get_or_insert_with(literal, Node::new)
                }
                PatternToken::Star => node.wild_mut().star.get_or_insert_with(Node::new),
                PatternToken::Rest => {
                    // Pattern::parse guarantees '>' is the last token.
                    node.wild_mut().rest.push(value);
                    self.len += 1;
                    return;
                }
            };
        }
        node.exact.push(value);
        self.len += 1;
    }

    /// Removes one (pattern, value) entry; returns whether it was there. Prunes empty nodes so memory follows the live subscriptions.
    pub fn remove(&mut self, pattern: &Pattern, value: V) -> bool {
        // One walk down, without recursion; a second walk prunes, only when the pattern's last
        // value went (a subscription leaving a topic others keep needs none).
        let Some(values) = values_mut(&mut self.root, pattern.tokens()) else {
            return false;
        };
        if !values.remove(value) {
            return false;
        }
        if values.is_empty() {
            prune_below(&mut self.root, pattern.tokens());
        }
        self.len -= 1;
        true
    }

    /// Appends every value whose pattern matches the (already validated) topic to `out`. Order is unspecified. Cost grows with the topic's depth and the number of matches, not with the number of subscriptions.
    pub fn matches(&self, topic: &str, out: &mut Vec<V>) {
        let (first, rest) = split_level(topic);
        // Reserved topics are reachable only through a literal first token.
        if !is_reserved(first) {
            out.extend_from_slice(self.root.rest());
            if let Some(star) = self.root.star() {
                collect(star, rest, out);
            }
        }
        if let Some(child) = self.root.literals.get(first) {
            collect(child, rest, out);
        }
    }

    /// Number of (pattern, value) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the router holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.root.count_below()
    }
}

/// Splits off the first level of a topic; the rest is `None` when it was the last level.
#[inline]
fn split_level(topic: &str) -> (&str, Option<&str>) {
    // Levels are short: a plain scan beats a general substring search here.
    match topic.as_bytes().iter().position(|&b| b == b'.') {
        Some(dot) => (&topic[..dot], Some(&topic[dot + 1..])),
        None => (topic, None),
    }
}

/// Recursion depth is bounded by the topic's token count (at most 256).
fn collect<V: Copy>(node: &Node<V>, remaining: Option<&str>, out: &mut Vec<V>) {
    let Some(remaining) = remaining else {
        out.extend_from_slice(node.exact.as_slice());
        return;
    };
    let (level, rest) = split_level(remaining);
    out.extend_from_slice(node.rest());
    if let Some(child) = node.literals.get(level) {
        collect(child, rest, out);
    }
    if let Some(star) = node.star() {
        collect(star, rest, out);
    }
}

/// Where the values of the pattern whose tokens are `tokens` sit, when its nodes exist.
fn values_mut<'a, V>(
    root: &'a mut Node<V>,
    tokens: PatternTokens<'_>,
) -> Option<&'a mut Values<V>> {
    let mut node = root;
    for token in tokens {
        node = match token {
            PatternToken::Literal(literal) => node.literals.get_mut(literal)?,
            PatternToken::Star => node.wild.as_deref_mut()?.star.as_mut()?,
            // Pattern::parse guarantees '>' is the last token.
            PatternToken::Rest => return Some(&mut node.wild.as_deref_mut()?.rest),
        };
    }
    Some(&mut node.exact)
}

/// Drops the nodes and wildcard parts left empty along the path of `below` (their values were
/// removed). Recursion depth is bounded by the pattern's token count (at most 256).
fn prune_below<V: Copy + Eq>(node: &mut Node<V>, mut below: PatternTokens<'_>) {
    let Some(token) = below.next() else {
        return;
    };
    match token {
        PatternToken::Rest => node.prune_wild(),
        PatternToken::Star => {
            let Some(star) = node.wild.as_deref_mut().and_then(|w| w.star.as_mut()) else {
                return;
            };
            prune_below(star, below);
            if star.is_empty() {
                if let Some(w) = node.wild.as_deref_mut() {
                    w.star = None;
                }
                node.prune_wild();
            }
        }
        PatternToken::Literal(literal) => {
            let Some(child) = node.literals.get_mut(literal) else {
                return;
            };
            prune_below(child, below);
            if child.is_empty() {
                node.literals.remove(literal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn matched(router: &Router<u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        router.matches(topic, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn literal_children_match_by_every_byte() {
        // Short tokens are compared without memcmp: same length, differing at either end or
        // in the middle, up to and past 8 bytes.
        let tokens = [
            "a",
            "b",
            "ab",
            "ba",
            "abcdefgh",
            "abcdefgX",
            "Xbcdefgh",
            "abcXefgh",
            "abcdefghi",
            "abcdefghX",
            "é",
            "e\u{301}",
        ];
        // Six children a parent: the small vector, scanned (not the map).
        let topic = |i: usize, t: &str| format!("x{}.{t}", i / 6);
        let mut router = Router::new();
        for (value, t) in tokens.iter().enumerate() {
            router.insert(&pattern(&topic(value, t)), value as u32);
        }
        for (value, t) in tokens.iter().enumerate() {
            assert_eq!(
                matched(&router, &topic(value, t)),
                vec![value as u32],
                "{t}"
            );
        }
        assert!(matched(&router, "x0.abcdefg").is_empty());
        assert!(matched(&router, "x0.abcdefgx").is_empty());
        assert!(matched(&router, "x1.c").is_empty());
    }

    fn sample_router() -> Router<u32> {
        let mut router = Router::new();
        for (value, text) in [
            "a", "a.b", "a.*", "a.>", "*.b", ">", "*", "$sys.>", "$sys.*", "a.*.c", "a.b",
        ]
        .into_iter()
        .enumerate()
        {
            router.insert(&pattern(text), value as u32);
        }
        router
    }

    #[test]
    fn finds_every_matching_pattern() {
        let router = sample_router();
        assert_eq!(router.len(), 11);
        assert_eq!(matched(&router, "a"), vec![0, 5, 6]);
        assert_eq!(matched(&router, "a.b"), vec![1, 2, 3, 4, 5, 10]);
        assert_eq!(matched(&router, "a.x.c"), vec![3, 5, 9]);
        assert_eq!(matched(&router, "b"), vec![5, 6]);
        assert_eq!(matched(&router, "b.c"), vec![5]);
    }

    #[test]
    fn reserved_topics_need_a_literal_first_token() {
        let router = sample_router();
        assert_eq!(matched(&router, "$sys"), Vec::<u32>::new());
        assert_eq!(matched(&router, "$sys.x"), vec![7, 8]);
        assert_eq!(matched(&router, "$sys.b"), vec![7, 8]);
        assert_eq!(matched(&router, "a.$b"), vec![2, 3, 5]);
    }

    #[test]
    fn appends_without_clearing() {
        let router = sample_router();
        let mut out = vec![99];
        router.matches("b.c", &mut out);
        assert_eq!(out, vec![99, 5]);
    }

    #[test]
    fn remove_takes_one_entry_at_a_time() {
        let mut router = Router::new();
        let twice = pattern("a.*");
        router.insert(&twice, 1u32);
        router.insert(&twice, 1);
        router.insert(&twice, 2);
        assert!(!router.remove(&twice, 3));
        assert!(!router.remove(&pattern("a.b"), 1));
        assert!(!router.remove(&pattern("a.>"), 1));
        assert!(router.remove(&twice, 1));
        assert_eq!(matched(&router, "a.x"), vec![1, 2]);
        assert!(router.remove(&twice, 1));
        assert!(!router.remove(&twice, 1));
        assert_eq!(matched(&router, "a.x"), vec![2]);
        assert_eq!(router.len(), 1);
    }

    #[test]
    fn values_move_between_the_node_and_a_slice() {
        // Up to two values sit in the node, more in a slice: every count up to five, each
        // value removed from each position, on an exact pattern and on a '>'.
        for text in ["a.b", "a.>"] {
            let p = pattern(text);
            for n in 1..=5u32 {
                for gone in 0..n {
                    let mut router = Router::new();
                    for v in 0..n {
                        router.insert(&p, v);
                    }
                    let all: Vec<u32> = (0..n).collect();
                    assert_eq!(matched(&router, "a.b"), all, "{text} {n}");
                    assert!(router.remove(&p, gone), "{text} {n} {gone}");
                    assert!(!router.remove(&p, gone), "{text} {n} {gone}");
                    let left: Vec<u32> = (0..n).filter(|v| *v != gone).collect();
                    assert_eq!(matched(&router, "a.b"), left, "{text} {n} {gone}");
                    assert_eq!(router.len(), left.len());
                    for v in left {
                        assert!(router.remove(&p, v));
                    }
                    assert!(router.is_empty());
                    assert_eq!(router.node_count(), 0, "{text} {n} {gone}");
                }
            }
        }
    }

    #[test]
    fn removing_everything_prunes_every_node() {
        let mut router = sample_router();
        assert!(router.node_count() > 0);
        let texts = [
            "a", "a.b", "a.*", "a.>", "*.b", ">", "*", "$sys.>", "$sys.*", "a.*.c", "a.b",
        ];
        for (value, text) in texts.iter().enumerate().rev() {
            assert!(router.remove(&pattern(text), value as u32), "{text}");
        }
        assert_eq!(router.len(), 0);
        assert!(router.is_empty());
        assert_eq!(router.node_count(), 0);
        assert_eq!(matched(&router, "a.b"), Vec::<u32>::new());
    }

    #[test]
    fn partial_removal_keeps_shared_prefixes() {
        let mut router = Router::new();
        router.insert(&pattern("a.b.c"), 1u32);
        router.insert(&pattern("a.b"), 2);
        assert_eq!(router.node_count(), 3);
        assert!(router.remove(&pattern("a.b.c"), 1));
        assert_eq!(router.node_count(), 2);
        assert_eq!(matched(&router, "a.b"), vec![2]);
    }

    #[test]
    fn wildcard_parts_are_made_when_needed_and_dropped_when_empty() {
        let mut router = Router::new();
        router.insert(&pattern("a.b"), 1);
        assert!(router.root.wild.is_none());
        assert!(router.root.literals.get("a").unwrap().wild.is_none());
        router.insert(&pattern(">"), 2);
        router.insert(&pattern("a.*"), 3);
        router.insert(&pattern("*.b"), 4);
        assert_eq!(matched(&router, "a.b"), vec![1, 2, 3, 4]);
        assert!(router.remove(&pattern(">"), 2));
        assert!(
            router.root.wild.is_some(),
            "`*.b` still needs the root's star"
        );
        assert!(router.remove(&pattern("*.b"), 4));
        assert!(router.root.wild.is_none());
        assert!(router.remove(&pattern("a.*"), 3));
        assert!(!router.remove(&pattern("a.*"), 3));
        assert!(!router.remove(&pattern("a.>"), 3));
        assert!(router.root.literals.get("a").unwrap().wild.is_none());
        assert_eq!(matched(&router, "a.b"), vec![1]);
        assert_eq!(router.node_count(), 2);
    }

    #[test]
    fn a_level_with_many_children_moves_to_a_map_and_back() {
        let mut router = Router::new();
        let n = (crate::children::FEW * 3) as u32;
        for i in 0..n {
            router.insert(&pattern(&format!("orders.{i}.created")), i);
            router.insert(&pattern(&format!("orders.{i}.>")), 1000 + i);
        }
        router.insert(&pattern("orders.*.created"), 5000);
        assert!(matches!(
            router.root.literals.get("orders").unwrap().literals,
            Children::Many(_)
        ));
        for i in 0..n {
            assert_eq!(
                matched(&router, &format!("orders.{i}.created")),
                vec![i, 1000 + i, 5000]
            );
        }
        assert_eq!(matched(&router, &format!("orders.{n}.created")), vec![5000]);
        for i in 0..n {
            assert!(router.remove(&pattern(&format!("orders.{i}.created")), i));
            assert!(router.remove(&pattern(&format!("orders.{i}.>")), 1000 + i));
            for j in (i + 1)..n {
                assert_eq!(
                    matched(&router, &format!("orders.{j}.created")),
                    vec![j, 1000 + j, 5000]
                );
            }
            assert_eq!(matched(&router, &format!("orders.{i}.created")), vec![5000]);
        }
        assert!(matches!(
            router.root.literals.get("orders").unwrap().literals,
            Children::Few(_)
        ));
        assert!(router.remove(&pattern("orders.*.created"), 5000));
        assert_eq!(router.node_count(), 0);
        assert!(router.is_empty());
    }

    #[test]
    fn deepest_topic_does_not_overflow() {
        let deep = vec!["a"; crate::topic::MAX_TOKENS].join(".");
        let mut router = Router::new();
        router.insert(&pattern(&deep), 1u32);
        router.insert(&pattern(&vec!["*"; crate::topic::MAX_TOKENS].join(".")), 2);
        router.insert(&pattern("a.>"), 3);
        assert_eq!(matched(&router, &deep), vec![1, 2, 3]);
        assert!(router.remove(&pattern(&deep), 1));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Independent reference: compares token lists, with the reserved
        /// rule applied to the whole pattern.
        fn reference_matches(pattern: &[&str], topic: &[&str]) -> bool {
            let reserved = topic[0].starts_with('$');
            if reserved && (pattern[0] == "*" || pattern[0] == ">") {
                return false;
            }
            levels_match(pattern, topic)
        }

        fn levels_match(pattern: &[&str], topic: &[&str]) -> bool {
            match (pattern.first(), topic.first()) {
                (None, None) => true,
                (Some(&">"), Some(_)) => pattern.len() == 1,
                (Some(&"*"), Some(_)) => levels_match(&pattern[1..], &topic[1..]),
                (Some(p), Some(t)) => p == t && levels_match(&pattern[1..], &topic[1..]),
                _ => false,
            }
        }

        fn topic_tokens() -> impl Strategy<Value = Vec<&'static str>> {
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "$x", "ü"]), 1..=6)
        }

        fn pattern_tokens() -> impl Strategy<Value = Vec<&'static str>> {
            prop::collection::vec(
                prop::sample::select(vec!["a", "b", "c", "$x", "ü", "*", ">"]),
                1..=6,
            )
            .prop_map(|mut tokens| {
                // Keep only a trailing '>' so every generated pattern is valid.
                let last = tokens.len() - 1;
                for token in &mut tokens[..last] {
                    if *token == ">" {
                        *token = "*";
                    }
                }
                tokens
            })
        }

        proptest! {
            #[test]
            fn router_agrees_with_reference(
                patterns in prop::collection::vec(pattern_tokens(), 1..60),
                topics in prop::collection::vec(topic_tokens(), 1..20),
                removed in prop::collection::vec(any::<bool>(), 60),
            ) {
                let mut router = Router::new();
                for (value, tokens) in patterns.iter().enumerate() {
                    router.insert(&Pattern::parse(&tokens.join(".")).unwrap(), value);
                }
                for (value, tokens) in patterns.iter().enumerate() {
                    if removed[value] {
                        prop_assert!(router.remove(&Pattern::parse(&tokens.join(".")).unwrap(), value));
                    }
                }
                let live = removed[..patterns.len()].iter().filter(|r| !**r).count();
                prop_assert_eq!(router.len(), live);

                for topic in &topics {
                    let text = topic.join(".");
                    prop_assert!(validate_topic_ok(&text));
                    let mut got = Vec::new();
                    router.matches(&text, &mut got);
                    got.sort_unstable();
                    let expected: Vec<usize> = patterns
                        .iter()
                        .enumerate()
                        .filter(|(value, p)| !removed[*value] && reference_matches(p, topic))
                        .map(|(value, _)| value)
                        .collect();
                    prop_assert_eq!(&got, &expected, "topic {}", text);

                    for p in &patterns {
                        let parsed = Pattern::parse(&p.join(".")).unwrap();
                        prop_assert_eq!(parsed.matches(&text), reference_matches(p, topic),
                            "pattern {} topic {}", parsed.as_str(), text);
                    }
                }
            }
        }

        fn validate_topic_ok(topic: &str) -> bool {
            crate::topic::validate_topic(topic).is_ok()
        }
    }
}
