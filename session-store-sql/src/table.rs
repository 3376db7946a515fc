//! Table names: checked once, then written into the text of every statement.
//!
//! An identifier cannot be a bind parameter, so the name is part of the SQL. A [`Table`]
//! holds only ASCII letters, digits and underscores and is quoted besides, so a name can
//! neither inject SQL nor clash with a keyword such as `user` or `order`.

use crate::Error;

/// The table a store uses unless told otherwise.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// PostgreSQL silently truncates longer identifiers, so two longer names could end up
/// naming one table.
const MAX_LEN: usize = 63;
const INDEX_SUFFIX: &str = "_expires_at_idx";
const USER_INDEX_SUFFIX: &str = "_user_id_idx";

/// A checked table name and the names of its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    name: String,
    index: String,
    user_index: String,
}

impl Table {
    /// Checks `name` against `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    pub(crate) fn new(name: &str) -> Result<Self, Error> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || !rest_ok || name.len() > MAX_LEN {
            return Err(Error::InvalidTableName(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            index: index_name(name, INDEX_SUFFIX, "exp"),
            user_index: index_name(name, USER_INDEX_SUFFIX, "usr"),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The table as SQL text.
    pub(crate) fn sql(&self) -> String {
        format!("\"{}\"", self.name)
    }

    /// The expiry index as SQL text.
    pub(crate) fn index_sql(&self) -> String {
        format!("\"{}\"", self.index)
    }

    /// The index of the `user_id` column as SQL text.
    pub(crate) fn user_index_sql(&self) -> String {
        format!("\"{}\"", self.user_index)
    }
}

/// `<table><suffix>` (e.g. `sessions_expires_at_idx`) while that fits in 63 bytes. Longer
/// names keep a prefix and add a hash of the whole name and the 3-letter `short` suffix: on
/// PostgreSQL indexes share one namespace with tables, and a truncated name could be an
/// existing table (or another table's index), which `CREATE INDEX IF NOT EXISTS` would take
/// as "done" and leave the table unindexed.
fn index_name(table: &str, suffix: &str, short: &str) -> String {
    if table.len() + suffix.len() <= MAX_LEN {
        return format!("{table}{suffix}");
    }
    // 38 + 1 + 16 + 1 + 3 + 4 = 63. The name is ASCII, so any byte index is a char boundary.
    format!("{}_{:016x}_{short}_idx", &table[..38], fnv1a(table.as_bytes()))
}

/// FNV-1a: tiny and, unlike std's hashers, specified, so the index name stays the same
/// across Rust versions and `migrate` keeps finding it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_identifiers_up_to_63_bytes() {
        for good in ["sessions", "_", "a", "S_1", "user", &"x".repeat(63)] {
            assert_eq!(Table::new(good).unwrap().name(), good);
        }
    }

    #[test]
    fn refuses_everything_else() {
        let too_long = "x".repeat(64);
        for bad in ["", "1abc", "a-b", "a b", "a;drop", "t\"", "sch.tbl", "é", "a\0", &too_long] {
            match Table::new(bad) {
                Err(Error::InvalidTableName(name)) => assert_eq!(name, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn index_names_fit_and_stay_apart() {
        assert_eq!(Table::new("sessions").unwrap().index, "sessions_expires_at_idx");
        let a = Table::new(&format!("{}a", "x".repeat(62))).unwrap();
        let b = Table::new(&format!("{}b", "x".repeat(62))).unwrap();
        assert_eq!(a.index.len(), MAX_LEN);
        assert_ne!(a.index, b.index);
        assert_ne!(a.index, a.name);
        assert_eq!(Table::new(&a.name).unwrap().index, a.index, "stable across calls");
        assert!(Table::new(&a.index).is_ok(), "index names are valid identifiers");
    }

    #[test]
    fn user_index_names_fit_and_stay_apart() {
        assert_eq!(Table::new("sessions").unwrap().user_index, "sessions_user_id_idx");
        for len in [50, 51, 52, 63] {
            let a = Table::new(&format!("{}a", "x".repeat(len - 1))).unwrap();
            let b = Table::new(&format!("{}b", "x".repeat(len - 1))).unwrap();
            assert!(a.user_index.len() <= MAX_LEN, "{}", a.user_index);
            assert_ne!(a.user_index, b.user_index);
            assert_ne!(a.user_index, a.index);
            assert_ne!(a.user_index, a.name);
            assert!(Table::new(&a.user_index).is_ok(), "index names are valid identifiers");
        }
    }

    #[test]
    fn quoted_for_sql() {
        assert_eq!(Table::new("user").unwrap().sql(), "\"user\"");
    }
}
