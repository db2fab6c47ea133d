//! The user a container runs as: uid, gid and groups from the request, else from the
//! image's `User`, names resolved in the image's `/etc/passwd` and `/etc/group` (read from
//! the topmost layer that has them), plus supplemental groups.

use std::path::PathBuf;

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::Security;

/// Reads `etc/<file>` from the topmost layer that has it.
fn image_file(layers: &[PathBuf], file: &str) -> String {
    layers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("etc").join(file)).ok())
        .unwrap_or_default()
}

/// `(name, uid, gid)` entries of passwd.
fn passwd(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?))
        })
        .collect()
}

/// `(name, gid, members)` entries of group.
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// `(uid, gid, additional gids)` of a container with security context `sec`, whose image
/// says `User: image_user` and has the layer directories `layers` (top first).
pub fn user(sec: &Security, image_user: &str, layers: &[PathBuf]) -> Result<(u32, u32, Vec<u32>)> {
    let pw = passwd(&image_file(layers, "passwd"));
    let gr = groups(&image_file(layers, "group"));
    let to_u32 = |v: i64, what: &str| -> Result<u32> {
        u32::try_from(v).map_err(|_| invalid(format!("{what} {v} is out of range")))
    };
    let (uid, mut gid, name) = if !sec.run_as_username.is_empty() {
        let (n, u, g) = pw
            .iter()
            .find(|(n, _, _)| *n == sec.run_as_username)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "user {:?} not found in the image's /etc/passwd",
                    sec.run_as_username
                ))
            })?;
        (u, g, Some(n))
    } else if let Some(u) = sec.run_as_user {
        let u = to_u32(u, "runAsUser")?;
        let e = pw.iter().find(|(_, pu, _)| *pu == u);
        (u, e.map(|e| e.2).unwrap_or(0), e.map(|e| e.0.clone()))
    } else {
        let spec = image_user;
        let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
        let (uid, gid, name) = if u.is_empty() {
            (0, 0, Some("root".to_string()))
        } else if let Ok(n) = u.parse::<u32>() {
            let e = pw.iter().find(|(_, pu, _)| *pu == n);
            (n, e.map(|e| e.2).unwrap_or(0), e.map(|e| e.0.clone()))
        } else {
            let e = pw
                .iter()
                .find(|(pn, _, _)| pn == u)
                .ok_or_else(|| invalid(format!("image user {u:?} not found in /etc/passwd")))?;
            (e.1, e.2, Some(e.0.clone()))
        };
        let gid = if g.is_empty() {
            gid
        } else if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            gr.iter()
                .find(|(n, _, _)| n == g)
                .map(|e| e.1)
                .ok_or_else(|| invalid(format!("image group {g:?} not found in /etc/group")))?
        };
        (uid, gid, name)
    };
    if let Some(g) = sec.run_as_group {
        gid = to_u32(g, "runAsGroup")?;
    }
    let mut extra: Vec<u32> = Vec::new();
    if let Some(n) = &name {
        for (_, g, members) in &gr {
            if members.iter().any(|m| m == n) && !extra.contains(g) {
                extra.push(*g);
            }
        }
    }
    for g in &sec.supplemental_groups {
        let g = to_u32(*g, "supplementalGroup")?;
        if !extra.contains(&g) {
            extra.push(g);
        }
    }
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_passwd() {
        let g = groups("wheel:x:10:alice,bob\nstaff:x:50:\n");
        assert_eq!(g[0].2, ["alice", "bob"]);
        assert_eq!(
            passwd("root:x:0:0::/:/bin/sh\nbad\n"),
            [("root".into(), 0, 0)]
        );
    }
}
