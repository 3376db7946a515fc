//! The server-side scripts of [`FlaskSessionStore`](super::FlaskSessionStore). Each touches
//! the keys of one session id only: the record Flask reads, and beside it, in the same
//! Cluster slot (see [`Keys`](super::keys::Keys)), this store's metadata and forward. So each
//! runs on the one node owning that slot.
//!
//! A missing key and a key of another type both read as `''` (no Flask record, metadata or
//! forward is ever empty). Expiries are absolute Unix milliseconds (`PXAT`); Redis rejects
//! values below 1, and a past instant deletes the key at once.

use std::sync::LazyLock;

use redis::Script;

/// `get(key)`: the string under `key`, or `''`.
const GET: &str = r"
local function get(key)
    local ok, v = pcall(redis.call, 'GET', key)
    if ok and v then return v end
    return ''
end
";

fn script(body: &str) -> Script {
    Script::new(&[GET, body].concat())
}

/// Reads one session. `KEYS` record, metadata. Returns `{0}` no record, `{-1}` a key of
/// another type, else `{1, record, metadata or '', PEXPIRETIME of the record}`.
///
/// Flask-Session rewrites the record's expiry on every request it serves, but not the
/// metadata's: a read lengthens the metadata's expiry to the record's, so a session that
/// only Flask served for a while keeps its metadata (a write, but one that changes nothing
/// a reader can see).
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local ok, v = pcall(redis.call, 'GET', KEYS[1])
        if not ok then return {-1} end
        if not v then return {0} end
        local t = redis.call('PEXPIRETIME', KEYS[1])
        local m = get(KEYS[2])
        if m ~= '' and t > 0 and redis.call('PEXPIRETIME', KEYS[2]) < t then
            redis.call('PEXPIREAT', KEYS[2], t)
        end
        return {1, v, m, t}
        ",
    )
});

/// Creates a session unless its id is taken (a record, whatever it holds, or a forward).
/// `KEYS` record, metadata, forward; `ARGV` record, metadata, expiry. Returns 1 created, 0
/// taken.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
        redis.call('SET', KEYS[2], ARGV[2], 'PXAT', ARGV[3])
        return 1
        ",
    )
});

/// Compare and set: writes only if record and metadata still hold exactly what the caller
/// read. `KEYS` record, metadata; `ARGV` record and metadata read, new record (`''`: delete
/// both), new metadata, expiry. Returns 1 written, 0 changed meanwhile (nothing written).
pub(crate) static SWAP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if get(KEYS[1]) ~= ARGV[1] or get(KEYS[2]) ~= ARGV[2] then return 0 end
        if ARGV[3] == '' then
            redis.call('DEL', KEYS[1], KEYS[2])
            return 1
        end
        redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[5])
        redis.call('SET', KEYS[2], ARGV[4], 'PXAT', ARGV[5])
        return 1
        ",
    )
});

/// Cycle step 1: if record and metadata still hold what was read, deletes both and leaves a
/// pending forward. `KEYS` record, metadata, forward; `ARGV` record and metadata read, the
/// forward, its expiry. Returns 1 moved, 0 changed meanwhile.
pub(crate) static MOVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if get(KEYS[1]) ~= ARGV[1] or get(KEYS[2]) ~= ARGV[2] then return 0 end
        redis.call('DEL', KEYS[1], KEYS[2])
        redis.call('SET', KEYS[3], ARGV[3], 'PXAT', ARGV[4])
        return 1
        ",
    )
});

/// Cycle step 3: makes the pending forward final if it is still there. `KEYS` forward;
/// `ARGV` pending forward, final forward, its expiry. Returns 1 committed, 0 gone.
pub(crate) static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if get(KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
        return 1
        ",
    )
});

/// Undoes step 1 if the pending forward is still there. `KEYS` record, metadata, forward;
/// `ARGV` pending forward, record and metadata as read, the record's expiry (`-1`: none).
/// Returns 1 restored, 0 not.
pub(crate) static ROLLBACK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if get(KEYS[3]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[3])
        local function put(key, value)
            if tonumber(ARGV[4]) > 0 then
                redis.call('SET', key, value, 'PXAT', ARGV[4])
            else
                redis.call('SET', key, value)
            end
        end
        put(KEYS[1], ARGV[2])
        if ARGV[3] ~= '' then put(KEYS[2], ARGV[3]) end
        return 1
        ",
    )
});

/// Reads and deletes a session's keys at once (a logout). `KEYS` record, metadata,
/// forward. Returns `{1 if a record was there else 0, the forward or ''}`.
pub(crate) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local live = redis.call('EXISTS', KEYS[1])
        local f = get(KEYS[3])
        redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
        return {live, f}
        ",
    )
});
