//! The audit log: append-only JSONL in the data directory. An intent record is written and
//! synced to disk before the call, an outcome record after it, so a crash in between
//! leaves the intent visible.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Action, Authorized, Mode};
use crate::model::Timestamp;

/// One line of the audit file. A record lives only while one line is written or read.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Record {
    Intent {
        id: String,
        time: Timestamp,
        os_user: String,
        identity: String,
        mode: Mode,
        /// Who asked, when the write came through the feed of `fleetdeck serve`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<super::RemoteUser>,
        #[serde(flatten)]
        action: Action,
    },
    Outcome {
        id: String,
        time: Timestamp,
        ok: bool,
        message: String,
    },
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub time: Timestamp,
    pub ok: bool,
    pub message: String,
}

/// An intent joined with its outcome, for the Audit view.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub time: Timestamp,
    pub os_user: String,
    pub identity: String,
    /// Who asked, when the write came through the feed of `fleetdeck serve`.
    pub remote: Option<super::RemoteUser>,
    pub action: Action,
    /// `None`: no outcome recorded (in flight, or fleetdeck died during the call).
    pub outcome: Option<Outcome>,
}

/// A line of the audit file that could not be read; shown, never skipped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReadError {
    pub line: usize,
    pub message: String,
}

/// The audit writer. One per process; writes are serialized by the mutex.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    counter: AtomicU64,
}

impl AuditLog {
    /// Opens (creating if needed) the audit file for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            counter: AtomicU64::new(0),
        })
    }

    /// An audit log writing to `file` (tests: a file that refuses writes).
    #[cfg(test)]
    pub(crate) fn from_file_for_tests(path: &Path, file: File) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            counter: AtomicU64::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit writer poisoned"))?;
        file.write_all(line.as_bytes())?;
        // Synced before the call is made: the record of intent survives a crash.
        file.sync_data()
    }

    /// Records the intent to run `action` and syncs it to disk. Returns the record id
    /// that the outcome must carry.
    pub fn intent(
        &self,
        action: &Authorized,
        mode: Mode,
        os_user: &str,
        identity: &str,
        now: Timestamp,
    ) -> std::io::Result<String> {
        self.intent_for(action, mode, os_user, identity, None, now)
    }

    /// [`AuditLog::intent`] for a write a remote console asked for.
    pub fn intent_for(
        &self,
        action: &Authorized,
        mode: Mode,
        os_user: &str,
        identity: &str,
        remote: Option<&super::RemoteUser>,
        now: Timestamp,
    ) -> std::io::Result<String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{}-{}-{n}",
            now.timestamp_nanos_opt().unwrap_or_default(),
            std::process::id()
        );
        self.append(&Record::Intent {
            id: id.clone(),
            time: now,
            os_user: os_user.to_string(),
            identity: identity.to_string(),
            mode,
            remote: remote.cloned(),
            action: action.action().clone(),
        })?;
        Ok(id)
    }

    /// Records how the action with intent `id` ended.
    pub fn outcome(&self, id: &str, outcome: &Outcome) -> std::io::Result<()> {
        self.append(&Record::Outcome {
            id: id.to_string(),
            time: outcome.time,
            ok: outcome.ok,
            message: outcome.message.clone(),
        })
    }
}

/// How much of the audit file the console reads: its newest 4 MiB, some 10,000 actions.
/// The file keeps everything for as long as the machine keeps it; the console's memory
/// must not grow with it.
pub const TAIL_BYTES: u64 = 4 << 20;

/// The newest part of the audit file, as the console reads it.
#[derive(Debug, Default)]
pub struct AuditTail {
    /// Intents joined with their outcomes, newest first.
    pub entries: Vec<AuditEntry>,
    /// Lines that could not be read, by line number in the file.
    pub bad_lines: Vec<AuditReadError>,
    /// Bytes at the start of the file left unread (older actions), 0 if none.
    pub skipped_bytes: u64,
}

/// Reads the audit file's newest [`TAIL_BYTES`]: intents joined with their outcomes,
/// newest first, plus the lines that could not be read. A missing file is an empty log.
pub fn read(path: &Path) -> std::io::Result<(Vec<AuditEntry>, Vec<AuditReadError>)> {
    read_tail(path, TAIL_BYTES).map(|tail| (tail.entries, tail.bad_lines))
}

