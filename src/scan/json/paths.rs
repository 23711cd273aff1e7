//! The tree of paths a scan looks for, and what it does at each.

/// One step of a path.
#[derive(Debug)]
pub enum Step {
    /// An object member with this key.
    Key(&'static [u8]),
    /// Any element of an array.
    Element,
}

/// What to do with the value found at a node's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing; walk into it only to reach children.
    Walk,
    /// Retain the raw value up to the scanner's cap (the first such value only).
    Capture,
    /// Record the raw value (small) under this slot number; a later value at the same path
    /// replaces it, as JSON parsers take the last of duplicate keys.
    Scalar(u8),
    /// Record every raw value found at this path (for paths under arrays).
    EachScalar(u8),
    /// Count the values found at this path, keeping nothing.
    Count(u8),
    /// Count the values found at this path and add up their raw sizes in bytes (one measured
    /// path at a time: not inside another measured value).
    Measure(u8),
}

/// A path in the tree of values to find.
#[derive(Debug)]
pub struct Node {
    /// How this node is reached from its parent.
    pub step: Step,
    /// What to do with the value here.
    pub action: Action,
    /// Paths below this one.
    pub children: &'static [Node],
}

impl Node {
    /// The top-level value, walked to reach `children`.
    pub const fn root(children: &'static [Node]) -> Node {
        Node {
            step: Step::Element,
            action: Action::Walk,
            children,
        }
    }

    /// The member `key` of an object.
    pub const fn key(key: &'static [u8], action: Action, children: &'static [Node]) -> Node {
        Node {
            step: Step::Key(key),
            action,
            children,
        }
    }

    /// Every element of an array.
    pub const fn element(action: Action, children: &'static [Node]) -> Node {
        Node {
            step: Step::Element,
            action,
            children,
        }
    }

    pub(super) fn capture_nodes(&self) -> usize {
        usize::from(self.action == Action::Capture)
            + self.children.iter().map(Node::capture_nodes).sum::<usize>()
    }

    pub(super) fn child_for_key(&self, key: &[u8]) -> Option<&'static Node> {
        self.children
            .iter()
            .find(|c| matches!(c.step, Step::Key(k) if k == key))
    }

    pub(super) fn element_child(&self) -> Option<&'static Node> {
        self.children.iter().find(|c| matches!(c.step, Step::Element))
    }
}
