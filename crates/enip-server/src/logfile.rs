//! `--log FILE`: an appending log file that SIGHUP reopens, so logrotate can move it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The log file, shared by every log line's writer.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(open(path)?)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open the path again (after logrotate renamed the old file).
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = open(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }
}

/// One log line's writer.
#[derive(Debug)]
pub struct LineWriter<'a>(MutexGuard<'a, File>);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self.lock())
    }
}

/// Reopen `file` on every SIGHUP, for as long as the runtime runs.
pub fn reopen_on_sighup(file: LogFile) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match file.reopen() {
                Ok(()) => tracing::info!(path = %file.path.display(), "log file reopened"),
                Err(e) => eprintln!("enip-server: cannot reopen {}: {e}", file.path.display()),
            }
        }
    });
}
