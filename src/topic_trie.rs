//! The resolved topics as a trie, to answer the reverse of routing: which topics does a pattern
//! reach? A subscription change then invalidates only the cached routes it can change (its
//! pattern's topics) instead of every cached route.

use crate::children::Children;
use crate::topic::{is_reserved, Pattern, PatternToken, PatternTokens};

/// Topic handles (`u32`) by topic, walkable by pattern.
#[derive(Debug, Default)]
pub struct TopicTrie {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    /// A small vector for the usual one or few children, a map only for a wide level.
    children: Children<Node>,
    handle: Option<u32>,
}

impl TopicTrie {
    /// An empty trie.
    pub fn new() -> Self {
        TopicTrie::default()
    }

    /// Records `topic` (already validated) under `handle`.
    pub fn insert(&mut self, topic: &str, handle: u32) {
        let mut node = &mut self.root;
        for token in topic.split('.') {
            node = node.children.get_or_insert_with(token, Node::default);
        }
        node.handle = Some(handle);
    }

    /// Forgets every topic.
    pub fn clear(&mut self) {
        self.root = Node::default();
    }

    /// Appends the handle of every recorded topic that `pattern` matches (the rules of
    /// `topic::matches`: `*` one token, `>` one or more, wildcards never reach a `$` topic's
    /// first token).
    pub fn matching(&self, pattern: &Pattern, out: &mut Vec<u32>) {
        collect(&self.root, pattern.tokens(), true, out);
    }
}

/// Recursion depth is bounded by the pattern's token count (at most 256).
fn collect(node: &Node, mut rest: PatternTokens<'_>, first: bool, out: &mut Vec<u32>) {
    let Some(token) = rest.next() else {
        out.extend(node.handle);
        return;
    };
    match token {
        PatternToken::Literal(literal) => {
            if let Some(child) = node.children.get(literal) {
                collect(child, rest, false, out);
            }
        }
        PatternToken::Star => {
            for (name, child) in node.children.iter() {
                if !(first && is_reserved(name)) {
                    collect(child, rest.clone(), false, out);
                }
            }
        }
        PatternToken::Rest => {
            for (name, child) in node.children.iter() {
                if !(first && is_reserved(name)) {
                    everything_below(child, out);
                }
            }
        }
    }
}

/// The handles of `node` and of every node below it. Depth is bounded by the longest topic.
fn everything_below(node: &Node, out: &mut Vec<u32>) {
    out.extend(node.handle);
    for (_, child) in node.children.iter() {
        everything_below(child, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const TOPICS: &[&str] = &[
        "a",
        "a.b",
        "a.b.c",
        "a.x.c",
        "a.b.c.d",
        "b.b",
        "$errors",
        "$dead.g",
        "$dead.g.x",
        "orders.eu.created",
        "orders.us.created",
    ];
    const PATTERNS: &[&str] = &[
        "a",
        "a.b",
        "*",
        ">",
        "a.>",
        "a.*",
        "a.*.c",
        "*.b",
        "*.*.c",
        "*.>",
        "$dead.>",
        "$dead.*",
        "$errors",
        "orders.*.created",
        "orders.>",
        "x.>",
        "a.b.c.d.e",
    ];

    #[test]
    fn finds_exactly_the_topics_a_pattern_matches() {
        let mut trie = TopicTrie::new();
        for (h, t) in TOPICS.iter().enumerate() {
            trie.insert(t, h as u32);
        }
        for p in PATTERNS {
            let pattern = Pattern::parse(p).unwrap();
            let mut got = Vec::new();
            trie.matching(&pattern, &mut got);
            got.sort_unstable();
            let want: Vec<u32> = TOPICS
                .iter()
                .enumerate()
                .filter(|(_, t)| pattern.matches(t))
                .map(|(h, _)| h as u32)
                .collect();
            assert_eq!(got, want, "pattern {p}");
        }
        trie.clear();
        let mut got = Vec::new();
        trie.matching(&Pattern::parse(">").unwrap(), &mut got);
        assert!(got.is_empty());
    }

    #[test]
    fn a_wide_level_is_walked_whole() {
        // More children than a node keeps in its small vector.
        let mut trie = TopicTrie::new();
        let topics: Vec<String> = (0..3 * crate::children::FEW)
            .map(|i| format!("orders.{i}.created"))
            .collect();
        for (h, t) in topics.iter().enumerate() {
            trie.insert(t, h as u32);
        }
        trie.insert("orders.7.updated", 999);
        for p in [
            "orders.*.created",
            "orders.>",
            "orders.7.*",
            "orders.12.created",
            "*.*.updated",
        ] {
            let pattern = Pattern::parse(p).unwrap();
            let mut got = Vec::new();
            trie.matching(&pattern, &mut got);
            got.sort_unstable();
            let mut want: Vec<u32> = topics
                .iter()
                .enumerate()
                .filter(|(_, t)| pattern.matches(t))
                .map(|(h, _)| h as u32)
                .collect();
            if pattern.matches("orders.7.updated") {
                want.push(999);
            }
            assert_eq!(got, want, "pattern {p}");
        }
    }
}
