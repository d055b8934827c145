//! Bans: node keys (and, if configured, addresses) refused until a deadline, kept in a file across
//! restarts.
//!
//! The file is text, one ban per line: `node <hex key> <unix seconds>` or `ip <address> <unix seconds>`.
//! It is rewritten whole on every new ban, to a temporary file that is then renamed over the old one, so
//! a crash leaves either the old list or the new one, never half of either. Unknown or broken lines are
//! skipped when loading (the file is ours, but a partial edit by hand must not stop a node).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::{NetError, PeerId};

/// Most bans held. Past it, expired bans are purged and then the one ending soonest is dropped, so a
/// flood of throwaway keys cannot grow the list (or its file) without end.
pub const MAX_BANS: usize = 10_000;

/// What a ban names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanTarget {
    /// A node key.
    Node(PeerId),
    /// An IP address.
    Ip(IpAddr),
}

/// The ban list.
pub struct BanList {
    /// Target to the Unix second the ban ends. Bound: [`MAX_BANS`].
    bans: DashMap<BanTarget, u64>,
    file: Option<PathBuf>,
    /// Serialises rewrites of the file, so a snapshot taken later is never overwritten by an earlier.
    write: Mutex<()>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl BanList {
    /// An empty list, kept in memory only.
    pub fn in_memory() -> Self {
        BanList {
            bans: DashMap::new(),
            file: None,
            write: Mutex::new(()),
        }
    }

    /// The list kept in `path`, with the bans it already holds that have not ended. A missing file is
    /// an empty list.
    pub fn load(path: &Path) -> Result<Self, NetError> {
        let list = BanList {
            bans: DashMap::new(),
            file: Some(path.to_path_buf()),
            write: Mutex::new(()),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(list),
            Err(e) => {
                return Err(NetError::BanList {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let now = now_secs();
        for line in text.lines().take(MAX_BANS) {
            if let Some((target, until)) = parse_line(line)
                && until > now
            {
                list.bans.insert(target, until);
            }
        }
        Ok(list)
    }

    /// Whether `target` is banned now.
    pub fn is_banned(&self, target: &BanTarget) -> bool {
        let Some(until) = self.bans.get(target).map(|u| *u) else {
            return false;
        };
        if until > now_secs() {
            return true;
        }
        self.bans.remove_if(target, |_, u| *u <= now_secs());
        false
    }

    /// Bans `targets` for `duration` and rewrites the file (on a blocking thread when inside a tokio
    /// runtime, since it touches the disk).
    pub fn ban(self: &std::sync::Arc<Self>, targets: &[BanTarget], duration: Duration) {
        let until = now_secs().saturating_add(duration.as_secs());
        for target in targets {
            self.make_room();
            self.bans.insert(*target, until);
        }
        if self.file.is_some() {
            let list = std::sync::Arc::clone(self);
            let persist = move || {
                if let Err(e) = list.persist() {
                    tracing::warn!(%e, "could not save the ban list");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(persist);
                }
                Err(_) => persist(),
            }
        }
    }

    /// Bans held now (including any that ended but were not yet purged).
    pub fn len(&self) -> usize {
        self.bans.len()
    }

    /// Whether no ban is held.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }

    /// Writes the whole list: to a temporary file beside the real one, synced, then renamed over it.
    pub fn persist(&self) -> Result<(), NetError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _one_writer = self.write.lock();
        let mut entries: Vec<(BanTarget, u64)> =
            self.bans.iter().map(|e| (*e.key(), *e.value())).collect();
        entries.sort();
        let mut text = String::new();
        for (target, until) in entries {
            let _ = match target {
                BanTarget::Node(id) => {
                    writeln!(text, "node {} {until}", hex::encode(id.as_bytes()))
                }
                BanTarget::Ip(ip) => writeln!(text, "ip {ip} {until}"),
            };
        }
        let err = |e: std::io::Error| NetError::BanList {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp).map_err(err)?;
            file.write_all(text.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }

    fn make_room(&self) {
        if self.bans.len() < MAX_BANS {
            return;
        }
        let now = now_secs();
        self.bans.retain(|_, until| *until > now);
        if self.bans.len() < MAX_BANS {
            return;
        }
        let soonest = self
            .bans
            .iter()
            .min_by_key(|e| *e.value())
            .map(|e| *e.key());
        if let Some(target) = soonest {
            self.bans.remove(&target);
        }
    }
}

fn parse_line(line: &str) -> Option<(BanTarget, u64)> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let what = words.next()?;
    let until = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    let target = match kind {
        "node" => {
            let bytes: [u8; 32] = hex::decode(what).ok()?.try_into().ok()?;
            BanTarget::Node(PeerId::from_bytes(bytes))
        }
        "ip" => BanTarget::Ip(what.parse().ok()?),
        _ => return None,
    };
    Some((target, until))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn bans_survive_a_restart_and_expired_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bans.txt");
        let list = Arc::new(BanList::load(&path).unwrap());
        assert!(list.is_empty());
        let peer = PeerId::from_bytes([7; 32]);
        let ip = IpAddr::from([10, 1, 2, 3]);
        list.ban(
            &[BanTarget::Node(peer), BanTarget::Ip(ip)],
            Duration::from_secs(3600),
        );
        list.ban(
            &[BanTarget::Node(PeerId::from_bytes([8; 32]))],
            Duration::ZERO,
        );
        assert!(list.is_banned(&BanTarget::Node(peer)));

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}garbage line\nnode zz 99999999999\n")).unwrap();
        let reloaded = BanList::load(&path).unwrap();
        assert!(reloaded.is_banned(&BanTarget::Node(peer)));
        assert!(reloaded.is_banned(&BanTarget::Ip(ip)));
        assert!(!reloaded.is_banned(&BanTarget::Node(PeerId::from_bytes([8; 32]))));
        assert_eq!(reloaded.len(), 2);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn the_list_stays_bounded() {
        let list = Arc::new(BanList::in_memory());
        for i in 0..(MAX_BANS + 10) {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            list.ban(
                &[BanTarget::Node(PeerId::from_bytes(bytes))],
                Duration::from_secs(60 + i as u64),
            );
        }
        assert_eq!(list.len(), MAX_BANS);
    }
}
