//! The remotes this server dials, as a reload changes them (nats-server 2.10+): a remote is
//! known by its URLs, its local account and its credentials or nkey (nats-server's
//! `RemoteLeafOpts.name()`); one the new configuration no longer has is stopped (its link
//! closed, no reconnect), one it adds is dialled, one it keeps stays connected. A kept
//! remote whose other settings (user, token, …) changed cannot be reloaded; TLS files are
//! swapped as for every port (see `reload`).

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::options::RemoteOptions;
use crate::server::Shared;

/// One remote being dialled (or connected): the task that keeps it up and how to stop it.
struct Dialled {
    name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The remotes currently dialled.
#[derive(Default)]
pub struct Dialling(Mutex<Vec<Dialled>>);

impl Dialling {
    /// Starts keeping `remote` connected.
    pub fn start(&self, shared: &Arc<Shared>, remote: RemoteOptions) {
        let (stop, stopped) = watch::channel(false);
        let name = remote.name();
        let task = tokio::spawn(super::solicit::run_remote(shared.clone(), remote, stopped));
        self.0.lock().push(Dialled { name, stop, task });
    }

    /// Stops the remote known as `name`: its link is closed and not dialled again.
    fn stop(&self, name: &str) {
        let mut all = self.0.lock();
        if let Some(i) = all.iter().position(|d| d.name == name) {
            let d = all.swap_remove(i);
            let _ = d.stop.send(true);
        }
    }

    /// Ends every remote's task (server shutdown: the links are closed with every client).
    pub fn abort_all(&self) {
        for d in self.0.lock().drain(..) {
            d.task.abort();
        }
    }
}

/// Applies a reload's remotes: stops those gone from `new`, dials those added to it.
pub fn reload(shared: &Arc<Shared>, old: &[RemoteOptions], new: &[RemoteOptions]) {
    for r in old.iter().filter(|r| !new.iter().any(|n| n.name() == r.name())) {
        shared.leaf_remotes.stop(&r.name());
        info!("Reloaded: LeafNode Remote {} removed", r.safe_name());
    }
    for r in new.iter().filter(|n| !old.iter().any(|r| r.name() == n.name())) {
        info!("Reloaded: LeafNode Remote {} added", r.safe_name());
        shared.leaf_remotes.start(shared, r.clone());
    }
}

/// The remotes present in both lists (by name) whose settings differ other than in their
/// TLS files: a reload cannot apply that. Returns their safe names.
pub fn changed_in_place(old: &[RemoteOptions], new: &[RemoteOptions]) -> Vec<String> {
    new.iter()
        .filter_map(|n| {
            let o = old.iter().find(|o| o.name() == n.name())?;
            let mut same_files = n.clone();
            if let (Some(nt), Some(ot)) = (same_files.tls.as_mut(), o.tls.as_ref()) {
                crate::tls::copy_files(nt, ot);
                same_files.connector.clone_from(&o.connector);
            }
            (same_files != *o).then(|| n.safe_name())
        })
        .collect()
}

/// Whether a reload adds or removes remotes.
pub fn added_or_removed(old: &[RemoteOptions], new: &[RemoteOptions]) -> bool {
    let names = |l: &[RemoteOptions]| {
        let mut v: Vec<String> = l.iter().map(RemoteOptions::name).collect();
        v.sort();
        v
    };
    names(old) != names(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: &str) -> RemoteOptions {
        RemoteOptions { urls: vec![url.into()], ..Default::default() }
    }

    #[test]
    fn remotes_are_known_by_urls_and_account() {
        let (a, b) = (remote("nats://h:1"), remote("nats://u:secret@h:2"));
        assert!(added_or_removed(std::slice::from_ref(&a), &[a.clone(), b.clone()]));
        assert!(!added_or_removed(&[a.clone(), b.clone()], &[b.clone(), a.clone()]));
        let mut a_token = a.clone();
        a_token.token = Some("t".into());
        assert_eq!(changed_in_place(&[a.clone(), b.clone()], &[a_token, b.clone()]), ["nats://h:1 ($G)"]);
        let mut a_other_account = a.clone();
        a_other_account.account = Some("A".into());
        assert!(added_or_removed(&[a], &[a_other_account]));
        assert!(!b.safe_name().contains("secret"));
    }
}
