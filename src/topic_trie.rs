//! The resolved topics as a trie, to answer the reverse of routing: which topics does a pattern
//! reach? A subscription change then invalidates only the cached routes it can change (its
//! pattern's topics) instead of every cached route.

use hashbrown::HashMap;

use crate::topic::{is_reserved, Pattern, PatternToken};

/// Topic handles (`u32`) by topic, walkable by pattern.
#[derive(Debug, Default)]
pub struct TopicTrie {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
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
            if !node.children.contains_key(token) {
                node.children.insert(token.into(), Node::default());
            }
            node = node
                .children
                .get_mut(token)
                .expect("the child was inserted just above");
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
fn collect(node: &Node, tokens: &[PatternToken], first: bool, out: &mut Vec<u32>) {
    let Some((token, rest)) = tokens.split_first() else {
        out.extend(node.handle);
        return;
    };
    match token {
        PatternToken::Literal(literal) => {
            if let Some(child) = node.children.get(&**literal) {
                collect(child, rest, false, out);
            }
        }
        PatternToken::Star => {
            for (name, child) in &node.children {
                if !(first && is_reserved(name)) {
                    collect(child, rest, false, out);
                }
            }
        }
        PatternToken::Rest => {
            for (name, child) in &node.children {
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
    for child in node.children.values() {
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
}
