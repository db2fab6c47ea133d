//! OCI seccomp profile (`linux.seccomp`) to a BPF filter through libseccomp.
//!
//! Owns: validating a profile and compiling it into a libseccomp filter context
//! ([`compile`]), exporting it as the kernel program the container init installs
//! ([`SeccompFilter::program`], see [`program`]), and loading a filter into the calling
//! thread directly ([`SeccompFilter::load`], used by tests).
//!
//! Semantics follow runc 1.1:
//! - `SCMP_ACT_KILL` is `KILL_THREAD`; `SCMP_ACT_ERRNO` / `SCMP_ACT_TRACE` use `errnoRet`
//!   (`defaultErrnoRet` for the default action) and fall back to `EPERM`.
//! - Syscall names this libseccomp does not know are skipped (the kernel cannot have them
//!   either); a rule whose action equals the default action is skipped.
//! - Argument conditions on distinct argument indexes are AND'd in one rule; when some index
//!   appears more than once, every condition becomes a rule of its own (OR), as runc does
//!   because libseccomp cannot compare one argument twice in a rule.
//! - `SCMP_CMP_MASKED_EQ` takes the mask from `value` and the expected value from `valueTwo`.
//! - `SCMP_ACT_NOTIFY` (seccomp agents, `listenerPath`) is not supported and is rejected.
//! - The filter does not set no_new_privs itself: the caller arranges no_new_privs or
//!   CAP_SYS_ADMIN before [`SeccompFilter::load`].
//!
//! Invariant: [`compile`] either returns a complete filter or an error naming the offending
//! field (`defaultAction`, `syscalls[i].action`, `architectures[i]`, ...); nothing is loaded
//! until [`SeccompFilter::load`].

mod program;

pub use program::Program;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Highest syscall argument index (seccomp sees six arguments).
const MAX_ARG_INDEX: usize = 5;

/// A compiled seccomp filter, ready to be loaded just before execve.
#[derive(Debug)]
pub struct SeccompFilter {
    ctx: ScmpFilterContext,
    /// `seccomp(2)` flags from `linux.seccomp.flags` (libseccomp applies its own copy of
    /// them only in [`SeccompFilter::load`]; the exported [`Program`] carries these).
    flags: u32,
}

