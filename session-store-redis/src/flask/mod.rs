//! Sessions shared with a Flask app that uses Flask-Session 0.8 on the same Redis
//! (feature `flask`).
//!
//! [`FlaskSessionStore`] reads and writes Flask-Session's own records, and
//! [`FlaskSessionIds`] its session ids, so a Rust service and a Flask app behind one domain
//! share one cookie and one session: log in on Flask and Rust sees the user; Rust changes a
//! value and Flask reads it with the same Python type; a logout on either side ends the
//! session for both (the record is deleted, so the cookie, replayed or not, is no session).
//! Flask must use `SESSION_TYPE = "redis"` with the msgspec MessagePack serializer (the
//! default `SESSION_SERIALIZATION_FORMAT`), the default `SESSION_ID_LENGTH` (32), and the
//! same key prefix as the store.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::routing::get;
//! use session_core::Session;
//! use session_store_redis::flask::{flask_session_layer, FlaskSessionIds, FlaskSessionStore};
//!
//! // SESSION_REDIS = redis.from_url("redis://127.0.0.1:6379/0"), SESSION_USE_SIGNER = True,
//! // PERMANENT_SESSION_LIFETIME = timedelta(hours=12) in the Flask app:
//! let store = FlaskSessionStore::connect("redis://127.0.0.1:6379/0").await?;
//! let ids = FlaskSessionIds::signed(std::env::var("FLASK_SECRET_KEY")?)?;
//! let layer = flask_session_layer(store, ids, time::Duration::hours(12));
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/me", get(|s: Session| async move {
//!         // `session["user_id"] = 42` in Flask.
//!         Ok::<_, session_core::Error>(format!("{:?}", s.get::<i64>("user_id").await?))
//!     }))
//!     .layer(layer);
//! # Ok(()) }
//! ```
//!
//! # The record
//!
//! Flask-Session keeps a session under `session:<sid>` (`SESSION_KEY_PREFIX`; set the same
//! with [`FlaskSessionStore::with_prefix`]): `msgspec.msgpack` of the session dict, with
//! `_permanent: true`, written with `SET ... EX <PERMANENT_SESSION_LIFETIME>`. The sid is
//! `secrets.token_urlsafe(32)`: 32 random bytes that are, in this mode, the session's record
//! id itself ([`session_core::Id::from_raw`]); the key is the prefix and the 43 base64url
//! characters of those bytes.
//!
//! In `session-core` an entry is its value's MessagePack encoding, so an entry is exactly
//! the slice of Flask's map that holds its value, and reads and writes never re-encode what
//! they do not touch:
//!
//! | Python (msgspec) | MessagePack | Rust reads it as |
//! |---|---|---|
//! | `int` | int | `i64` (or `u64` for 2^63 and up) |
//! | `float` | float 64 | `f64` |
//! | `str` | str | `String` |
//! | `bytes` | bin | `serde_bytes::ByteBuf` (a plain `Vec<u8>` writes a list of ints) |
//! | `list`, `tuple` | array | `Vec<T>` or a tuple; a tuple comes back to Python as a list |
//! | `dict` | map | `BTreeMap<String, T>` or a struct |
//! | `None`, `bool` | nil, bool | `Option<T>`, `bool` |
//! | aware `datetime` | timestamp (extension type −1) | [`FlaskDateTime`] |
//! | naive `datetime`, `UUID`, `date` | str (ISO 8601) | `String` |
//!
//! What Rust writes, Flask reads the same way round: an `i64` is an `int`, a `String` a
//! `str`, a `ByteBuf` `bytes`, a `Vec` a `list`, a struct or map a `dict`, a
//! [`FlaskDateTime`] an aware `datetime` in UTC.
//!
//! - `_permanent` is part of the record, not an entry: Rust does not see it, never changes
//!   it, and writes `_permanent: true` (first) into the sessions it creates.
//! - Keys a write does not name keep their exact bytes and their place in the map; new keys
//!   go at the end, as in a Python dict.
//! - A record Rust cannot decode (a JSON or pickle record, or damaged bytes) is no session
//!   for Rust, and is left as it is: a read never deletes it, and a write starts a new
//!   session under a new id.
//! - An entry written through the raw store API that is not one MessagePack value is stored
//!   as an extension value of type 82, which Flask sees as `msgspec.msgpack.Ext`. The
//!   layer never writes such values.
//!
//! # What Flask's format has no place for
//!
//! [`Record`](session_core::Record) also has a creation time, a version, the session's own
//! expiry, a user, a label and a last-seen time. They live in a key of their own,
//! `{<prefix><sid>}:rs-meta` (never in the session dict, where Flask apps would see them),
//! which Flask never reads; the braces put it in the record's Redis Cluster slot. It holds
//! the first 8 bytes of the SHA-256 of the Flask record it was written with: when Flask has
//! rewritten the record since, the metadata still describes the same session, but the
//! version is derived from the new record's digest, so whoever compares versions sees the
//! change. A session Flask created has none until Rust first writes it: its `created_at`
//! and `last_seen` read as the time of the read (an absolute lifetime counts from Rust's
//! first write), its version from the digest. The expiry is the record's own TTL
//! (`PEXPIRETIME`), which Flask sets too; a read lengthens the metadata's TTL to the
//! record's, since Flask refreshes only the record's.
//!
//! # Concurrency: what holds
//!
//! - **Rust against Rust**: a write-back reads the record, applies the request's patch in
//!   Rust (only the keys it changed), and writes with a compare-and-set script that refuses
//!   if record or metadata changed since the read; it then reads again and re-applies, up to
//!   200 times. So writers of different keys never lose each other's changes, and
//!   `Session::update` conflicts are detected exactly as with the other stores: the whole
//!   `session-core` conformance suite and its history check pass, on one server and on a
//!   Cluster. A write-back costs two round trips (read, then compare-and-set), one more
//!   than [`RedisStore`](crate::RedisStore)'s, which applies patches on the server: the
//!   server cannot splice MessagePack, and Redis's Lua `cmsgpack` would re-encode (and
//!   lose `bytes` versus `str`).
//! - **Rust never overwrites a Flask write it has not seen**: a Flask write between Rust's
//!   read and write fails the compare-and-set, and Rust re-applies its patch on top of it.
//! - **Flask racing Rust is last-writer-wins**: Flask-Session writes the whole dict it
//!   loaded with a plain `SET`, with no protection of its own, so a Flask request that
//!   loaded before a Rust write and saves after it drops Rust's change (as it would drop
//!   another Flask request's). Flask also rewrites the record on every request
//!   (`SESSION_REFRESH_EACH_REQUEST`), so a Rust change is lost whenever a Flask request of
//!   the same browser was in flight while it landed. Neither app ever sees a mix of bytes.
//! - **Logout wins on both sides**: a Flask logout (`session.clear()`) deletes the record; a
//!   Rust logout (`Session::flush`) deletes it and its metadata. A Rust write never brings a
//!   deleted record back (`NotFound`).
//!
//! # Changing the id
//!
//! `Session::cycle_id` (at login) moves the session as [`RedisStore`](crate::RedisStore)
//! does, in three single-slot steps: the old record and metadata are deleted in the same
//! script that leaves a forward at `{<prefix><old sid>}:rs-forward` (a key Flask never
//! reads, so no Flask-readable data stays at the old sid), the session is created under the
//! new sid, and the forward is committed; `delete` (a logout) follows forwards, so a logout
//! racing the id change never leaves the session alive under its new id. A forward lives at
//! most 10 minutes.
//!
//! # Not supported
//!
//! - `sessions_of` and `revoke_user` answer [`StoreError::Unsupported`](session_core::StoreError::Unsupported):
//!   there is no per-user index, since Flask would not keep one up to date (a user's
//!   sessions could not be listed once Flask wrote them). The conformance suite's
//!   `user_index_tests!` therefore do not apply. `revoke` of one session works.
//! - `listen` answers `Unsupported` and `publish` does nothing: no session events between
//!   app instances (use [`RedisStore`](crate::RedisStore) for those).
//! - The store does not check Redis's eviction policy as `RedisStore` does; run Redis with
//!   `maxmemory-policy noeviction` all the same.
//!
//! # Security
//!
//! In this mode Redis holds usable cookie values (the sids are the keys, as in
//! Flask-Session itself): whoever can list keys can take over sessions. With
//! `SESSION_USE_SIGNER` a key listing alone is not enough (the cookie needs the signature),
//! but the signature is only HMAC-SHA1 of the sid under `SECRET_KEY`. Keep Redis private.
//! Nothing in this module logs ids, cookies or session data.

mod cycle;
mod datetime;
mod ids;
mod keys;
mod meta;
mod scripts;
mod store;
mod wire;

pub use self::datetime::FlaskDateTime;
pub use self::ids::{flask_session_layer, FlaskIdError, FlaskSessionIds, FLASK_DEFAULT_LIFETIME};
pub use self::store::FlaskSessionStore;
