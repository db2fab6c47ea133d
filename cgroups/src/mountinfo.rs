//! `/proc/<pid>/mountinfo` parsing (proc(5) format).
//!
//! Hand-written: the format is one line per mount and the few fields needed here do not
//! justify a dependency.

use std::io;
use std::path::PathBuf;

/// One mountinfo line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Root of the mount within its filesystem (field 4).
    pub root: PathBuf,
    /// Mount point relative to the reader's root (field 5).
    pub mount_point: PathBuf,
    /// Per-mount options ("rw,nosuid,relatime").
    pub options: String,
    /// Optional fields ("shared:1", "master:2", ...).
    pub optional: Vec<String>,
    /// Filesystem type.
    pub fstype: String,
    /// Per-superblock options ("rw,cpu,cpuacct").
    pub super_options: String,
}

/// Decodes the octal escapes (`\040` ...) mountinfo uses for spaces and the like.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..i + 4];
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// Parses mountinfo text.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let mut fields = line.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let _dev = fields.next()?;
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let options = fields.next()?.to_string();
    let mut optional = Vec::new();
    for f in fields.by_ref() {
        if f == "-" {
            break;
        }
        optional.push(f.to_string());
    }
    let fstype = fields.next()?.to_string();
    let _source = fields.next()?;
    let super_options = fields.next().unwrap_or_default().to_string();
    Some(MountInfo {
        root,
        mount_point,
        options,
        optional,
        fstype,
        super_options,
    })
}

/// The calling thread's mount table (`/proc/thread-self`: threads may have their own
/// mount namespace).
pub fn read_self() -> io::Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo")?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
                    40 25 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, PathBuf::from("/mnt1"));
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[0].optional, vec!["master:1", "shared:7"]);
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[1].fstype, "cgroup");
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert!(m[1].optional.is_empty());
    }
}
