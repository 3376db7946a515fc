//! The server-side scripts. Each touches one key, so it runs on whichever Cluster node owns
//! that key. [`Script`] sends `EVALSHA` and loads the script on `NOSCRIPT` (after a restart
//! or failover), so the body crosses the network once per server, not per call.

use std::sync::LazyLock;

use redis::Script;

/// Compare-and-set: replaces the value only if its version header is the expected one.
///
/// `KEYS[1]` the record; `ARGV[1]` the expected version (8 bytes, big-endian); `ARGV[2]` the
/// new value; `ARGV[3]` its expiry in Unix ms. Returns 1 saved, 0 conflict, -1 missing.
/// An expiry in the past makes Redis delete the key, so saving an ended record ends it.
pub(crate) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local current = redis.call('GETRANGE', KEYS[1], 0, 7)
        if current == '' then return -1 end
        if current ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
        return 1
        ",
    )
});

/// Moves the expiry of an existing key, and writes the header's copies of the expiry and
/// `last_seen`, so a later load reports both without the record bytes being rewritten.
///
/// `KEYS[1]` the record; `ARGV[1]` the expiry in Unix ms; `ARGV[2]` header bytes 8..24
/// (expiry and `last_seen`, Unix ms, big-endian); `ARGV[3]` and `ARGV[4]` the first and last
/// byte of the user digest. Returns the 32-byte user digest (zeros: no user) if the key
/// existed, else nil (and creates nothing).
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local user = redis.call('GETRANGE', KEYS[1], ARGV[3], ARGV[4])
        if string.len(user) ~= 32 then return false end
        -- Header first: a PEXPIREAT in the past deletes the key, and a SETRANGE after it
        -- would re-create a bare header.
        redis.call('SETRANGE', KEYS[1], 8, ARGV[2])
        redis.call('PEXPIREAT', KEYS[1], ARGV[1])
        return user
        ",
    )
});

/// Adds a record id to a user's index set and keeps the set alive at least as long as the
/// record: the expiry only ever moves later (Redis 7: `NX` for a fresh set, else `GT`).
///
/// `KEYS[1]` the user's set; `ARGV[1]` the record id in hex; `ARGV[2]` the record's expiry
/// in Unix ms. Returns 1.
pub(crate) static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SADD', KEYS[1], ARGV[1])
        if redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'NX') == 0 then
            redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'GT')
        end
        return 1
        ",
    )
});
