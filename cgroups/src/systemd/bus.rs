//! The few calls of systemd's D-Bus API (`org.freedesktop.systemd1.Manager` on the system
//! bus) the driver needs: start a transient scope, set unit properties, stop a unit, reset a
//! failed one, and wait for a unit to settle.
//!
//! Uses zbus's blocking API (pure Rust, no libdbus). Jobs are waited for by polling the
//! unit's `ActiveState` with a deadline rather than by subscribing to `JobRemoved`: zbus's
//! blocking signal iterator has no timeout, and a runtime must never hang on its bus.

use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{self, OwnedObjectPath};

use super::properties::{Props, Value};
use crate::CgroupError;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
/// How long a start or stop job may take (runc waits as long).
const JOB_DEADLINE: Duration = Duration::from_secs(30);

/// A connection to systemd's manager.
pub(crate) struct Manager {
    conn: Connection,
}

fn err(unit: &str, op: &'static str, e: impl std::fmt::Display) -> CgroupError {
    CgroupError::Systemd {
        unit: unit.to_string(),
        op,
        reason: e.to_string(),
    }
}

/// The D-Bus error name of a method error reply, if `e` is one.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

fn to_zvariant(v: &Value) -> zvariant::Value<'static> {
    match v {
        Value::Bool(b) => zvariant::Value::from(*b),
        Value::U64(n) => zvariant::Value::from(*n),
        Value::Str(s) => zvariant::Value::from(s.clone()),
        Value::U32s(v) => zvariant::Value::from(v.clone()),
        Value::Bytes(v) => zvariant::Value::from(v.clone()),
        Value::PathU64s(v) => zvariant::Value::from(v.clone()),
    }
}

fn body(props: &Props) -> Vec<(&'static str, zvariant::Value<'static>)> {
    props.iter().map(|(n, v)| (*n, to_zvariant(v))).collect()
}

impl Manager {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
    /// /run/dbus/system_bus_socket).
    pub(crate) fn connect(unit: &str) -> Result<Self, CgroupError> {
        let conn = Connection::system().map_err(|e| CgroupError::Systemd {
            unit: unit.to_string(),
            op: "connecting to the system bus for",
            reason: e.to_string(),
        })?;
        Ok(Self { conn })
    }

    /// Calls a Manager method.
    fn call<B>(&self, method: &str, b: &B) -> Result<zbus::message::Message, zbus::Error>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, b)
    }

    /// StartTransientUnit(`name`, "replace", `props`) and waits until the unit is active.
    /// A unit of that name left over (failed or inactive) is reset and the start retried
    /// once, as runc does.
    pub(crate) fn start_transient(&self, name: &str, props: &Props) -> Result<(), CgroupError> {
        let aux: Vec<(&str, Vec<(&str, zvariant::Value<'_>)>)> = Vec::new();
        let b = (name, "replace", body(props), aux);
        let first = self.call("StartTransientUnit", &b);
        let result = match first {
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") => {
                self.reset_failed(name);
                // Still there and running: that unit is someone's live container.
                self.call("StartTransientUnit", &b)
            }
            r => r,
        };
        result.map_err(|e| err(name, "starting", e))?;
        self.wait_state(name, "starting", |s| match s {
            "active" => Some(Ok(())),
            "failed" => Some(Err("the unit failed to start".to_string())),
            _ => None,
        })
    }

    /// SetUnitProperties(`name`, runtime, `props`).
    pub(crate) fn set_properties(&self, name: &str, props: &Props) -> Result<(), CgroupError> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(name, true, body(props)))
            .map(|_| ())
            .map_err(|e| err(name, "updating", e))
    }

    /// StopUnit(`name`, "replace") and waits until it is gone or inactive; a unit that
    /// does not exist is fine. A failed unit is reset so the name can be used again.
    pub(crate) fn stop(&self, name: &str) -> Result<(), CgroupError> {
        match self.call("StopUnit", &(name, "replace")) {
            Ok(_) => {}
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(())
            }
            Err(e) => return Err(err(name, "stopping", e)),
        }
        let r = self.wait_state(name, "stopping", |s| match s {
            "inactive" | "failed" => Some(Ok(())),
            _ => None,
        });
        self.reset_failed(name);
        r
    }

    /// ResetFailedUnit; errors (no such unit, not failed) are of no interest.
    pub(crate) fn reset_failed(&self, name: &str) {
        let _ = self.call("ResetFailedUnit", &(name,));
    }

    /// The unit's ActiveState, or None when systemd no longer knows it.
    fn active_state(&self, name: &str) -> Result<Option<String>, zbus::Error> {
        let unit: OwnedObjectPath = match self.call("GetUnit", &(name,)) {
            Ok(m) => m.body().deserialize()?,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let reply = self.conn.call_method(
            Some(DEST),
            &unit,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(UNIT, "ActiveState"),
        )?;
        let v: zvariant::OwnedValue = reply.body().deserialize()?;
        Ok(Some(String::try_from(v).map_err(zbus::Error::Variant)?))
    }

    /// Polls the unit's state until `done` decides (a unit systemd dropped counts as
    /// "inactive"), for at most [`JOB_DEADLINE`].
    fn wait_state(
        &self,
        name: &str,
        op: &'static str,
        done: impl Fn(&str) -> Option<Result<(), String>>,
    ) -> Result<(), CgroupError> {
        let deadline = Instant::now() + JOB_DEADLINE;
        let mut pause = Duration::from_micros(200);
        loop {
            let state = self
                .active_state(name)
                .map_err(|e| err(name, op, e))?
                .unwrap_or_else(|| "inactive".to_string());
            if let Some(r) = done(&state) {
                return r.map_err(|reason| CgroupError::Systemd {
                    unit: name.to_string(),
                    op,
                    reason,
                });
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Systemd {
                    unit: name.to_string(),
                    op,
                    reason: format!("still {state} after {} s", JOB_DEADLINE.as_secs()),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
