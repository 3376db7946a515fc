//! The names of the files in the store's folder, and the only place they are made.
//!
//! Every name is a [`RecordId`]'s `Display` (exactly 64 lowercase hex characters) plus a
//! fixed suffix, so no name can hold a separator, `..` or anything a caller chose: a path
//! outside the folder cannot be formed. Folder entries are read back with the strict
//! `RecordId` parser, so the sweep never touches a file this store did not name.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use session_core::RecordId;

/// What a file in the folder holds for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<id>`: the record, replaced as a whole by rename.
    Record,
    /// `<id>.lock`: empty, only ever locked; never renamed.
    Lock,
    /// `<id>.tmp`: the next record while it is written, or the leftover of a crash.
    Temp,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Self::Record => "",
            Self::Lock => ".lock",
            Self::Temp => ".tmp",
        }
    }
}

/// The store's folder.
#[derive(Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, id: &RecordId, kind: Kind) -> PathBuf {
        let mut name = id.to_string();
        name.push_str(kind.suffix());
        self.dir.join(name)
    }
}

/// The session and kind of a folder entry, or `None` for a name this store never makes.
pub(crate) fn classify(name: &OsStr) -> Option<(RecordId, Kind)> {
    let name = name.to_str()?;
    let (stem, kind) = [Kind::Lock, Kind::Temp]
        .into_iter()
        .find_map(|kind| name.strip_suffix(kind.suffix()).map(|stem| (stem, kind)))
        .unwrap_or((name, Kind::Record));
    Some((stem.parse().ok()?, kind))
}

#[cfg(test)]
mod tests {
    use std::path::Component;

    use session_core::Id;

    use super::*;

    #[test]
    fn names_are_the_hex_id_plus_a_fixed_suffix_inside_the_folder() {
        let layout = Layout::new(PathBuf::from("/srv/sessions"));
        let id = Id::random().record_id();
        for kind in [Kind::Record, Kind::Lock, Kind::Temp] {
            let path = layout.path(&id, kind);
            assert_eq!(path.parent(), Some(layout.dir()));
            let name = path.file_name().and_then(OsStr::to_str).unwrap();
            let stem = &name[..64];
            assert!(stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(&name[64..], kind.suffix());
            assert!(matches!(path.components().next_back(), Some(Component::Normal(_))));
            assert_eq!(classify(path.file_name().unwrap()), Some((id, kind)));
        }
    }

    #[test]
    fn foreign_names_are_not_ours() {
        let hex = Id::random().record_id().to_string();
        for name in [
            String::new(),
            "..".into(),
            "README".into(),
            hex[..63].into(),
            hex.to_uppercase(),
            format!("{hex}.tmp.tmp"),
            format!("{hex}.lock.tmp"),
            format!("{hex}.bak"),
            format!("../{hex}"),
            format!(".{hex}"),
        ] {
            assert_eq!(classify(OsStr::new(&name)), None, "{name:?}");
        }
    }
}
