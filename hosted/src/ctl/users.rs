//! `nommu-ctl users`: what each uid holds — its processes' mappings, the
//! SysV segments and memory-filesystem pages it created, its connections —
//! against the daemon's limits (`--max-process-memory`,
//! `--max-user-memory`, `--max-clients-per-user`), from the server's
//! `Users` view.

use crate::records::Records;
use protocol::message::{UserUsage, UsersHead};
use protocol::PAGE_SIZE;
use serde_json::{json, Value};
use std::fmt::Write;

/// The `Users` view decoded.
pub struct Users {
    pub head: UsersHead,
    pub users: Vec<UserUsage>,
}

/// Decode the bytes of `ProcView::Users`.
pub fn decode_users(bytes: &[u8]) -> Result<Users, String> {
    let mut records = Records::new(bytes, "Users");
    let head: UsersHead = records.take()?;
    let users = records.take_list(head.users)?;
    Ok(Users { head, users })
}

fn kb(pages: u64) -> u64 {
    pages * (PAGE_SIZE / 1024)
}

/// What one uid holds, in pages.
fn held(u: &UserUsage) -> u64 {
    u.mapped_pages + u.shm_pages + u.fs_pages
}

/// A limit in kB, or "unlimited".
fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".into(), |l| format!("{l}"))
}

/// The table: one line per uid, sizes in kB.
pub fn users_text(v: &Users) -> String {
    let mut out = String::new();
    let h = &v.head;
    let _ = writeln!(
        out,
        "limits: process {} kB, user {} kB, clients per user {}",
        limit_text(h.process_limit_pages.map(kb)),
        limit_text(h.user_limit_pages.map(kb)),
        limit_text(h.clients_limit.map(u64::from)),
    );
    let _ = writeln!(
        out,
        "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5} {:>7}",
        "UID", "HELD kB", "LIMIT kB", "MAPPED kB", "SHM kB", "FS kB", "PROCS", "CLIENTS"
    );
    for u in &v.users {
        let _ = writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5} {:>7}",
            u.uid,
            kb(held(u)),
            limit_text(h.user_limit_pages.map(kb)),
            kb(u.mapped_pages),
            kb(u.shm_pages),
            kb(u.fs_pages),
            u.processes,
            u.clients,
        );
    }
    out
}

/// The same as JSON: `{limits, users: [...]}`, sizes in bytes.
pub fn users_json(v: &Users) -> Value {
    let bytes = |pages: Option<u64>| pages.map(|p| p * PAGE_SIZE);
    let h = &v.head;
    json!({
        "limits": {
            "process_bytes": bytes(h.process_limit_pages),
            "user_bytes": bytes(h.user_limit_pages),
            "clients_per_user": h.clients_limit,
        },
        "users": v.users.iter().map(|u| json!({
            "uid": u.uid,
            "held_bytes": held(u) * PAGE_SIZE,
            "mapped_bytes": u.mapped_pages * PAGE_SIZE,
            "shm_bytes": u.shm_pages * PAGE_SIZE,
            "fs_bytes": u.fs_pages * PAGE_SIZE,
            "processes": u.processes,
            "clients": u.clients,
        })).collect::<Vec<_>>(),
    })
}
