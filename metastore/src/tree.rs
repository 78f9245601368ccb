//! Trees (keyspaces) as the engine sees them: opaque, named by the caller.
//!
//! API boundary: the engine knows a tree only by its index and its on-disk
//! name, both given by the caller's [`Schema`] when the store is opened.
//! What a tree holds and how its keys are laid out belong to the caller
//! (the namespace's `tree.rs`), so a second engine inherits no namespace
//! knowledge and a new namespace tree needs no change here.

/// A tree of the store: an index into the schema the store was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeId(pub u8);

impl TreeId {
    /// Position of this tree in its schema (engines index arrays with it).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The on-disk names of the trees a store holds, fixed when it is opened:
/// `TreeId(i)` names `schema[i]`. Keep it to a handful of trees, never one
/// per directory or bucket: sled's space amplification grows with the
/// number of trees, and one transaction spans all of them.
pub type Schema = &'static [&'static str];

/// Most trees in a schema (one transaction spans every tree, and sled's
/// transactions are tested here with at most this many).
pub const SCHEMA_TREES_MAX: usize = 16;

/// Checks a schema: 1 to [`SCHEMA_TREES_MAX`] distinct, non-empty names.
/// A bad schema is a programmer error, so this panics.
pub(crate) fn assert_schema(schema: Schema) {
    assert!(!schema.is_empty() && schema.len() <= SCHEMA_TREES_MAX, "a schema holds 1 to {SCHEMA_TREES_MAX} trees");
    for (i, a) in schema.iter().enumerate() {
        assert!(!a.is_empty(), "tree names are not empty");
        assert!(!schema[..i].contains(a), "tree name {a:?} appears twice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_hold_distinct_names() {
        assert_schema(&["a", "b"]);
        assert!(std::panic::catch_unwind(|| assert_schema(&["a", "a"])).is_err());
        assert!(std::panic::catch_unwind(|| assert_schema(&[])).is_err());
    }
}
