//! The device-rotation defence: a client IP may introduce only so many new device ids per
//! period. Device ids are chosen by the client, so without this a device-scoped limit is
//! evaded by sending a fresh id with every request.

use std::time::Duration;

use crate::ConfigError;
use crate::limiter::{Check, Clock, Key, KeyHasher, MemoryStore, Namespace, Quota};

/// At most `max` distinct device ids per client IP within `window`, kept in the limiter's own
/// store (no second algorithm): a (client, device) pair counts as known for `window` after
/// it was first seen, and every unknown pair spends one unit of the client's budget of `max`
/// per `window`.
#[derive(Clone, Debug)]
pub(crate) struct DeviceRotation {
    seen: Quota,
    budget: Quota,
    seen_ns: Namespace,
    budget_ns: Namespace,
    keys: KeyHasher,
}

impl DeviceRotation {
    pub(crate) fn new(
        max: u32,
        window: Duration,
        keys: KeyHasher,
    ) -> Result<DeviceRotation, ConfigError> {
        let budget = Quota::per(max, window).map_err(|e| e.within("device_rotation"))?;
        let seen = Quota::every(window).map_err(|e| e.within("device_rotation"))?;
        Ok(DeviceRotation {
            seen,
            budget,
            seen_ns: keys.namespace("device-rotation/seen"),
            budget_ns: keys.namespace("device-rotation/budget"),
            keys,
        })
    }

    pub(crate) fn max(&self) -> u32 {
        self.budget.burst()
    }

    /// `Ok` when the device is known for this client or the client may introduce it now;
    /// otherwise the wait until it may.
    pub(crate) fn admit<C: Clock>(
        &self,
        store: &MemoryStore<C>,
        client: Key,
        device: &[u8],
    ) -> Result<(), Duration> {
        // Device ids are validated to at most 64 bytes before they get here.
        let device = &device[..device.len().min(64)];
        let mut pair = [0u8; 16 + 64];
        pair[..16].copy_from_slice(&client.to_u128().to_le_bytes());
        pair[16..16 + device.len()].copy_from_slice(device);
        let pair = self
            .keys
            .hash(&pair[..16 + device.len()])
            .in_namespace(&self.seen_ns);
        if !store.peek(pair, &self.seen, 1).is_allowed() {
            return Ok(());
        }
        let budget = client.in_namespace(&self.budget_ns);
        let verdict = store.check_all(&[
            Check::new(pair, &self.seen),
            Check::new(budget, &self.budget),
        ]);
        // A refusal bound by the pair means another request registered it meanwhile.
        if verdict.is_allowed() || verdict.index == 0 {
            Ok(())
        } else {
            Err(verdict.binding.retry_after().unwrap_or(Duration::MAX))
        }
    }
}
