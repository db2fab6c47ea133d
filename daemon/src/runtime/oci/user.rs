//! The user a container runs as: uid, gid and groups from the request, else from the
//! image's `User`, names resolved in the image's `/etc/passwd` and `/etc/group` (read
//! through the merged view of the image's layers, see [`crate::snapshots::view`]: never
//! outside the image, only regular files, at most [`USER_FILE_CAP`] bytes each), plus
//! supplemental groups (the image's `/etc/group` memberships only under the Merge policy,
//! the request's always), with the primary gid among them as containerd has it. Every id is 0..=2147483647, as runc requires (the kernel's
//! (uid_t)-1 means "no change", and larger ids are not valid in a user namespace map).

use std::path::PathBuf;

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::{GroupsPolicy, Security};
use crate::snapshots::view::LayerView;

/// The largest `/etc/passwd` or `/etc/group` read from an image (larger is refused).
pub const USER_FILE_CAP: u64 = 4 << 20;

/// The largest uid or gid accepted (runc's limit).
pub const MAX_ID: u32 = i32::MAX as u32;

/// An image's `/etc/passwd` and `/etc/group` (empty when absent).
#[derive(Debug, Clone, Default)]
pub struct UserFiles {
    /// `/etc/passwd`.
    pub passwd: String,
    /// `/etc/group`.
    pub group: String,
}

impl UserFiles {
    /// Reads both files from the merged view of the layer directories `layers` (top
    /// first). Blocking: call from a blocking thread.
    pub fn read(layers: &[PathBuf]) -> Result<Self> {
        let view = LayerView::open(layers)?;
        let text = |path: &str| -> Result<String> {
            Ok(view
                .read(path, USER_FILE_CAP)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default())
        };
        Ok(UserFiles {
            passwd: text("/etc/passwd")?,
            group: text("/etc/group")?,
        })
    }
}

