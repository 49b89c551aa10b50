//! The binary in a real pseudo-terminal: it draws, and when the terminal hangs up (SSH
//! dropped) or it gets SIGTERM, SIGHUP or SIGINT, it restores the terminal and exits
//! within a second. Without a terminal on stdin it says so and exits at once.

mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{PtySize, native_pty_system};

struct Running {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    output: Arc<Mutex<Vec<u8>>>,
    _home: tempfile::TempDir,
}

/// Starts fleetdeck in an 80x24 pty. With `until_first_frame`, the reader lets go of the
/// terminal after the first frame; otherwise it reads until the program exits.
fn start(until_first_frame: bool) -> Running {
    start_with(None, until_first_frame)
}

/// Like [`start`], but through `/bin/sh -c SCRIPT` with the binary as `$0`, so a test can
/// redirect its stdin or stdout (`exec "$0" </dev/null`).
fn start_with(script: Option<&str>, until_first_frame: bool) -> Running {
    let home = tempfile::tempdir().expect("tempdir");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = common::pty_command(home.path());
    if let Some(script) = script {
        let argv = cmd.get_argv_mut();
        let bin = argv[0].clone();
        *argv = vec!["/bin/sh".into(), "-c".into(), script.into(), bin];
    }
    let child = pair.slave.spawn_command(cmd).expect("spawn fleetdeck");
    drop(pair.slave);
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let sink = output.clone();
    // Dropping the master only closes the terminal once this reader's copy is gone too.
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut out = sink.lock().expect("lock");
            out.extend_from_slice(&buf[..n]);
            if until_first_frame && String::from_utf8_lossy(&out).contains("fleet (") {
                break;
            }
        }
    });
    Running {
        child,
        master: Some(pair.master),
        output,
        _home: home,
    }
}

fn wait_for_first_frame(r: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if String::from_utf8_lossy(&r.output.lock().expect("lock")).contains("fleet (") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no first frame within 30s");
}

/// Waits for the child to exit; returns how long it took.
fn exit_time(r: &mut Running, limit: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if r.child.try_wait().expect("try_wait").is_some() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = r.child.kill();
    panic!("fleetdeck still running {limit:?} after the signal");
}

#[test]
fn exits_within_a_second_when_the_terminal_hangs_up() {
    let mut r = start(true);
    wait_for_first_frame(&r);
    // The SSH session drops: the master side of the terminal closes.
    drop(r.master.take());
    let took = exit_time(&mut r, Duration::from_secs(5));
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
}

#[test]
fn sigterm_restores_the_terminal_and_exits_within_a_second() {
    exits_cleanly_within_a_second_on("TERM");
}

