//! The server-side scripts. Each touches one key, so it runs on whichever Cluster node owns
//! that key. [`Script`] sends `EVALSHA` and loads the script on `NOSCRIPT` (after a restart
//! or failover), so the body crosses the network once per server, not per call.
//!
//! Field names are those of the `hash` module. Instants arrive as decimal Unix nanoseconds
//! and are compared with `tonumber`: doubles, exact to well under a microsecond, which is
//! all an expiry check needs. Instants are stored as the strings they came as, so they
//! round-trip exactly.

use std::sync::LazyLock;

use redis::Script;

/// `HSET` in slices: Lua's `unpack` fails beyond a few thousand values, and a session may
/// hold that many keys. `args[from..]` are field, value pairs; a slice is an even count.
pub(crate) const HSET_ALL: &str = r"
local function hset_all(key, args, from)
    for i = from, #args, 1000 do
        redis.call('HSET', key, unpack(args, i, math.min(i + 999, #args)))
    end
end
";

/// Creates a record unless a live one holds the key: `SET NX` for a hash, which Redis
/// lacks. Live means present for Redis and not expired by the app's clock (the contract's
/// clock); anything else under the key (an expired or undecodable record, an old-format
/// string) is no session and is replaced.
///
/// `KEYS[1]` the record; `ARGV[1]` now (Unix ns); `ARGV[2]` the expiry in Unix ms;
/// `ARGV[3..]` the hash's field, value pairs. Returns 1 created, 0 collision. An expiry in
/// the past makes Redis delete the key at once, so creating an ended record stores nothing.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            HSET_ALL,
            r"
        local key = KEYS[1]
        -- pcall: HGET on a string (the old format) is a WRONGTYPE error, not a session.
        local ok, e = pcall(redis.call, 'HGET', key, 'e')
        if ok and e and (tonumber(e) or 0) > tonumber(ARGV[1]) then return 0 end
        redis.call('DEL', key)
        hset_all(key, ARGV, 3)
        redis.call('PEXPIREAT', key, ARGV[2])
        return 1
        ",
        ]
        .concat(),
    )
});

/// Applies a patch to a live record, all of it or nothing: the store's whole write path,
/// server-side, so writers of different keys never conflict and nobody retries a
/// read-modify-write loop across the network.
///
/// `KEYS[1]` the record. `ARGV`:
///
/// - 1: now, Unix ns (the app's clock);
/// - 2: the patch's `expires_at`, Unix ns; 3: the same in Unix ms, for `PEXPIREAT`;
/// - 4: `last_seen`, Unix ns;
/// - 5: `k` keeps the session's expiry, `s` sets it; 6: the expiry's bytes (`''`: none),
///   the basis a `k` patch was computed for, or the new expiry;
/// - 7: flags, `u` to set the user (8: the user, 9: its digest), `l` to set the label (10);
/// - 11 on: four per change: the field; two op characters, `s` set (the value is the
///   third) or `d` delete, then `-` no expectation, `a` expects the field absent, `e`
///   expects it to hold exactly the fourth.
///
/// Returns `{-1}` no live record (nothing created), `{0}` an expectation failed (nothing
/// changed), else `{1, version, expires_at (Unix ns), ended (0/1)}` plus the user digest
/// when the user index needs the record listed again: the patch set a user, or moved a
/// user's session's expiry later than the set may live. An ended record (no entry left,
/// or expired) is deleted.
pub(crate) static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            HSET_ALL,
            r"
        local key = KEYS[1]
        local now = tonumber(ARGV[1])
        local ok, meta = pcall(redis.call, 'HMGET', key, 'v', 'e', 'x', 'd')
        if not ok or not tonumber(meta[1]) then return {-1} end
        local old_e = tonumber(meta[2])
        if not old_e or old_e <= now then return {-1} end

        local sets, dels = {}, {}
        for i = 11, #ARGV, 4 do
            local field, op = ARGV[i], ARGV[i + 1]
            local want = string.sub(op, 2, 2)
            if want ~= '-' then
                local current = redis.call('HGET', key, field)
                if want == 'a' then
                    if current then return {0} end
                elseif current ~= ARGV[i + 3] then
                    return {0}
                end
            end
            if string.sub(op, 1, 1) == 's' then
                sets[#sets + 1] = field
                sets[#sets + 1] = ARGV[i + 2]
            else
                dels[#dels + 1] = field
            end
        end

        -- A patch computed for another expiry than the stored one (a concurrent request
        -- changed it) keeps the stored instant: a stale refresh must not lengthen it.
        local new_e, ms = ARGV[2], ARGV[3]
        if ARGV[5] == 'k' then
            if ARGV[6] ~= (meta[3] or '') then new_e, ms = meta[2], nil end
        elseif ARGV[6] == '' then
            dels[#dels + 1] = 'x'
        else
            sets[#sets + 1] = 'x'
            sets[#sets + 1] = ARGV[6]
        end
        local digest = meta[4]
        local sets_user = string.find(ARGV[7], 'u', 1, true) ~= nil
        if sets_user then
            sets[#sets + 1] = 'u'
            sets[#sets + 1] = ARGV[8]
            sets[#sets + 1] = 'd'
            sets[#sets + 1] = ARGV[9]
            digest = ARGV[9]
        end
        if string.find(ARGV[7], 'l', 1, true) then
            sets[#sets + 1] = 'l'
            sets[#sets + 1] = ARGV[10]
        end
        sets[#sets + 1] = 'e'
        sets[#sets + 1] = new_e
        sets[#sets + 1] = 's'
        sets[#sets + 1] = ARGV[4]

        for i = 1, #dels, 1000 do
            redis.call('HDEL', key, unpack(dels, i, math.min(i + 999, #dels)))
        end
        hset_all(key, sets, 1)
        local version = redis.call('HINCRBY', key, 'v', 1)

        -- Entries are the fields that are not metadata.
        local present = 0
        for _, v in ipairs(redis.call('HMGET', key, 'v', 'c', 'e', 's', 'x', 'u', 'd', 'l')) do
            if v then present = present + 1 end
        end
        if redis.call('HLEN', key) <= present or tonumber(new_e) <= now then
            redis.call('DEL', key)
            return {1, version, new_e, 1}
        end
        if ms then redis.call('PEXPIREAT', key, ms) end
        if digest and (sets_user or tonumber(new_e) > old_e) then
            return {1, version, new_e, 0, digest}
        end
        return {1, version, new_e, 0}
        ",
        ]
        .concat(),
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