/// Reads the newest `max_bytes` of the audit file (whole lines only).
pub fn read_tail(path: &Path, max_bytes: u64) -> std::io::Result<AuditTail> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditTail::default()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut skipped_bytes = 0;
    // Line numbers stay those of the whole file: count the lines skipped, a buffer at a
    // time, so the count costs no memory.
    let mut line_no = 0;
    if len > max_bytes {
        let start = len - max_bytes;
        let mut reader = BufReader::new(&mut file);
        let mut skipped = 0u64;
        while skipped < start {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min((start - skipped) as usize);
            line_no += buf[..take].iter().filter(|&&b| b == b'\n').count();
            reader.consume(take);
            skipped += take as u64;
        }
        // Finish the line cut in two.
        let mut partial = Vec::new();
        skipped_bytes = skipped + reader.read_until(b'\n', &mut partial)? as u64;
        line_no += 1;
        file.seek(SeekFrom::Start(skipped_bytes))?;
    }
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut bad_lines = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(Record::Intent {
                id,
                time,
                os_user,
                identity,
                remote,
                action,
                ..
            }) => entries.push(AuditEntry {
                id,
                time,
                os_user,
                identity,
                remote,
                action,
                outcome: None,
            }),
            Ok(Record::Outcome {
                id,
                time,
                ok,
                message,
            }) => match entries.iter_mut().rev().find(|e| e.id == id) {
                Some(entry) => entry.outcome = Some(Outcome { time, ok, message }),
                // Its intent is in the part left unread: nothing wrong with the file.
                None if skipped_bytes > 0 => {}
                None => bad_lines.push(AuditReadError {
                    line: line_no,
                    message: format!("outcome for unknown intent {id}"),
                }),
            },
            Err(e) => bad_lines.push(AuditReadError {
                line: line_no,
                message: e.to_string(),
            }),
        }
    }
    entries.reverse();
    Ok(AuditTail {
        entries,
        bad_lines,
        skipped_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::authorize;

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000 + s, 0).expect("valid time")
    }

    fn pause() -> Action {
        Action::PauseWave {
            rollout: "eks-1-31-upgrade".into(),
            wave: 3,
            wave_name: "prod-1".into(),
            reason: "INC-4411 elevated 5xx".into(),
        }
    }

    #[test]
    fn intent_is_on_disk_before_the_outcome_and_joined_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit").join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let action = authorize(Mode::Operator, None, pause()).expect("operator");
        let id = log
            .intent(&action, Mode::Operator, "alice", "demo", t(0))
            .expect("intent");

        // Read back as a second process would, before any outcome: the intent is there.
        let (entries, errors) = read(&path).expect("read");
        assert!(errors.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].os_user, "alice");
        assert_eq!(entries[0].action, pause());
        assert_eq!(entries[0].outcome, None);

        let outcome = Outcome {
            time: t(2),
            ok: true,
            message: "wave prod-1 paused".into(),
        };
        log.outcome(&id, &outcome).expect("outcome");
        let (entries, _) = read(&path).expect("read");
        assert_eq!(entries[0].outcome.as_ref(), Some(&outcome));
    }

    #[test]
    fn newest_first_and_bad_lines_are_reported_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let a = authorize(Mode::Operator, None, pause()).expect("operator");
        log.intent(&a, Mode::Operator, "alice", "demo", t(0))
            .expect("1");
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{not json\n"))
            .expect("append junk");
        let log = AuditLog::open(&path).expect("reopen");
        log.intent(&a, Mode::Operator, "bob", "demo", t(5))
            .expect("2");
        let (entries, errors) = read(&path).expect("read");
        assert_eq!(
            entries
                .iter()
                .map(|e| e.os_user.as_str())
                .collect::<Vec<_>>(),
            ["bob", "alice"]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn a_long_file_is_read_from_its_newest_part_with_file_line_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let a = authorize(Mode::Operator, None, pause()).expect("operator");
        let mut ids = Vec::new();
        for i in 0..200 {
            ids.push(
                log.intent(&a, Mode::Operator, &format!("u{i}"), "demo", t(i))
                    .expect("intent"),
            );
        }
        // The outcome of the very first intent comes last: its intent is in the part
        // left unread, which is no error.
        let done = Outcome {
            time: t(300),
            ok: true,
            message: "done".into(),
        };
        log.outcome(&ids[0], &done).expect("outcome");
        log.outcome(&ids[199], &done).expect("outcome");
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{not json\n"))
            .expect("append junk");
        let whole = std::fs::read_to_string(&path).expect("read");
        let lines = whole.lines().count();

        let tail = read_tail(&path, 4096).expect("read");
        assert!(tail.skipped_bytes > 0 && tail.skipped_bytes < whole.len() as u64);
        assert!(whole[..tail.skipped_bytes as usize].ends_with('\n'));
        assert!(!tail.entries.is_empty() && tail.entries.len() < 200);
        assert_eq!(tail.entries[0].os_user, "u199");
        assert_eq!(tail.entries[0].outcome.as_ref(), Some(&done));
        assert!(tail.entries.iter().all(|e| e.os_user != "u0"));
        assert_eq!(tail.bad_lines.len(), 1, "{:?}", tail.bad_lines);
        assert_eq!(tail.bad_lines[0].line, lines);

        // The whole file when it fits.
        let all = read_tail(&path, TAIL_BYTES).expect("read");
        assert_eq!((all.entries.len(), all.skipped_bytes), (200, 0));
        assert_eq!(all.bad_lines.len(), 1);
        assert_eq!(all.bad_lines[0].line, lines);
    }

    /// Every remediation survives the JSONL round trip, and a crash between intent and
    /// outcome (the log dropped before any outcome) leaves the intent readable, flagged.
    #[test]
    fn every_remediation_is_recorded_and_an_interrupted_one_stays_visible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let examples = Action::examples();
        for action in &examples {
            let a = authorize(Mode::Operator, None, action.clone()).expect("operator");
            log.intent(
                &a,
                Mode::Operator,
                "alice",
                "arn:aws:iam::1:user/alice",
                t(0),
            )
            .expect("intent");
        }
        drop(log); // as if fleetdeck died during the calls
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(r#""action":"remediate""#), "{text}");
        assert!(text.contains(r#""op":"drain""#), "{text}");
        assert!(
            text.contains(r#""node":"ip-10-0-1-7.ec2.internal""#),
            "{text}"
        );
        let (entries, errors) = read(&path).expect("read");
        assert!(errors.is_empty(), "{errors:?}");
        let mut read_back: Vec<Action> = entries
            .into_iter()
            .map(|e| {
                assert_eq!(e.outcome, None, "no outcome was recorded");
                e.action
            })
            .collect();
        read_back.reverse();
        assert_eq!(read_back, examples);
    }

    #[test]
    fn a_missing_file_is_an_empty_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (entries, errors) = read(&dir.path().join("none.jsonl")).expect("read");
        assert!(entries.is_empty() && errors.is_empty());
    }
}
