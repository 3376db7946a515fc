//! The per-user index: a set of record ids per user, named by the user's digest. A hint,
//! kept without deletes on the hot path: listings check every member and drop stale ones.

use redis::aio::ConnectionLike;
use redis::RedisError;
use session_core::store::MAX_FORWARDS;
use session_core::{Record, RecordId, SessionInfo, StoreError};
use time::OffsetDateTime;

use crate::{hash, is_wrong_type, scripts, RedisStore};

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Lists `id` in the user's set and keeps the set alive at least until `expires_at`.
    /// Nothing to do for a record that has ended.
    pub(crate) async fn index(
        &self,
        digest: &[u8; 32],
        id: &RecordId,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if expires_at <= OffsetDateTime::now_utc() {
            return Ok(());
        }
        scripts::INDEX
            .key(self.user_key(digest))
            .arg(id.to_string())
            .arg(hash::expire_at_arg(expires_at))
            .invoke_async::<i64>(&mut self.connection())
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    /// Removes members from a user's set; a failure only leaves them for the next listing.
    pub(crate) async fn unindex(&self, user_key: &str, members: &[Vec<u8>]) {
        if members.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("SREM");
        cmd.arg(user_key);
        for member in members {
            cmd.arg(member.as_slice());
        }
        if let Err(err) = cmd.exec_async(&mut self.connection()).await {
            tracing::warn!(error = %err, "removing ended sessions from a user index failed");
        }
    }

    /// The listing entry of the record a user-set member names, if it is a live session of
    /// `user`; `None` means the member is stale. Reads only the metadata, never the entries.
    ///
    /// A finished cycle's forward is followed: a listing reads the set before it reads the
    /// records, so a cycle can index its new id after the set was read and commit before the
    /// old id is looked up, leaving only a forward there; the session is then listed under
    /// the id it moved to (which the cycle indexed before committing).
    pub(crate) async fn lookup(&self, member: &[u8], user: &str) -> Result<Option<SessionInfo>, StoreError> {
        let Some(mut id) = std::str::from_utf8(member).ok().and_then(|s| s.parse::<RecordId>().ok()) else {
            return Ok(None);
        };
        for _ in 0..=MAX_FORWARDS {
            match self.lookup_id(id, user).await? {
                Named::Live(info) => return Ok(Some(info)),
                Named::Moved(to) => id = to,
                Named::Stale => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn lookup_id(&self, id: RecordId, user: &str) -> Result<Named, StoreError> {
        let reply: Result<Vec<Option<Vec<u8>>>, RedisError> = redis::cmd("HMGET")
            .arg(self.key(&id))
            .arg(&["u", "l", "c", "s", "e", "f", "p"])
            .query_async(&mut self.connection())
            .await;
        let fields = match reply {
            Ok(fields) => fields,
            // An old-format value is no session here; `load` removes it when its cookie comes.
            Err(err) if is_wrong_type(&err) => return Ok(Named::Stale),
            Err(err) => return Err(StoreError::backend(err)),
        };
        let [owner, label, created, seen, expires, forward, pending] = <[_; 7]>::try_from(fields)
            .map_err(|_| StoreError::backend("HMGET answered another number of fields"))?;
        // A forward whose cycle is under way still stands for the session: the new id may
        // not be listed yet, and revoking the old one follows the forward (see `forward`).
        // A finished one leads to the session.
        if let (Some(to), None) = (&forward, &pending) {
            let to = std::str::from_utf8(to).ok().and_then(|s| s.parse::<RecordId>().ok());
            return Ok(to.map_or(Named::Stale, Named::Moved));
        }
        let (Some(owner), Some(created), Some(seen), Some(expires)) = (owner, created, seen, expires) else {
            return Ok(Named::Stale);
        };
        if owner != user.as_bytes() {
            return Ok(Named::Stale);
        }
        // An undecodable record is no session either.
        let (Ok(created), Ok(seen), Ok(expires)) =
            (hash::instant(&created), hash::instant(&seen), hash::instant(&expires))
        else {
            return Ok(Named::Stale);
        };
        let mut record = Record::new(id, created, expires);
        record.last_seen = seen;
        record.user = Some(user.to_owned());
        record.label = label.and_then(|l| String::from_utf8(l).ok());
        let live = !record.is_expired_at(OffsetDateTime::now_utc());
        Ok(live.then(|| SessionInfo::from_record(&record)).flatten().map_or(Named::Stale, Named::Live))
    }
}

/// What a user-set member's key holds now.
enum Named {
    Live(SessionInfo),
    /// A finished cycle's forward, to this id.
    Moved(RecordId),
    Stale,
}
