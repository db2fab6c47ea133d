//! Device access rules: the v1 `devices.allow`/`devices.deny` transitions, and for v2 the rule
//! set reduced to a default plus exceptions and compiled to a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program.
//!
//! Semantics are runc's (which mirror the v1 kernel controller): a rule list is applied to a
//! "deny all" base; a rule of type `a` with wildcard major and minor resets the default to its
//! allow/deny and drops every exception; any other rule either adds an exception (when it
//! differs from the default) or removes the access bits it names from the exception with
//! exactly the same type and numbers (no hole punching in wildcard exceptions).
//!
//! v1 updates are minimal transitions from the state in `devices.list` (as runc): only when the
//! default changes, or the current state is a black-list whose exceptions the kernel does not
//! list, is a disruptive `a *:* rwm` rule written first; otherwise dropped bits are denied and
//! gained bits allowed, so running processes never lose access to devices they keep.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// BPF_DEVCG_ACC_* access bits (also used for the rule sets).
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// BPF_DEVCG_DEV_* device types.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// The device rules runc appends after the spec's own (runc 1.1 and ≥ 1.2.4 `AllowedDevices`):
/// mknod of any char/block device, /dev/null, random, full, tty, zero, urandom, ptmx, the pty
/// slaves (136:*) and tun/tap (10:200). A runtime that wants runc's behaviour passes
/// `spec rules ++ these` to [`crate::Cgroup::apply`]; with the "deny all" base a spec with no
/// rules then gets exactly this list.
pub fn default_allowed_devices() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// "rwm" → access bits; `None` if another letter appears. Empty means "rwm" (what the
/// runtime-spec's examples and runc assume for deny-all rules without access).
pub(crate) fn parse_access(s: &str) -> Option<u8> {
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    Some(if a == 0 { ACC_ALL } else { a })
}

fn access_str(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// Device type of a rule; `u` (unbuffered char) is a char device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Block,
    Char,
}

/// One validated rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    pub(crate) kind: Kind,
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    pub(crate) access: u8,
}

impl Rule {
    /// Converts a validated spec rule (see `resources::validate`).
    pub(crate) fn from_spec(d: &LinuxDeviceCgroup) -> Rule {
        let kind = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U | LinuxDeviceType::P => Kind::Char,
        };
        let num = |v: Option<i64>| v.filter(|v| *v >= 0).and_then(|v| u32::try_from(v).ok());
        Rule {
            allow: d.allow(),
            kind,
            major: num(d.major()),
            minor: num(d.minor()),
            access: d
                .access()
                .as_deref()
                .and_then(parse_access)
                .unwrap_or(ACC_ALL),
        }
    }

    /// The v1 `devices.allow`/`devices.deny` line: "c 1:3 rwm", "a *:* rwm".
    pub(crate) fn v1_line(&self) -> String {
        let t = match self.kind {
            Kind::All => 'a',
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{t} {}:{} {}",
            n(self.major),
            n(self.minor),
            access_str(self.access)
        )
    }

    fn is_reset(&self) -> bool {
        self.kind == Kind::All && self.major.is_none() && self.minor.is_none()
    }
}

/// A rule set reduced to a default and exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleSet {
    pub(crate) default_allow: bool,
    /// Exceptions to the default (their `allow` is `!default_allow`).
    pub(crate) exceptions: Vec<Rule>,
}

