//! Boot the board image on QEMU's riscv64 `virt` machine and read its
//! verdict: build the test image (`scripts/board.sh build` with feature
//! `suite`), make its flash images, boot it with a deadline, and fail on a
//! failing exit status, a missing `board: PASS`, or a time-out.
//!
//! Needs what `scripts/setup-debian.sh` installs (Debian's Rust for the
//! riscv build, ld.lld, the riscv C toolchain, QEMU 10, genromfs).

use nommu::conformance::env::{rom_t_byte, ROM_T_LEN};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// QEMU's flash banks are exactly this big.
const FLASH_BANK: usize = 32 << 20;
/// Everything on the board (boot, ~120 vectors, the C program) finishes
/// in seconds; a hang ends here.
const DEADLINE: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-target lives in the workspace")
        .to_path_buf()
}

fn scratch() -> PathBuf {
    let dir = workspace().join("target-board").join("test-images");
    std::fs::create_dir_all(&dir).expect("a directory for the flash images");
    dir
}

/// Build the test image once per test process, with the outer cargo's
/// environment cleared (the script uses Debian's toolchain).
fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = workspace().join("scripts").join("board.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("build").env("BOARD_FEATURES", "suite");
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if (key.starts_with("CARGO") && key != "CARGO_HOME")
                || key.starts_with("RUSTC")
                || key.starts_with("RUSTUP")
                || ["MAKEFLAGS", "MFLAGS", "RUSTFLAGS"].contains(&key.as_str())
            {
                cmd.env_remove(&key);
            }
        }
        let out = cmd.output().expect("run scripts/board.sh build");
        assert!(
            out.status.success(),
            "building the board image failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = Command::new("bash")
            .arg(&script)
            .arg("image")
            .output()
            .expect("ask scripts/board.sh for the image path");
        PathBuf::from(String::from_utf8_lossy(&path.stdout).trim())
    })
}

/// The boot stub in flash bank 0's first sector: with a pflash0 image
/// QEMU starts from 0x2000_0000, so `auipc t0, 0x60200; jr t0` goes on to
/// the kernel image at 0x8020_0000 (a0 and a1 from OpenSBI untouched).
const BOOT_STUB: [u32; 2] = [0x6020_0297, 0x0002_8067];
/// Where the romfs image starts in bank 0 (the board's `ROMFS_OFFSET`).
const ROMFS_OFFSET: usize = 256 << 10;

/// Flash bank 0: the boot stub, then a romfs image holding `t` (the
/// §14.0 `/rom/t`), padded with erased flash to the bank's size.
fn rom_bank(dir: &Path) -> PathBuf {
    let root = dir.join("rom-root");
    std::fs::create_dir_all(&root).expect("romfs root");
    let t: Vec<u8> = (0..ROM_T_LEN).map(rom_t_byte).collect();
    std::fs::write(root.join("t"), t).expect("write rom/t");
    let image = dir.join("rom.img");
    let status = Command::new("genromfs")
        .arg("-f")
        .arg(&image)
        .arg("-d")
        .arg(&root)
        .arg("-V")
        .arg("rom")
        .status()
        .expect("run genromfs (apt-get install genromfs)");
    assert!(status.success(), "genromfs failed: {status}");
    let romfs = std::fs::read(&image).expect("read the romfs image");
    assert!(romfs.len() <= FLASH_BANK - ROMFS_OFFSET);
    let mut bank = vec![0xffu8; FLASH_BANK];
    for (i, word) in BOOT_STUB.iter().enumerate() {
        bank[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    bank[ROMFS_OFFSET..ROMFS_OFFSET + romfs.len()].copy_from_slice(&romfs);
    let bank_image = dir.join("bank0.img");
    std::fs::write(&bank_image, bank).expect("write flash bank 0");
    bank_image
}

/// Flash bank 1: the NOR chip behind `/dev/mtd1`, erased but for a
/// pattern in its first block.
fn nor_bank(dir: &Path) -> PathBuf {
    let mut bytes = vec![0xffu8; FLASH_BANK];
    for (i, b) in bytes.iter_mut().take(64 << 10).enumerate() {
        *b = (i as u8).wrapping_mul(13) ^ (i >> 8) as u8;
    }
    let image = dir.join("nor.img");
    std::fs::write(&image, bytes).expect("write the NOR flash image");
    image
}

struct Run {
    console: String,
    status: Option<i32>,
    timed_out: bool,
}

fn boot(image: &Path, extra: &[String]) -> Run {
    let mut child = Command::new("qemu-system-riscv64")
        .args(["-machine", "virt,pflash0=rom,pflash1=nor", "-m", "128M"])
        .args(["-bios", "default", "-display", "none", "-serial", "stdio"])
        .args([
            "-monitor",
            "none",
            "-no-reboot",
            "-accel",
            "tcg,thread=single",
        ])
        .args(extra)
        // Not -kernel: with a pflash0 image QEMU starts from flash and
        // loads no kernel, so the image is loaded as data and bank 0's
        // boot stub jumps to it.
        .arg("-device")
        .arg(format!("loader,file={}", image.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "start qemu-system-riscv64 (apt-get install -t bookworm-backports qemu-system-riscv)",
        );
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break (status.code(), false);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let mut console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    console.push_str(&err);
    Run {
        console,
        status,
        timed_out,
    }
}

fn flash_args(dir: &Path) -> Vec<String> {
    let rom = rom_bank(dir);
    let nor = nor_bank(dir);
    vec![
        "-blockdev".into(),
        format!(
            "driver=file,filename={},node-name=rom,read-only=on",
            rom.display()
        ),
        "-blockdev".into(),
        format!("driver=file,filename={},node-name=nor", nor.display()),
    ]
}

#[test]
fn the_board_runs_every_suite_and_powers_off_with_success() {
    let image = image();
    let dir = scratch();
    let run = boot(image, &flash_args(&dir));
    let failures: Vec<&str> = run
        .console
        .lines()
        .filter(|l| l.contains("FAIL") || l.contains("killed") || l.contains("panic"))
        .collect();
    assert!(
        !run.timed_out,
        "the board hung (no exit within {DEADLINE:?}):\n{}",
        run.console
    );
    assert!(
        failures.is_empty() && run.status == Some(0) && run.console.contains("board: PASS"),
        "the board failed (exit status {:?}):\n{}\nfailures:\n{}",
        run.status,
        run.console,
        failures.join("\n")
    );
    // Every conformance vector reported, none skipped.
    let passed = run
        .console
        .lines()
        .filter(|l| l.starts_with("conformance: ok "))
        .count();
    assert_eq!(passed, nommu::conformance::VECTORS.len(), "{}", run.console);
    // The C program (picolibc + the shim's C ABI) ran as two tasks, each
    // finished its checks without a failure, and memsrv was clean after.
    for line in [
        "c: ok mmap /rom/t PROT_READ MAP_PRIVATE is direct (in flash)",
        "c: ok futex: FUTEX_WAIT in one task, woken by FUTEX_WAKE from another",
        "c: main done, 0 failures",
        "c: waker done, 0 failures",
        "c-program: PASS",
    ] {
        assert!(
            run.console.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            run.console
        );
    }
}