/// Waits until the output holds `needle`; the whole output so far.
fn wait_for(r: &Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = String::from_utf8_lossy(&r.output.lock().expect("lock")).to_string();
        if out.contains(needle) {
            return out;
        }
        assert!(Instant::now() < deadline, "no {needle:?} within 30s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_runbook_link_is_a_hyperlink_and_y_copies_it_through_the_terminal() {
    use std::io::Write;
    let mut r = start(false);
    wait_for_first_frame(&r);
    let mut keys = r
        .master
        .as_ref()
        .expect("master")
        .take_writer()
        .expect("writer");
    // Alerts, filter on the deprecated-API insight, keep the filter, open the runbook pane.
    keys.write_all(b"2/deprecated\r").expect("keys");
    std::thread::sleep(Duration::from_millis(300));
    keys.write_all(b"\r").expect("enter");
    let url = "https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html";
    // After the frame, the URL's text is written again inside OSC 8.
    wait_for(&r, &format!("\x1b]8;;{url}\x1b\\{url}\x1b]8;;\x1b\\"));
    keys.write_all(b"y").expect("y");
    // OSC 52: base64 of the URL, for the clipboard of the terminal the user sits at.
    wait_for(
        &r,
        "\x1b]52;c;aHR0cHM6Ly9kb2NzLmF3cy5hbWF6b24uY29tL2Vrcy9sYXRlc3QvdXNlcmd1aWRlL2NsdXN0ZXItaW5zaWdodHMuaHRtbA==\x07",
    );
    keys.write_all(b"q").expect("q");
    exit_time(&mut r, Duration::from_secs(5));
}

/// Sends `signal` (`HUP`, `TERM`, `INT`) to the child with kill(1).
fn send(r: &Running, signal: &str) {
    let pid = r.child.process_id().expect("pid");
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// The output after exit: the alternate screen was left after it was entered, and the
/// cursor shown again.
fn assert_restored(r: &Running) {
    // Give the reader a moment to collect the last bytes written before exit.
    std::thread::sleep(Duration::from_millis(200));
    let out = String::from_utf8_lossy(&r.output.lock().expect("lock")).to_string();
    let entered = out
        .find("\x1b[?1049h")
        .expect("entered the alternate screen");
    let left = out.rfind("\x1b[?1049l").expect("left the alternate screen");
    assert!(left > entered);
    assert!(
        out[left..].contains("\x1b[?25h"),
        "the cursor is shown again"
    );
}

/// Starts fleetdeck, sends it `signal` once it has drawn, and checks it exits with
/// success within a second and leaves the terminal restored.
fn exits_cleanly_within_a_second_on(signal: &str) {
    let mut r = start(false);
    wait_for_first_frame(&r);
    send(&r, signal);
    let took = exit_time(&mut r, Duration::from_secs(5));
    eprintln!("SIG{signal}: exited after {took:?}");
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
    let status = r.child.wait().expect("status");
    assert!(status.success(), "SIG{signal} is a clean exit: {status:?}");
    assert_restored(&r);
}

#[test]
fn sighup_restores_the_terminal_and_exits_within_a_second() {
    exits_cleanly_within_a_second_on("HUP");
}

#[test]
fn sigint_restores_the_terminal_and_exits_within_a_second() {
    exits_cleanly_within_a_second_on("INT");
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    use std::io::Write;
    let mut r = start(false);
    wait_for_first_frame(&r);
    let mut keys = r
        .master
        .as_ref()
        .expect("master")
        .take_writer()
        .expect("writer");
    // Raw mode: ctrl-c is the byte 0x03, read as a key, not turned into SIGINT.
    keys.write_all(b"\x03").expect("ctrl-c");
    let took = exit_time(&mut r, Duration::from_secs(5));
    eprintln!("ctrl-c: exited after {took:?}");
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
    assert!(r.child.wait().expect("status").success());
    assert_restored(&r);
}

#[test]
fn exits_within_a_second_when_the_pty_master_and_its_writer_close() {
    let mut r = start(true);
    let keys = r
        .master
        .as_ref()
        .expect("master")
        .take_writer()
        .expect("writer");
    wait_for_first_frame(&r);
    // Every handle on the terminal's master side goes: the reader (after the first
    // frame), the writer and the master itself. The child reads EIO and gets SIGHUP.
    drop(keys);
    drop(r.master.take());
    let took = exit_time(&mut r, Duration::from_secs(5));
    eprintln!("pty closed: exited after {took:?}");
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
}

/// Starts `script` in a pty and waits for the exit; (exit code, time from spawn, output).
fn run_without_terminal(script: &str) -> (u32, Duration, String) {
    let started = Instant::now();
    let mut r = start_with(Some(script), false);
    exit_time(&mut r, Duration::from_secs(5));
    let took = started.elapsed();
    let code = r.child.wait().expect("status").exit_code();
    std::thread::sleep(Duration::from_millis(200));
    let out = String::from_utf8_lossy(&r.output.lock().expect("lock")).to_string();
    (code, took, out)
}

#[test]
fn without_a_terminal_on_stdin_it_says_so_and_exits_at_once() {
    for script in [
        r#"exec "$0" </dev/null"#,
        // A pipe whose writer has already gone.
        r#"true | exec "$0""#,
        r#"exec "$0" <&-"#,
    ] {
        let (code, took, out) = run_without_terminal(script);
        eprintln!("{script}: exit {code} after {took:?}");
        assert_eq!(code, 2, "{script}: {out}");
        assert!(
            took < Duration::from_secs(1),
            "{script}: exited after {took:?}"
        );
        assert!(
            out.contains("stdin is not a terminal") && out.contains("fleetdeck snapshot"),
            "{script}: {out}"
        );
        assert!(
            !out.contains("\x1b[?1049h"),
            "{script}: drew a screen: {out}"
        );
    }
    let (code, _, out) = run_without_terminal(r#"exec "$0" >/dev/null"#);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("stdout is not a terminal"), "{out}");
}

/// Whether the process's main thread is blocked in write(2), read from
/// `/proc/PID/syscall` (the child is ours, so it may be read).
fn blocked_in_write(pid: u32) -> bool {
    const WRITE: &str = if cfg!(target_arch = "aarch64") {
        "64"
    } else {
        "1"
    };
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(WRITE))
}

#[test]
fn sigterm_exits_within_a_second_while_nobody_reads_the_terminal() {
    use std::io::Write;
    // The session froze (network gone, sshd still holding the master): the terminal is
    // open but nobody reads it, so the program's writes block once its buffer is full.
    let mut r = start(true);
    let mut keys = r
        .master
        .as_ref()
        .expect("master")
        .take_writer()
        .expect("writer");
    wait_for_first_frame(&r);
    let pid = r.child.process_id().expect("pid");
    // Switch views until the frames fill the terminal's buffer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blocked_in_write(pid) {
        assert!(
            Instant::now() < deadline,
            "the terminal's buffer never filled"
        );
        assert!(
            r.child.try_wait().expect("try_wait").is_none(),
            "fleetdeck exited before the signal"
        );
        keys.write_all(b"1234").expect("keys");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Still blocked a moment later: not one slow write.
    std::thread::sleep(Duration::from_millis(300));
    assert!(blocked_in_write(pid), "the write went through");
    send(&r, "TERM");
    let took = exit_time(&mut r, Duration::from_secs(5));
    eprintln!("SIGTERM, terminal not read: exited after {took:?}");
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
}