impl RuleSet {
    /// Applies `rules` in order, starting from "deny all".
    pub(crate) fn reduce(rules: &[Rule]) -> RuleSet {
        let mut set = RuleSet {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for r in rules {
            if r.is_reset() {
                set.default_allow = r.allow;
                set.exceptions.clear();
            } else if r.allow == set.default_allow {
                for e in set.exceptions.iter_mut() {
                    if e.kind == r.kind && e.major == r.major && e.minor == r.minor {
                        e.access &= !r.access;
                    }
                }
                set.exceptions.retain(|e| e.access != 0);
            } else if let Some(e) = set
                .exceptions
                .iter_mut()
                .find(|e| e.kind == r.kind && e.major == r.major && e.minor == r.minor)
            {
                e.access |= r.access;
            } else {
                set.exceptions.push(*r);
            }
        }
        set
    }

    /// The state shown by v1 `devices.list`: "a *:* rwm" means allow-by-default (its deny
    /// exceptions are not listed), otherwise the lines are the allowed exceptions.
    pub(crate) fn from_v1_list(text: &str) -> Option<RuleSet> {
        let mut exceptions = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let (Some(t), Some(nums), Some(acc)) = (f.next(), f.next(), f.next()) else {
                return None;
            };
            let (maj, min) = nums.split_once(':')?;
            let num = |v: &str| -> Option<Option<u32>> {
                if v == "*" {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            };
            let kind = match t {
                "a" => Kind::All,
                "b" => Kind::Block,
                "c" => Kind::Char,
                _ => return None,
            };
            let rule = Rule {
                allow: true,
                kind,
                major: num(maj)?,
                minor: num(min)?,
                access: parse_access(acc)?,
            };
            if rule.is_reset() {
                return Some(RuleSet {
                    default_allow: true,
                    exceptions: Vec::new(),
                });
            }
            exceptions.push(rule);
        }
        Some(RuleSet {
            default_allow: false,
            exceptions,
        })
    }

    /// The v1 rules that turn the cgroup's current state `self` into `target`.
    pub(crate) fn transition(&self, target: &RuleSet) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut old: &[Rule] = &self.exceptions;
        if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                allow: target.default_allow,
                kind: Kind::All,
                major: None,
                minor: None,
                access: ACC_ALL,
            });
            old = &[];
        }
        let same =
            |a: &Rule, b: &Rule| a.kind == b.kind && a.major == b.major && a.minor == b.minor;
        for o in old {
            let kept = target
                .exceptions
                .iter()
                .find(|t| same(t, o))
                .map_or(0, |t| t.access);
            let dropped = o.access & !kept;
            if dropped != 0 {
                out.push(Rule {
                    allow: target.default_allow,
                    access: dropped,
                    ..*o
                });
            }
        }
        for t in &target.exceptions {
            let had = old.iter().find(|o| same(o, t)).map_or(0, |o| o.access);
            let gained = t.access & !had;
            if gained != 0 {
                out.push(Rule {
                    allow: !target.default_allow,
                    access: gained,
                    ..*t
                });
            }
        }
        out
    }

    /// The BPF program: returns 1 (allow) or 0 (deny) for the device access in its context
    /// (`struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, access_type =
    /// access << 16 | type). Allow exceptions match when the requested access is a subset of
    /// theirs; deny exceptions match when it overlaps theirs.
    pub(crate) fn program(&self) -> Vec<Insn> {
        let mut p = vec![
            Insn::ldx_w(2, 1, 0),   // r2 = ctx->access_type
            Insn::and32(2, 0xffff), // r2 = type
            Insn::ldx_w(3, 1, 0),   // r3 = ctx->access_type
            Insn::rsh32(3, 16),     // r3 = access
            Insn::ldx_w(4, 1, 4),   // r4 = major
            Insn::ldx_w(5, 1, 8),   // r5 = minor
        ];
        let verdict = i32::from(!self.default_allow);
        for e in &self.exceptions {
            // Each test jumps to the end of this block when the rule does not match.
            let mut block: Vec<Insn> = Vec::new();
            match e.kind {
                Kind::All => {}
                Kind::Block => block.push(Insn::jne_imm(2, DEV_BLOCK)),
                Kind::Char => block.push(Insn::jne_imm(2, DEV_CHAR)),
            }
            if e.access != ACC_ALL || !e.allow {
                block.push(Insn::mov32_reg(1, 3)); // r1 = access (ctx no longer needed)
                if e.allow {
                    // requested ⊆ allowed ⇔ (req & ~allowed) == 0
                    block.push(Insn::and32(1, i32::from(!e.access & ACC_ALL)));
                    block.push(Insn::jne_imm(1, 0));
                } else {
                    // deny if (req & denied) != 0
                    block.push(Insn::and32(1, i32::from(e.access)));
                    block.push(Insn::jeq_imm(1, 0));
                }
            }
            if let Some(m) = e.major {
                block.push(Insn::jne_imm(4, m as i32)); // same bits, 32-bit compare
            }
            if let Some(m) = e.minor {
                block.push(Insn::jne_imm(5, m as i32));
            }
            block.push(Insn::mov_imm(0, verdict));
            block.push(Insn::exit());
            let n = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                if insn.is_jump_to_end() {
                    insn.off = (n - i - 1) as i16;
                }
            }
            p.extend(block);
        }
        p.push(Insn::mov_imm(0, i32::from(self.default_allow)));
        p.push(Insn::exit());
        p
    }
}

