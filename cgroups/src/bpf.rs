//! The few `bpf(2)` commands needed for cgroup v2 device filtering: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup with `BPF_F_ALLOW_MULTI`,
//! list and detach the programs attached before (so an update replaces the filter).
//!
//! Hand-written on purpose: the program is a handful of instructions assembled in
//! [`crate::devices`]; the Rust eBPF crates either load compiled ELF objects and pull in a
//! large dependency tree (aya) or link the C libbpf (libbpf-rs), both heavy for five syscalls
//! in crust-runc's `create` hot path. Attribute layouts follow `union bpf_attr` in
//! linux/bpf.h; unused trailing bytes are zero, which the kernel requires.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::devices::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Big enough for every command used here; zero-filled.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32_at(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64_at(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable, zero-initialised buffer of the size passed; the
    // pointers stored inside it (instructions, license, log, id array) outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf command returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads a device program; on failure returns the verifier log with the error.
pub(crate) fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, (std::io::Error, String)> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut attr = Attr::new();
    attr.u32_at(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32_at(4, insns.len() as u32)
        .u64_at(8, insns.as_ptr() as u64)
        .u64_at(16, LICENSE.as_ptr() as u64)
        .u32_at(24, 1) // log_level
        .u32_at(28, log.len() as u32)
        .u64_at(32, log.as_mut_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
    }
}

/// Ids of the device programs attached to the cgroup `cg`.
pub(crate) fn query_device_programs(cg: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    attr.u32_at(0, cg.as_raw_fd() as u32)
        .u32_at(4, BPF_CGROUP_DEVICE)
        .u64_at(16, ids.as_mut_ptr() as u64)
        .u32_at(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let n = attr.get_u32(24) as usize;
    ids.truncate(n.min(64));
    Ok(ids)
}

/// Attaches `prog` to `cg` next to any programs already there.
pub(crate) fn attach_device_program(cg: &OwnedFd, prog: &OwnedFd) -> std::io::Result<()> {
    let mut attr = Attr::new();
    attr.u32_at(0, cg.as_raw_fd() as u32)
        .u32_at(4, prog.as_raw_fd() as u32)
        .u32_at(8, BPF_CGROUP_DEVICE)
        .u32_at(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

/// Detaches the device program with id `id` from `cg`.
pub(crate) fn detach_device_program(cg: &OwnedFd, id: u32) -> std::io::Result<()> {
    let mut attr = Attr::new();
    attr.u32_at(0, id);
    let prog = fd_from(bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?);
    let mut attr = Attr::new();
    attr.u32_at(0, cg.as_raw_fd() as u32)
        .u32_at(4, prog.as_raw_fd() as u32)
        .u32_at(8, BPF_CGROUP_DEVICE);
    bpf(BPF_PROG_DETACH, &mut attr).map(|_| ())
}