/// `v` as an id, refused outside 0..=[`MAX_ID`]; `what` names where it came from.
fn id(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v <= MAX_ID)
        .ok_or_else(|| invalid(format!("{what} {v} is out of range (0-{MAX_ID})")))
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
/// says `User: image_user` and has the user database `files`.
pub fn user(sec: &Security, image_user: &str, files: &UserFiles) -> Result<(u32, u32, Vec<u32>)> {
    let pw = passwd(&files.passwd);
    let gr = groups(&files.group);
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
        let u = id(u, "runAsUser")?;
        let e = pw.iter().find(|(_, pu, _)| *pu == u);
        (u, e.map(|e| e.2).unwrap_or(0), e.map(|e| e.0.clone()))
    } else {
        let spec = image_user;
        let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
        let (uid, gid, name) = if u.is_empty() {
            (0, 0, Some("root".to_string()))
        } else if let Ok(n) = u.parse::<i64>() {
            let n = id(n, "image user")?;
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
        } else if let Ok(n) = g.parse::<i64>() {
            id(n, "image group")?
        } else {
            gr.iter()
                .find(|(n, _, _)| n == g)
                .map(|e| e.1)
                .ok_or_else(|| invalid(format!("image group {g:?} not found in /etc/group")))?
        };
        (uid, gid, name)
    };
    if let Some(g) = sec.run_as_group {
        gid = id(g, "runAsGroup")?;
    }
    // Ids taken from the image's files are checked too.
    let uid = id(uid.into(), "uid")?;
    let gid = id(gid.into(), "gid")?;
    let mut extra: Vec<u32> = Vec::new();
    // Strict: the request's groups only, none from the image's /etc/group.
    let merge = sec.supplemental_groups_policy == GroupsPolicy::Merge;
    if let (Some(n), true) = (&name, merge) {
        for (_, g, members) in &gr {
            if members.iter().any(|m| m == n) && !extra.contains(g) {
                extra.push(id((*g).into(), "group")?);
            }
        }
    }
    for g in &sec.supplemental_groups {
        let g = id(*g, "supplementalGroup")?;
        if !extra.contains(&g) {
            extra.push(g);
        }
    }
    // The primary group is in the supplementary set too, first, as containerd keeps it
    // (ContainerStatus.user reports the set; critest expects the primary gid in it).
    if !extra.contains(&gid) {
        extra.insert(0, gid);
    }
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merge adds the image's /etc/group memberships of the user to the request's groups;
    /// Strict gives the request's only. The primary gid is the same under both.
    #[test]
    fn groups_policy_merge_and_strict() {
        let files = UserFiles {
            passwd: "app:x:1000:1000::/:/bin/sh\n".into(),
            group: "app:x:1000:\nwheel:x:10:app\naudio:x:29:other,app\nnone:x:30:other\n".into(),
        };
        let mut sec = Security {
            run_as_user: Some(1000),
            supplemental_groups: vec![5000, 10],
            ..Default::default()
        };
        assert_eq!(
            user(&sec, "", &files).unwrap(),
            (1000, 1000, vec![1000, 10, 29, 5000])
        );
        sec.supplemental_groups_policy = GroupsPolicy::Strict;
        assert_eq!(
            user(&sec, "", &files).unwrap(),
            (1000, 1000, vec![1000, 5000, 10])
        );
        // By name, from the image's User, too.
        let sec = Security {
            supplemental_groups_policy: GroupsPolicy::Strict,
            ..Default::default()
        };
        assert_eq!(user(&sec, "app", &files).unwrap(), (1000, 1000, vec![1000]));
        let sec = Security::default();
        assert_eq!(
            user(&sec, "app", &files).unwrap(),
            (1000, 1000, vec![1000, 10, 29])
        );
        // Already among the groups: not repeated.
        let sec = Security {
            run_as_user: Some(1000),
            run_as_group: Some(10),
            ..Default::default()
        };
        assert_eq!(user(&sec, "", &files).unwrap(), (1000, 10, vec![10, 29]));
    }

    #[test]
    fn groups_and_passwd() {
        let g = groups("wheel:x:10:alice,bob\nstaff:x:50:\n");
        assert_eq!(g[0].2, ["alice", "bob"]);
        assert_eq!(
            passwd("root:x:0:0::/:/bin/sh\nbad\n"),
            [("root".into(), 0, 0)]
        );
    }

    /// runc refuses ids above 2147483647; 4294967295 is (uid_t)-1 and ran as root.
    #[test]
    fn ids_outside_runc_range_are_refused() {
        let files = UserFiles {
            passwd: "big:x:4294967295:0::/:/bin/sh\nbiggid:x:5:2147483648::/:/bin/sh\n\
                     member:x:7:7::/:/bin/sh\n"
                .into(),
            group: "huge:x:4294967295:member\n".into(),
        };
        let ok = |sec: &Security, image_user: &str| user(sec, image_user, &files);
        let err = |sec: &Security, image_user: &str| {
            let e = ok(sec, image_user).expect_err("accepted an id out of range");
            assert!(
                matches!(e, crate::runtime::error::RuntimeError::Invalid(_)),
                "{e}"
            );
            e.to_string()
        };
        let sec = |f: &dyn Fn(&mut Security)| {
            let mut s = Security::default();
            f(&mut s);
            s
        };
        for (v, field) in [
            (4294967295, "runAsUser"),
            (2147483648, "runAsUser"),
            (-1, "runAsUser"),
        ] {
            let m = err(&sec(&|s| s.run_as_user = Some(v)), "");
            assert!(m.contains(field) && m.contains(&v.to_string()), "{m}");
        }
        assert!(err(&sec(&|s| s.run_as_group = Some(4294967295)), "").contains("runAsGroup"));
        assert!(
            err(&sec(&|s| s.supplemental_groups = vec![1 << 31]), "").contains("supplementalGroup")
        );
        assert!(err(&Security::default(), "4294967295").contains("image user"));
        assert!(err(&Security::default(), "0:4294967295").contains("image group"));
        assert!(err(&sec(&|s| s.run_as_username = "big".into()), "").contains("uid"));
        assert!(err(&sec(&|s| s.run_as_username = "biggid".into()), "").contains("gid"));
        assert!(err(&sec(&|s| s.run_as_username = "member".into()), "").contains("group"));
        // The largest valid ids still work.
        let (u, g, _) = ok(
            &sec(&|s| {
                s.run_as_user = Some(2147483647);
                s.run_as_group = Some(2147483647);
            }),
            "",
        )
        .unwrap();
        assert_eq!((u, g), (2147483647, 2147483647));
    }
}
