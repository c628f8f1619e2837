//! The GCRA Lua script, its argument encoding and its reply decoding, plus the same math in
//! Rust (for the local denial cache and as the reference the script is tested against).
//!
//! Everything is integer microseconds. The script reads the server clock with `TIME`
//! (`seconds·10⁶ + microseconds`, about 1.8·10¹⁵ today) and works *relative to now*: the
//! debt `d = max(tat − now, 0)` and the capacity are both at most ~4.6·10¹⁵ µs (a quota spans
//! at most ~146 years), so every number stays below 2⁵³ and Lua's doubles hold it exactly.
//! That is the difference with redis_rate, whose float seconds report `remaining` one too low.

use std::time::Duration;

use redis::Value;

use super::super::Check;
use super::StoreError;
use crate::limiter::Quota;
use crate::limiter::gcra::Decision;

/// The Lua script [`RedisStore`](super::RedisStore) runs, for operators who load it
/// themselves, audit it, or benchmark Redis with it.
///
/// `KEYS[i]`: the Redis key of check `i`.
/// `ARGV[1]`: `1` to charge, `0` to only look (peek).
/// `ARGV[3i-1..3i+1]`: the interval (µs), burst and cost of check `i`.
///
/// Reply: `now` (server `TIME`, µs since the Unix epoch), then per check `allowed` (0/1),
/// `slack`, `reset_after` and `retry_after` (µs; `-1` for none).
///
/// All-or-nothing: the new TATs are written (with `PX` = time until the bucket is full,
/// rounded up to the millisecond) only when every check is admitted. A key named twice sees
/// the charge of its earlier check, as in `MemoryStore::check_all`.
pub const GCRA_LUA: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local charge = ARGV[1] == '1'
local reply = { now }
local tat = {}
local dirty = {}
local all = true
for i = 1, n do
  local key = KEYS[i]
  local interval = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local cap = interval * burst
  if tat[key] == nil then
    tat[key] = tonumber(redis.call('GET', key)) or 0
  end
  local debt = tat[key] - now
  if debt < 0 then debt = 0 end
  local free = cap - debt
  if free < 0 then free = 0 end
  if cost > burst then
    all = false
    reply[#reply + 1] = 0; reply[#reply + 1] = free
    reply[#reply + 1] = debt; reply[#reply + 1] = -1
  else
    local room = cap - cost * interval
    if debt <= room then
      local new_debt = debt + cost * interval
      if cost > 0 then
        tat[key] = now + new_debt
        dirty[key] = true
      end
      reply[#reply + 1] = 1; reply[#reply + 1] = cap - new_debt
      reply[#reply + 1] = new_debt; reply[#reply + 1] = -1
    else
      all = false
      reply[#reply + 1] = 0; reply[#reply + 1] = free
      reply[#reply + 1] = debt; reply[#reply + 1] = debt - room
    end
  end
end
if all and charge then
  for key in pairs(dirty) do
    redis.call('SET', key, string.format('%.0f', tat[key]),
      'PX', string.format('%.0f', math.ceil((tat[key] - now) / 1000)))
  end
end
return reply
"#;

/// The quota's interval in whole microseconds, rounded up so Redis is never looser than the
/// quota (and than the in-memory store).
pub(crate) fn interval_micros(quota: &Quota) -> u64 {
    quota.interval_nanos().div_ceil(1_000)
}

/// A decision in microseconds, as the script (or [`evaluate_micros`]) computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawDecision {
    pub(crate) allowed: bool,
    pub(crate) slack: u64,
    pub(crate) reset_after: u64,
    pub(crate) retry_after: Option<u64>,
}

impl RawDecision {
    /// The crate's [`Decision`] (nanoseconds) for this result under `quota`.
    pub(crate) fn into_decision(self, quota: &Quota) -> Decision {
        Decision::from_raw(
            self.allowed,
            quota.burst(),
            self.slack * 1_000,
            interval_micros(quota) * 1_000,
            self.reset_after * 1_000,
            self.retry_after.map(|r| r * 1_000),
        )
    }
}

/// The script's math in Rust: a request of `cost` against a key in `debt` µs (`tat − now`,
/// zero or more) under `quota`. Returns the decision and, when charged, the new debt.
pub(crate) fn evaluate_micros(debt: u64, quota: &Quota, cost: u32) -> (RawDecision, Option<u64>) {
    let interval = interval_micros(quota);
    let burst = u64::from(quota.burst());
    let cap = interval * burst;
    let free = cap.saturating_sub(debt);
    if u64::from(cost) > burst {
        let d = RawDecision {
            allowed: false,
            slack: free,
            reset_after: debt,
            retry_after: None,
        };
        return (d, None);
    }
    let charge = u64::from(cost) * interval;
    let room = cap - charge;
    if debt <= room {
        let new_debt = debt + charge;
        let d = RawDecision {
            allowed: true,
            slack: cap - new_debt,
            reset_after: new_debt,
            retry_after: None,
        };
        (d, (cost > 0).then_some(new_debt))
    } else {
        let d = RawDecision {
            allowed: false,
            slack: free,
            reset_after: debt,
            retry_after: Some(debt - room),
        };
        (d, None)
    }
}

/// The script's arguments for `checks`: interval, burst and cost of each, in order.
pub(crate) fn arguments(checks: &[Check<'_>]) -> Vec<u64> {
    let mut args = Vec::with_capacity(checks.len() * 3);
    for c in checks {
        args.extend([
            interval_micros(c.quota),
            u64::from(c.quota.burst()),
            u64::from(c.cost),
        ]);
    }
    args
}

/// Decodes the script's reply for `checks`: the server time and one raw decision per check.
pub(crate) fn decode(
    reply: Value,
    checks: &[Check<'_>],
) -> Result<(Duration, Vec<RawDecision>), StoreError> {
    let bad = |what: &str| StoreError::Protocol(format!("unexpected script reply: {what}"));
    let Value::Array(items) = reply else {
        return Err(bad("not an array"));
    };
    if items.len() != 1 + 4 * checks.len() {
        return Err(bad("wrong length"));
    }
    let mut ints = items.into_iter().map(|v| match v {
        Value::Int(i) => Ok(i),
        _ => Err(bad("not an integer")),
    });
    let mut next = || ints.next().unwrap_or_else(|| Err(bad("too short")));
    let now = u64::try_from(next()?).map_err(|_| bad("negative time"))?;
    let mut out = Vec::with_capacity(checks.len());
    for _ in checks {
        let allowed = next()? == 1;
        let slack = u64::try_from(next()?).map_err(|_| bad("negative slack"))?;
        let reset_after = u64::try_from(next()?).map_err(|_| bad("negative reset"))?;
        let retry = next()?;
        out.push(RawDecision {
            allowed,
            slack,
            reset_after,
            retry_after: u64::try_from(retry).ok(),
        });
    }
    Ok((Duration::from_micros(now), out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::gcra::evaluate;

    /// The Rust mirror of the script equals the in-memory GCRA, scaled by 1000, whenever the
    /// quota's interval is a whole number of microseconds.
    #[test]
    fn micro_math_matches_the_nanosecond_gcra() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rnd = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..20_000 {
            let burst = 1 + rnd(20) as u32;
            let window = Duration::from_micros(1 + rnd(5_000_000)) * burst;
            let quota = Quota::per(burst, window).unwrap();
            assert_eq!(quota.interval_nanos() % 1_000, 0);
            let cap = interval_micros(&quota) * u64::from(burst);
            let debt = rnd(cap + cap / 4 + 1);
            let cost = rnd(u64::from(burst) + 2) as u32;
            let now_us = 1_700_000_000_000_000 + rnd(1_000_000);
            let (raw, new_debt) = evaluate_micros(debt, &quota, cost);
            let tat = if debt == 0 && rnd(2) == 0 {
                0
            } else {
                (now_us + debt) * 1_000
            };
            let (expected, new_tat) = evaluate(tat, now_us * 1_000, &quota, cost);
            assert_eq!(
                raw.into_decision(&quota),
                expected,
                "debt {debt} cost {cost}"
            );
            assert_eq!(new_debt.map(|d| (now_us + d) * 1_000), new_tat);
        }
    }

    #[test]
    fn intervals_round_up_to_the_microsecond() {
        let q = Quota::per_second(3).unwrap();
        assert_eq!(interval_micros(&q), 333_334);
        let q = Quota::per_second(4000).unwrap();
        assert_eq!(interval_micros(&q), 250);
    }
}