/// One eBPF instruction (`struct bpf_insn`): opcode, dst (low nibble) and src (high nibble)
/// registers, offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    pub(crate) regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

// Opcode parts from linux/bpf_common.h and linux/bpf.h.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
/// 32-bit compares (Linux ≥ 5.1): device numbers are u32, so no sign-extension surprises.
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;
/// Marker offset for "jump to the end of the current rule block", patched by `program`.
const TO_END: i16 = i16::MIN;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
    fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    fn and32(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
    }
    fn rsh32(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
    }
    fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    fn mov_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn jne_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, TO_END, imm)
    }
    fn jeq_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_JMP32 | BPF_JEQ | BPF_K, dst, 0, TO_END, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn is_jump_to_end(&self) -> bool {
        self.code & 0x07 == BPF_JMP32 && self.off == TO_END
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, acc: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: parse_access(acc).unwrap(),
        }
    }

    /// Runs the program on one access, as the kernel would (a tiny interpreter for the
    /// instructions `program` emits).
    fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                0x61 => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                0xbc => r[dst] = r[src] as u32 as u64,
                0xb7 => r[dst] = i.imm as i64 as u64,
                0x56 => {
                    if r[dst] as u32 != i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                0x16 => {
                    if r[dst] as u32 == i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                0x95 => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;
    const C: u32 = DEV_CHAR as u32;
    const B: u32 = DEV_BLOCK as u32;

    #[test]
    fn runc_style_whitelist() {
        let rules = [
            rule(false, Kind::All, None, None, "rwm"),
            rule(true, Kind::Char, None, None, "m"),
            rule(true, Kind::Block, None, None, "m"),
            rule(true, Kind::Char, Some(1), Some(3), "rwm"),
            rule(true, Kind::Char, Some(136), None, "rwm"),
            rule(true, Kind::Char, Some(5), Some(0), "rw"),
        ];
        let set = RuleSet::reduce(&rules);
        assert!(!set.default_allow);
        assert_eq!(set.exceptions.len(), 5);
        let p = set.program();
        assert_eq!(run(&p, C, R | W, 1, 3), 1); // /dev/null
        assert_eq!(run(&p, C, R, 1, 5), 0); // /dev/zero not listed
        assert_eq!(run(&p, C, M, 1, 5), 1); // mknod of any char
        assert_eq!(run(&p, B, M, 8, 0), 1);
        assert_eq!(run(&p, B, R, 8, 0), 0);
        assert_eq!(run(&p, C, R | W, 136, 7), 1); // pts
        assert_eq!(run(&p, C, R | W, 5, 0), 1);
        assert_eq!(run(&p, C, M, 5, 0), 1); // via "c *:* m"
        assert_eq!(run(&p, C, R | W | M, 5, 0), 0); // needs both, no single rule allows
    }

    #[test]
    fn deny_all_and_blacklist() {
        let set = RuleSet::reduce(&[rule(false, Kind::All, None, None, "")]);
        assert_eq!(
            set,
            RuleSet {
                default_allow: false,
                exceptions: vec![]
            }
        );
        assert_eq!(run(&set.program(), C, R, 1, 3), 0);
        // The base is "deny all", as runc: no rules, no access.
        assert_eq!(RuleSet::reduce(&[]), set);

        let set = RuleSet::reduce(&[
            rule(true, Kind::All, None, None, "rwm"),
            rule(false, Kind::Char, Some(1), Some(3), "w"),
        ]);
        assert!(set.default_allow);
        let p = set.program();
        assert_eq!(run(&p, C, R, 1, 3), 1);
        assert_eq!(run(&p, C, R | W, 1, 3), 0); // overlap with a denied bit
        assert_eq!(run(&p, C, W, 1, 5), 1);
        assert_eq!(run(&p, B, W, 1, 3), 1);
    }

    #[test]
    fn deny_removes_exact_exception_only() {
        let set = RuleSet::reduce(&[
            rule(false, Kind::All, None, None, "rwm"),
            rule(true, Kind::Char, Some(1), None, "rw"),
            rule(true, Kind::Char, Some(1), Some(3), "rw"),
            rule(false, Kind::Char, Some(1), Some(3), "w"),
            rule(false, Kind::Char, Some(1), Some(5), "rw"), // no exact match: no hole
        ]);
        assert_eq!(
            set.exceptions,
            vec![
                rule(true, Kind::Char, Some(1), None, "rw"),
                rule(true, Kind::Char, Some(1), Some(3), "r"),
            ]
        );
        // a later reset wins
        let set = RuleSet::reduce(&[
            rule(false, Kind::All, None, None, "rwm"),
            rule(true, Kind::Char, Some(1), Some(3), "rw"),
            rule(true, Kind::All, None, None, "rwm"),
        ]);
        assert_eq!(
            set,
            RuleSet {
                default_allow: true,
                exceptions: vec![]
            }
        );
    }

    #[test]
    fn v1_transitions_are_minimal() {
        let allow_all = RuleSet::from_v1_list("a *:* rwm\n").unwrap();
        assert!(allow_all.default_allow);
        let cur = RuleSet::from_v1_list("c 1:3 rwm\nc 1:5 rwm\nc 136:* rw\n").unwrap();
        assert_eq!(cur.exceptions.len(), 3);
        let target = RuleSet::reduce(&[
            rule(false, Kind::All, None, None, "rwm"),
            rule(true, Kind::Char, Some(1), Some(3), "r"),
            rule(true, Kind::Char, Some(136), None, "rw"),
            rule(true, Kind::Char, Some(1), Some(7), "rwm"),
        ]);
        let lines = |rs: Vec<Rule>| -> Vec<(bool, String)> {
            rs.iter().map(|r| (r.allow, r.v1_line())).collect()
        };
        assert_eq!(
            lines(cur.transition(&target)),
            [
                (false, "c 1:3 wm".to_string()),
                (false, "c 1:5 rwm".to_string()),
                (true, "c 1:7 rwm".to_string()),
            ]
        );
        assert_eq!(lines(target.transition(&target)), []);
        // From allow-all (deny exceptions unknown): disruptive reset first.
        assert_eq!(
            lines(allow_all.transition(&target))[..2],
            [
                (false, "a *:* rwm".to_string()),
                (true, "c 1:3 r".to_string())
            ]
        );
        // To a black-list: reset to allow, then the deny exceptions.
        let black = RuleSet::reduce(&[
            rule(true, Kind::All, None, None, "rwm"),
            rule(false, Kind::Block, Some(8), None, "w"),
        ]);
        assert_eq!(
            lines(cur.transition(&black)),
            [
                (true, "a *:* rwm".to_string()),
                (false, "b 8:* w".to_string())
            ]
        );
        assert!(RuleSet::from_v1_list("x 1:3 rwm").is_none());
    }

    #[test]
    fn default_devices_alone_are_a_whitelist() {
        let rules: Vec<Rule> = default_allowed_devices()
            .iter()
            .map(Rule::from_spec)
            .collect();
        let set = RuleSet::reduce(&rules);
        assert!(!set.default_allow);
        assert_eq!(set.exceptions.len(), 11);
        let p = set.program();
        assert_eq!(run(&p, C, R | W, 1, 9), 1); // urandom
        assert_eq!(run(&p, C, R | W, 10, 200), 1); // tun
        assert_eq!(run(&p, B, R, 8, 0), 0); // disks
        assert_eq!(run(&p, C, R, 4, 1), 0); // tty1
    }

    #[test]
    fn v1_lines() {
        assert_eq!(
            rule(false, Kind::All, None, None, "").v1_line(),
            "a *:* rwm"
        );
        assert_eq!(
            rule(true, Kind::Char, Some(1), Some(3), "mr").v1_line(),
            "c 1:3 rm"
        );
        assert_eq!(
            rule(true, Kind::Block, Some(8), None, "w").v1_line(),
            "b 8:* w"
        );
        assert!(parse_access("rwx").is_none());
    }
}
