//! A room: the users online in one chat and their bounded outgoing queues.
//!
//! Each user has a queue of at most [`QUEUE_LEN`] messages drained by that
//! user's writer task. A sender whose message meets a full queue waits for
//! room, for at most the room's grace period ([`crate::Limits::slow_reader_grace`]):
//! a fast sender is slowed to the pace of its readers (its own socket stops
//! being read, so TCP pushes back on it) instead of getting readers that are
//! merely busy disconnected. A user whose queue stays full for the whole
//! grace period is not reading; it is removed from the room and its
//! connection cancelled, so one stuck reader can stall a room for at most
//! one grace period and never makes the server buffer without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wsproto_tokio::Message;

use crate::protocol::ServerEvent;

/// Messages waiting for one user before a sender has to wait for it.
pub const QUEUE_LEN: usize = 256;

/// What a user's writer task is asked to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this message.
    Send(Message),
    /// Close the connection with this code and reason.
    Close(wsproto_tokio::CloseCode, String),
}

/// The handle a room keeps for one user.
#[derive(Debug, Clone)]
pub struct Member {
    /// The user's outgoing queue.
    pub queue: mpsc::Sender<Outgoing>,
    /// Cancelled when the user must be disconnected.
    pub kick: CancellationToken,
}

/// How a delivery to one member went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The message is in the member's queue.
    Queued,
    /// The queue stayed full until the deadline; the member was cancelled.
    TooSlow,
    /// The member's connection is gone.
    Gone,
}

impl Member {
    /// Queues a message without waiting: for answers to the member itself,
    /// which come from its own reader and so cannot outpace it for long. A
    /// full queue cancels the member.
    pub fn offer(&self, message: Message) -> Delivery {
        match self.queue.try_send(Outgoing::Send(message)) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full(_)) => {
                self.kick.cancel();
                Delivery::TooSlow
            }
            Err(TrySendError::Closed(_)) => Delivery::Gone,
        }
    }

    /// Queues a message, waiting until `deadline` at most for room; a member
    /// that makes no room by then is cancelled.
    pub async fn deliver(&self, message: Message, deadline: Instant) -> Delivery {
        let item = match self.queue.try_send(Outgoing::Send(message)) {
            Ok(()) => return Delivery::Queued,
            Err(TrySendError::Closed(_)) => return Delivery::Gone,
            Err(TrySendError::Full(item)) => item,
        };
        match tokio::time::timeout_at(deadline, self.queue.send(item)).await {
            Ok(Ok(())) => Delivery::Queued,
            Ok(Err(_)) => Delivery::Gone,
            Err(_) => {
                self.kick.cancel();
                Delivery::TooSlow
            }
        }
    }
}

/// The users of one chat, by name.
#[derive(Debug)]
pub struct Room {
    members: Mutex<BTreeMap<String, Member>>,
    /// Users online on other instances (cluster mode only): they count for
    /// presence but are reached through [`crate::cluster`], not a queue.
    remote: Mutex<BTreeSet<String>>,
    grace: Duration,
}

/// The refusal for a name someone else already uses.
pub fn taken(name: &str) -> String {
    format!("the name {name:?} is already taken")
}

impl Room {
    /// An empty room whose senders wait at most `grace` for a full queue.
    pub fn new(grace: Duration) -> Room {
        Room {
            members: Mutex::default(),
            remote: Mutex::default(),
            grace,
        }
    }

    fn members(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remote(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `name`, or fails if the name is taken.
    pub fn join(&self, name: &str, member: Member) -> Result<(), String> {
        let mut members = self.members();
        if members.contains_key(name) {
            return Err(taken(name));
        }
        members.insert(name.to_string(), member);
        Ok(())
    }

    /// Removes `name` (if it is still this member).
    pub fn leave(&self, name: &str, member: &Member) {
        let mut members = self.members();
        if members
            .get(name)
            .is_some_and(|m| m.queue.same_channel(&member.queue))
        {
            members.remove(name);
        }
    }

    /// Sorted names of everyone online, here and on other instances.
    pub fn names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.remote().clone();
        names.extend(self.members().keys().cloned());
        names.into_iter().collect()
    }

    /// Sorted names of the users connected to this instance.
    pub fn local_names(&self) -> Vec<String> {
        self.members().keys().cloned().collect()
    }

    /// Records a user online on another instance; `false` if already known.
    pub fn add_remote(&self, name: &str) -> bool {
        self.remote().insert(name.to_string())
    }

    /// Forgets a user of another instance; `false` if not known.
    pub fn remove_remote(&self, name: &str) -> bool {
        self.remote().remove(name)
    }

    /// Replaces the users of other instances; returns who appeared and who
    /// disappeared.
    pub fn set_remote(&self, names: BTreeSet<String>) -> (Vec<String>, Vec<String>) {
        let mut remote = self.remote();
        let added = names.difference(&remote).cloned().collect();
        let removed = remote.difference(&names).cloned().collect();
        *remote = names;
        (added, removed)
    }

    /// The member called `name`, if online.
    pub fn get(&self, name: &str) -> Option<Member> {
        self.members().get(name).cloned()
    }

    /// The deadline for a delivery that starts now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.grace
    }

    /// Sends `event` to everyone except `except`, waiting (one grace period
    /// at most, for all of them together) for members whose queue is full.
    /// Members still full at the deadline are removed from the room and
    /// cancelled; their own tasks announce that they left.
    pub async fn broadcast(&self, event: &ServerEvent, except: Option<&str>) {
        let message = event.to_message();
        let mut full = Vec::new();
        {
            let members = self.members();
            for (name, member) in members.iter() {
                if Some(name.as_str()) == except {
                    continue;
                }
                match member.queue.try_send(Outgoing::Send(message.clone())) {
                    Ok(()) | Err(TrySendError::Closed(_)) => {}
                    Err(TrySendError::Full(_)) => full.push((name.clone(), member.clone())),
                }
            }
        }
        if full.is_empty() {
            return;
        }
        let deadline = self.deadline();
        for (name, member) in full {
            if member.deliver(message.clone(), deadline).await == Delivery::TooSlow {
                self.leave(&name, &member);
            }
        }
    }

    /// Tells everyone who is online.
    pub async fn announce_presence(&self) {
        let users = self.names();
        self.broadcast(&ServerEvent::Presence { users }, None).await;
    }
}
