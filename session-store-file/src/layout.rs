//! The names of the files in the store's folder, and the only place they are made.
//!
//! Every name is a [`RecordId`]'s `Display` (exactly 64 lowercase hex characters) plus a
//! fixed suffix, so no name can hold a separator, `..` or anything a caller chose: a path
//! outside the folder cannot be formed. Folder entries are read back with the strict
//! `RecordId` parser, so the sweep never touches a file this store did not name.
//!
//! User names never become paths: a user's index is named by the SHA-256 of the name
//! ([`UserKey`]), written the same way, in the `users` subfolder.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use session_core::RecordId;
use sha2::{Digest, Sha256};

/// The name of the subfolder holding the per-user indexes.
const USERS: &str = "users";

/// What a file in the folder holds for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<id>`: the record (or, under `users`, the index), replaced as a whole by rename.
    Record,
    /// `<id>.lock`: empty, only ever locked; never renamed.
    Lock,
    /// `<id>.tmp`: the next version while it is written, or the leftover of a crash.
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

/// Names a user's index file: the SHA-256 of the user name, so any name (with `/`, `..`,
/// NUL or thousands of characters) maps to 64 hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserKey(RecordId);

impl UserKey {
    pub(crate) fn of(user: &str) -> Self {
        Self(RecordId::from_bytes(Sha256::digest(user.as_bytes()).into()))
    }
}

/// The store's folder.
#[derive(Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
    users: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf) -> Self {
        let users = dir.join(USERS);
        Self { dir, users }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The subfolder of the user indexes; made by the first index written.
    pub(crate) fn users_dir(&self) -> &Path {
        &self.users
    }

    pub(crate) fn path(&self, id: &RecordId, kind: Kind) -> PathBuf {
        name_in(&self.dir, id, kind)
    }

    pub(crate) fn user_path(&self, key: &UserKey, kind: Kind) -> PathBuf {
        name_in(&self.users, &key.0, kind)
    }
}

fn name_in(dir: &Path, id: &RecordId, kind: Kind) -> PathBuf {
    let mut name = id.to_string();
    name.push_str(kind.suffix());
    dir.join(name)
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

/// As [`classify`], for an entry of the `users` subfolder.
pub(crate) fn classify_user(name: &OsStr) -> Option<(UserKey, Kind)> {
    classify(name).map(|(id, kind)| (UserKey(id), kind))
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
    fn user_names_become_hex_digests_inside_the_users_folder() {
        let layout = Layout::new(PathBuf::from("/srv/sessions"));
        for user in ["alice", "../../etc/passwd", "a/b", "..", "", "nul\0byte", &"x".repeat(5000)] {
            let key = UserKey::of(user);
            for kind in [Kind::Record, Kind::Lock, Kind::Temp] {
                let path = layout.user_path(&key, kind);
                assert_eq!(path.parent(), Some(layout.users_dir()), "{user:?}");
                assert_eq!(layout.users_dir().parent(), Some(layout.dir()));
                assert_eq!(classify_user(path.file_name().unwrap()), Some((key, kind)));
            }
        }
        assert_ne!(UserKey::of("alice"), UserKey::of("Alice"));
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