/// Errors of seccomp profile compilation and loading.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A profile field holds a value this runtime does not support.
    #[error("linux.seccomp.{field}: {reason}")]
    Unsupported { field: String, reason: String },
    /// libseccomp refused to create the filter context.
    #[error("create seccomp filter context")]
    CreateContext(#[source] libseccomp::error::SeccompError),
    /// libseccomp refused an architecture.
    #[error("add architecture linux.seccomp.{field}")]
    AddArch {
        field: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused a filter attribute (flag).
    #[error("set filter attribute for linux.seccomp.{field}")]
    SetAttr {
        field: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused a rule.
    #[error("add rule linux.seccomp.{field} (syscall {syscall})")]
    AddRule {
        field: String,
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// Exporting the BPF program failed.
    #[error("export seccomp BPF program")]
    Export(#[source] libseccomp::error::SeccompError),
    /// Reading the exported BPF program back failed.
    #[error("read exported seccomp BPF program")]
    ExportFile(#[source] std::io::Error),
    /// Loading the filter into the kernel failed.
    #[error("load seccomp filter")]
    Load(#[source] libseccomp::error::SeccompError),
    /// An exported program has the wrong shape.
    #[error("seccomp program: {0}")]
    Program(String),
    /// The kernel refused to install the exported program.
    #[error("install seccomp filter")]
    Install(#[source] std::io::Error),
}

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Validates and compiles an OCI seccomp profile.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<SeccompFilter, SeccompError> {
    let default_action = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "defaultAction",
    )?;
    if let Some(path) = seccomp.listener_path() {
        if !path.as_os_str().is_empty() {
            return Err(unsupported(
                "listenerPath",
                "seccomp agents (SCMP_ACT_NOTIFY) are not supported",
            ));
        }
    }
    let mut ctx = ScmpFilterContext::new(default_action).map_err(SeccompError::CreateContext)?;
    // The caller sets no_new_privs (or holds CAP_SYS_ADMIN) exactly when the spec asks.
    ctx.set_ctl_nnp(false)
        .map_err(|source| SeccompError::SetAttr {
            field: "noNewPrivileges".into(),
            source,
        })?;

    for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
        let field = format!("architectures[{i}]");
        let scmp = scmp_arch(*arch, &field)?;
        // The native architecture is already present; adding it again is an error.
        let present = ctx
            .is_arch_present(scmp)
            .map_err(|source| SeccompError::AddArch {
                field: field.clone(),
                source,
            })?;
        if !present {
            ctx.add_arch(scmp)
                .map_err(|source| SeccompError::AddArch { field, source })?;
        }
    }

    let mut flags = 0;
    for (i, flag) in seccomp.flags().iter().flatten().enumerate() {
        let field = format!("flags[{i}]");
        let res = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                flags |= program::FLAG_TSYNC;
                ctx.set_ctl_tsync(true)
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                flags |= program::FLAG_LOG;
                ctx.set_ctl_log(true)
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                flags |= program::FLAG_SPEC_ALLOW;
                ctx.set_ctl_ssb(true)
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(unsupported(
                    field,
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies to SCMP_ACT_NOTIFY, which is not supported",
                ))
            }
        };
        res.map_err(|source| SeccompError::SetAttr { field, source })?;
    }

    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        add_syscall_rule(&mut ctx, rule, i, default_action)?;
    }
    Ok(SeccompFilter { ctx, flags })
}

impl SeccompFilter {
    /// Loads the filter into the calling thread (all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Needs no_new_privs or CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<(), SeccompError> {
        self.ctx.load().map_err(SeccompError::Load)
    }

    /// The kernel program and flags, for the container init to install.
    pub fn program(&self) -> Result<Program, SeccompError> {
        Program::new(self.bpf()?, self.flags)
    }

    /// The compiled BPF program (for `--debug` dumps and tests).
    pub fn bpf(&self) -> Result<Vec<u8>, SeccompError> {
        use std::io::{Read, Seek};
        use std::os::fd::{FromRawFd, OwnedFd};
        // libseccomp 2.5 (Debian 12) can only export to a file descriptor.
        // SAFETY: memfd_create with a valid C string; the result is checked below.
        let raw = unsafe { libc::memfd_create(c"crust-seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(SeccompError::ExportFile(std::io::Error::last_os_error()));
        }
        // SAFETY: raw is a fresh descriptor we own.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        self.ctx.export_bpf(&file).map_err(SeccompError::Export)?;
        let mut out = Vec::new();
        file.rewind()
            .and_then(|_| file.read_to_end(&mut out))
            .map_err(SeccompError::ExportFile)?;
        Ok(out)
    }
}

fn add_syscall_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    index: usize,
    default_action: ScmpAction,
) -> Result<(), SeccompError> {
    let act = action(
        rule.action(),
        rule.errno_ret(),
        &format!("syscalls[{index}].action"),
    )?;
    let mut conditions = Vec::new();
    let mut per_index = [0usize; MAX_ARG_INDEX + 1];
    for (j, arg) in rule.args().iter().flatten().enumerate() {
        let field = format!("syscalls[{index}].args[{j}]");
        conditions.push(condition(arg, &field)?);
        per_index[arg.index()] += 1;
    }
    if act == default_action {
        // libseccomp rejects a rule equal to the default action; it would be a no-op anyway.
        return Ok(());
    }
    let repeated_index = per_index.iter().any(|n| *n > 1);
    for name in rule.names() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            // Unknown to libseccomp, hence to this kernel's ABI: skipped as runc does.
            continue;
        };
        let field = format!("syscalls[{index}]");
        let add = |ctx: &mut ScmpFilterContext, conds: &[ScmpArgCompare]| {
            ctx.add_rule_conditional(act, syscall, conds)
                .map(|_| ())
                .map_err(|source| SeccompError::AddRule {
                    field: field.clone(),
                    syscall: name.clone(),
                    source,
                })
        };
        if repeated_index {
            for cond in &conditions {
                add(ctx, std::slice::from_ref(cond))?;
            }
        } else {
            add(ctx, &conditions)?;
        }
    }
    Ok(())
}

/// Maps an OCI action (+ errno/trace value) to libseccomp's.
fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    let value = |what: &str| -> Result<u16, SeccompError> {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(v).map_err(|_| {
            unsupported(
                field,
                format!("{what} value {v} does not fit the 16-bit seccomp return data"),
            )
        })
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(value("errno")?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value("trace")?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(unsupported(
                field,
                "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which is not supported",
            ))
        }
    })
}

fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare, SeccompError> {
    let index = arg.index();
    if index > MAX_ARG_INDEX {
        return Err(unsupported(
            format!("{field}.index"),
            format!("argument index {index} is out of range 0..={MAX_ARG_INDEX}"),
        ));
    }
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    // The index was checked above; the cast cannot truncate.
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

fn scmp_arch(arch: Arch, field: &str) -> Result<ScmpArch, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
        #[allow(unreachable_patterns)]
        other => {
            return Err(unsupported(
                field,
                format!("unknown architecture {other:?}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("profile parses")
    }

    /// How a forked child that loaded the filter and ran `probe` ended.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        /// The probe returned this errno (0 = success).
        Errno(i32),
        /// The child was killed by this signal.
        Signal(i32),
    }

    /// Forks, loads `filter` in the child, runs `probe` (returns an errno or 0) and reports.
    /// Forking keeps the filter out of the test harness's threads. Every probe runs twice:
    /// with libseccomp's own load and with the exported [`Program`] the init installs, which
    /// must behave the same.
    fn run_in_child(filter: &SeccompFilter, probe: fn() -> i32) -> Outcome {
        let program = filter.program().expect("export");
        let by_libseccomp = run_loaded(&|| filter.load(), probe);
        let by_program = run_loaded(&|| program.load(), probe);
        assert_eq!(by_libseccomp, by_program, "exported program differs");
        by_program
    }

    fn run_loaded(load: &dyn Fn() -> Result<(), SeccompError>, probe: fn() -> i32) -> Outcome {
        // SAFETY: the child only loads the filter, runs the probe and _exits; glibc's fork
        // resets allocator locks so the allocation inside libseccomp's load is safe.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let code = match load() {
                Ok(()) => probe(),
                Err(_) => 250,
            };
            // SAFETY: terminating the forked child without running the harness's atexit.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        if libc::WIFSIGNALED(status) {
            Outcome::Signal(libc::WTERMSIG(status))
        } else {
            Outcome::Errno(libc::WEXITSTATUS(status))
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn probe_getcwd() -> i32 {
        let mut buf = [0u8; 256];
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
        if r.is_null() {
            errno()
        } else {
            0
        }
    }

    fn probe_mkdir() -> i32 {
        // A path that cannot exist, so an unfiltered mkdir fails with ENOENT (2).
        let path = c"/nonexistent-crust-seccomp-test/dir";
        // SAFETY: path is a valid C string.
        if unsafe { libc::mkdir(path.as_ptr(), 0o755) } < 0 {
            errno()
        } else {
            0
        }
    }

    /// personality(0xffffffff) only queries; used to test argument conditions.
    fn probe_personality_query() -> i32 {
        // SAFETY: querying the personality has no side effects.
        if unsafe { libc::personality(0xffff_ffff) } < 0 {
            errno()
        } else {
            0
        }
    }

    fn probe_personality_linux() -> i32 {
        // SAFETY: PER_LINUX (0) is the personality the test process already has.
        if unsafe { libc::personality(0) } < 0 {
            errno()
        } else {
            0
        }
    }

    #[test]
    fn errno_default_eperm_for_denied_getcwd() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
        })))
        .expect("compiles");
        assert_eq!(run_in_child(&f, probe_getcwd), Outcome::Errno(libc::EPERM));
        // Other syscalls are untouched.
        assert_eq!(run_in_child(&f, probe_mkdir), Outcome::Errno(libc::ENOENT));
    }

    #[test]
    fn custom_errno_values() {
        for errno_ret in [libc::ENOSYS, 42, libc::EACCES] {
            let f = compile(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}]
            })))
            .expect("compiles");
            assert_eq!(run_in_child(&f, probe_mkdir), Outcome::Errno(errno_ret));
        }
    }

    #[test]
    fn default_errno_with_default_errno_ret_and_allow_list() {
        // Deny-by-default profile: everything the probe and _exit need is allowed except getcwd.
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["exit", "exit_group", "prctl", "seccomp", "rt_sigreturn", "mkdir", "mkdirat"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ALLOW"}
            ]
        })))
        .expect("compiles");
        assert_eq!(run_in_child(&f, probe_getcwd), Outcome::Errno(38));
        assert_eq!(run_in_child(&f, probe_mkdir), Outcome::Errno(libc::ENOENT));
    }

    #[test]
    fn kill_actions_kill_with_sigsys() {
        for act in [
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
        ] {
            let f = compile(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": act}]
            })))
            .expect("compiles");
            assert_eq!(
                run_in_child(&f, probe_getcwd),
                Outcome::Signal(libc::SIGSYS),
                "{act}"
            );
        }
    }

    #[test]
    fn trap_raises_sigsys_and_log_allows() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_TRAP"},
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}
            ]
        })))
        .expect("compiles");
        assert_eq!(
            run_in_child(&f, probe_getcwd),
            Outcome::Signal(libc::SIGSYS)
        );
        assert_eq!(run_in_child(&f, probe_mkdir), Outcome::Errno(libc::ENOENT));
    }

    #[test]
    fn argument_conditions_and_multi_arg_semantics() {
        // One condition: deny personality(0xffffffff) only.
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}]
        })))
        .expect("compiles");
        assert_eq!(
            run_in_child(&f, probe_personality_query),
            Outcome::Errno(13)
        );
        assert_eq!(run_in_child(&f, probe_personality_linux), Outcome::Errno(0));

        // Masked equality: value is the mask, valueTwo the expected value.
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14,
                          "args": [{"index": 0, "value": 255, "valueTwo": 255, "op": "SCMP_CMP_MASKED_EQ"}]}]
        })))
        .expect("compiles");
        assert_eq!(
            run_in_child(&f, probe_personality_query),
            Outcome::Errno(14)
        );
        assert_eq!(run_in_child(&f, probe_personality_linux), Outcome::Errno(0));

        // The same index twice: runc turns each condition into its own rule (OR), so
        // both personality(0) and personality(0xffffffff) are denied.
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 15,
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                                   {"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}]
        })))
        .expect("compiles");
        assert_eq!(
            run_in_child(&f, probe_personality_query),
            Outcome::Errno(15)
        );
        assert_eq!(
            run_in_child(&f, probe_personality_linux),
            Outcome::Errno(15)
        );

        // Distinct indexes are AND'd: arg0 == 0xffffffff AND arg1 == 7 never matches here
        // (personality has one argument; arg1 holds whatever the register has).
        for op in [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
        ] {
            compile(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 0, "value": 1, "op": op},
                                       {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}]
            })))
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        // GT: personality(0xffffffff) > 1 denied, personality(0) allowed.
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 16,
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]}]
        })))
        .expect("compiles");
        assert_eq!(
            run_in_child(&f, probe_personality_query),
            Outcome::Errno(16)
        );
        assert_eq!(run_in_child(&f, probe_personality_linux), Outcome::Errno(0));
    }

    #[test]
    fn flags_compile() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]
        })))
        .expect("compiles");
        assert!(!f.bpf().expect("bpf").is_empty());
        let p = serde_json::to_value(f.program().expect("program")).expect("json");
        assert_eq!(p["flags"], program::FLAG_LOG | program::FLAG_SPEC_ALLOW);
        assert_eq!(run_in_child(&f, probe_getcwd), Outcome::Errno(5));
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]
        })))
        .expect("tsync compiles");
        assert_eq!(run_in_child(&f, probe_getcwd), Outcome::Errno(0));
    }

    #[test]
    fn rule_equal_to_default_is_skipped() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["exit", "exit_group", "prctl", "seccomp"], "action": "SCMP_ACT_ALLOW"}
            ]
        })))
        .expect("compiles");
        assert_eq!(run_in_child(&f, probe_getcwd), Outcome::Errno(libc::EPERM));
    }

    #[test]
    fn bad_profiles_are_rejected_naming_the_field() {
        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_NOTIFY"
        })))
        .expect_err("notify rejected");
        assert!(err.to_string().contains("defaultAction"), "{err}");

        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .expect_err("notify rejected");
        assert!(err.to_string().contains("syscalls[1].action"), "{err}");

        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        })))
        .expect_err("index 6 rejected");
        assert!(
            err.to_string().contains("syscalls[0].args[0].index"),
            "{err}"
        );

        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000
        })))
        .expect_err("errno too large");
        assert!(err.to_string().contains("defaultAction"), "{err}");

        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        })))
        .expect_err("waitkill rejected");
        assert!(err.to_string().contains("flags[0]"), "{err}");

        let err = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"
        })))
        .expect_err("listener rejected");
        assert!(err.to_string().contains("listenerPath"), "{err}");

        // Unknown action / arch / op / flag names are refused when config.json is parsed,
        // with the offending value in the message.
        for (json, word) in [
            (r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, "SCMP_ACT_BOGUS"),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#,
                "SCMP_ARCH_VAX",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
                "SCMP_CMP_XX",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NOPE"]}"#,
                "SECCOMP_FILTER_FLAG_NOPE",
            ),
        ] {
            let err = serde_json::from_str::<LinuxSeccomp>(json).expect_err(word);
            assert!(err.to_string().contains(word), "{err}");
        }
    }
}
