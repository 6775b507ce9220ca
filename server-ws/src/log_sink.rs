//! Where the log goes: standard error, or a file. The file is reopened by path on `SIGUSR1`
//! (log rotation moved the old one away) and moves to another path when a reload names a
//! new `log_file`, as nats-server does; the logger holds one clone, the signal handler and
//! the reload another, so all three see the same target.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

enum Target {
    Stderr,
    File { path: PathBuf, file: File },
}

#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Target>>);

impl LogSink {
    /// A sink on `path`, or on standard error without one. Fails when the file cannot be
    /// opened for appending, so the server refuses to start rather than log nowhere.
    pub fn open(path: Option<&Path>) -> io::Result<LogSink> {
        Ok(LogSink(Arc::new(Mutex::new(target(path)?))))
    }

    /// The file logged to, if any.
    pub fn path(&self) -> Option<PathBuf> {
        match &*self.0.lock() {
            Target::Stderr => None,
            Target::File { path, .. } => Some(path.clone()),
        }
    }

    /// Starts a new file at the same path (the old one was moved away by the rotation);
    /// nothing to do on standard error.
    pub fn reopen(&self) -> io::Result<()> {
        let path = self.path();
        self.switch(path.as_deref())
    }

    /// Logs to `path` from now on (standard error for `None`). The new file is opened before
    /// the old target is let go, so a path that cannot be opened changes nothing.
    pub fn switch(&self, path: Option<&Path>) -> io::Result<()> {
        let next = target(path)?;
        *self.0.lock() = next;
        Ok(())
    }
}

fn target(path: Option<&Path>) -> io::Result<Target> {
    Ok(match path {
        None => Target::Stderr,
        Some(p) => Target::File { path: p.to_path_buf(), file: OpenOptions::new().create(true).append(true).open(p)? },
    })
}

/// One log line's access to the target.
pub struct LogWriter<'a>(MutexGuard<'a, Target>);

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *self.0 {
            Target::Stderr => io::stderr().write(buf),
            Target::File { file, .. } => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut *self.0 {
            Target::Stderr => io::stderr().flush(),
            Target::File { file, .. } => file.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogWriter<'a>;
    fn make_writer(&'a self) -> LogWriter<'a> {
        LogWriter(self.0.lock())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn switch_moves_the_log_and_a_bad_path_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("edgebus-logsink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.log"), dir.join("b.log"));
        let sink = LogSink::open(Some(&a)).unwrap();
        let write = |s: &LogSink, text: &str| {
            use tracing_subscriber::fmt::MakeWriter;
            s.make_writer().write_all(text.as_bytes()).unwrap();
        };
        write(&sink, "one\n");
        sink.switch(Some(&b)).unwrap();
        write(&sink, "two\n");
        assert!(sink.switch(Some(&dir.join("missing/c.log"))).is_err());
        write(&sink, "three\n");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "two\nthree\n");
        assert_eq!(sink.path(), Some(b.clone()));
        std::fs::rename(&b, dir.join("b.log.1")).unwrap();
        sink.reopen().unwrap();
        write(&sink, "four\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "four\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
