//! What the host kernel holds of a client process at the time of a call,
//! for memsrv's `/proc/<pid>/status` ([`memsrv::KernelRecord`]): its
//! `Umask`, `PPid` and real, saved set and filesystem ids, read from the
//! host's `/proc/<hostpid>/status` each time the status is read, so a
//! `umask`, `setresuid` or reparenting since shows at once. The effective
//! ids stay the transport's (`SO_PEERCRED`, then `SCM_CREDENTIALS`).
//! `PPid` is as the daemon's pid namespace sees it, which is the callers'
//! when they share it (a parent outside it reads 0, as Linux shows it).

use memsrv::KernelRecord;

/// The record of host process `host_pid` now; `None` if it is gone or
/// its status lacks a line (a kernel before 4.7 has no `Umask`).
pub fn kernel_record(host_pid: u32) -> Option<KernelRecord> {
    let text = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    parse(&text)
}

/// A [`KernelRecord`] from the text of a Linux `/proc/<pid>/status`.
pub fn parse(text: &str) -> Option<KernelRecord> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(":\t"))
        })
    };
    // Real, effective, saved set, filesystem: the effective one is not
    // taken from here.
    let ids = |name: &str| -> Option<[u32; 3]> {
        let mut columns = field(name)?.split('\t').map(|n| n.parse::<u32>().ok());
        let real = columns.next()??;
        let _effective = columns.next()??;
        Some([real, columns.next()??, columns.next()??])
    };
    Some(KernelRecord {
        ppid: field("PPid")?.parse().ok()?,
        umask: u32::from_str_radix(field("Umask")?, 8).ok()?,
        uids: ids("Uid")?,
        gids: ids("Gid")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hosts_own_lines() {
        let text = "Name:\tcat\nUmask:\t0027\nState:\tR (running)\nPPid:\t42\n\
                    Uid:\t0\t1000\t5\t1001\nGid:\t10\t100\t6\t101\nGroups:\t\n";
        let record = parse(text).unwrap();
        assert_eq!(
            record,
            KernelRecord {
                ppid: 42,
                umask: 0o027,
                uids: [0, 5, 1001],
                gids: [10, 6, 101],
            }
        );
        assert_eq!(parse(&text.replace("Umask:\t0027\n", "")), None);
        assert_eq!(parse(&text.replace("\t1001", "")), None);
        let own = kernel_record(std::process::id()).unwrap();
        // SAFETY: getppid, getuid and getgid cannot fail and touch no
        // memory.
        let (ppid, uid, gid) = unsafe { (libc::getppid(), libc::getuid(), libc::getgid()) };
        assert_eq!(own.ppid, ppid as u32);
        assert_eq!((own.uids[0], own.gids[0]), (uid, gid));
    }
}
