//! A compiled seccomp filter as the kernel takes it: the classic-BPF program libseccomp
//! exported, plus the `seccomp(2)` filter flags the profile asked for.
//!
//! The runtime compiles a profile once (in `create`, which validates it anyway) and hands the
//! program to the container init in the sync request; the init only installs it with one
//! `seccomp(SECCOMP_SET_MODE_FILTER)` call, so it needs neither libseccomp's allocations nor
//! a second compilation, and `create` reports every profile error.
//!
//! Wire format (inside the JSON request): `{"bpf": "<hex of struct sock_filter[]>", "flags": N}`,
//! `sock_filter` in host byte order (8 bytes: u16 code, u8 jt, u8 jf, u32 k).
//!
//! Invariant: a [`Program`] holds a whole number of instructions, at most `BPF_MAXINSNS`.

use serde::{Deserialize, Serialize};

use super::SeccompError;

/// `SECCOMP_SET_MODE_FILTER` (linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
/// `SECCOMP_FILTER_FLAG_TSYNC`.
pub(crate) const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`.
pub(crate) const FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub(crate) const FLAG_SPEC_ALLOW: u32 = 4;
/// Size of one `struct sock_filter`.
const INSN_SIZE: usize = 8;
/// `BPF_MAXINSNS` (linux/bpf_common.h): the kernel refuses longer classic programs.
const MAX_INSNS: usize = 4096;

/// A filter ready to be installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    #[serde(with = "hex")]
    bpf: Vec<u8>,
    flags: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const u8,
}

impl Program {
    /// Wraps an exported program; `bpf` must be a non-empty array of `sock_filter`.
    pub(crate) fn new(bpf: Vec<u8>, flags: u32) -> Result<Program, SeccompError> {
        let n = bpf.len() / INSN_SIZE;
        if bpf.is_empty() || !bpf.len().is_multiple_of(INSN_SIZE) || n > MAX_INSNS {
            return Err(SeccompError::Program(format!(
                "{} bytes is not a program of 1..={MAX_INSNS} instructions",
                bpf.len()
            )));
        }
        Ok(Program { bpf, flags })
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.bpf.len() / INSN_SIZE
    }

    /// Never true for a [`Program`] (see the invariant); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.bpf.is_empty()
    }

    /// Installs the filter on the calling thread (all threads with TSYNC). The caller holds
    /// CAP_SYS_ADMIN or has set no_new_privs. Allocates nothing.
    pub fn load(&self) -> Result<(), SeccompError> {
        // Checked again: a request decoded from the wire did not pass through `new`.
        let n = self.len();
        if n == 0 || n > MAX_INSNS || !self.bpf.len().is_multiple_of(INSN_SIZE) {
            return Err(SeccompError::Program(format!(
                "{} bytes is not a BPF program",
                self.bpf.len()
            )));
        }
        let prog = SockFprog {
            len: n as libc::c_ushort,
            filter: self.bpf.as_ptr(),
        };
        // SAFETY: `prog` points at `n` complete sock_filter structs that live across the
        // call; the kernel copies the program before returning.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const SockFprog,
            )
        };
        if r != 0 {
            return Err(SeccompError::Install(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// serde for bytes as a lowercase hex string (JSON has no byte strings).
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        s.as_bytes()
            .chunks(2)
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("not a hex digit"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_roundtrip_and_shape_checks() {
        let p = Program::new(vec![0, 1, 2, 0xab, 0xff, 0x10, 7, 8], FLAG_LOG).expect("one insn");
        let text = serde_json::to_string(&p).expect("json");
        assert_eq!(text, r#"{"bpf":"000102abff100708","flags":2}"#);
        let back: Program = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, p);
        assert_eq!(back.len(), 1);
        assert!(Program::new(vec![], 0).is_err());
        assert!(Program::new(vec![0; 9], 0).is_err());
        assert!(Program::new(vec![0; INSN_SIZE * (MAX_INSNS + 1)], 0).is_err());
        assert!(serde_json::from_str::<Program>(r#"{"bpf":"0g","flags":0}"#).is_err());
        // A program smuggled in through the wire is still checked before the syscall.
        let bad: Program = serde_json::from_str(r#"{"bpf":"00","flags":0}"#).expect("parses");
        assert!(matches!(bad.load(), Err(SeccompError::Program(_))));
    }
}
