//! A room: the users online in one chat and their bounded outgoing queues.
//!
//! Sending to a user never waits: each user has a queue of at most
//! [`QUEUE_LEN`] messages drained by that user's writer task. A user whose
//! queue is full is not keeping up; it is removed from the room and its
//! connection is cancelled, so one slow reader can neither stall the others
//! nor make the server buffer without bound.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wsproto_tokio::Message;

use crate::protocol::ServerEvent;

/// Messages waiting for one user before it counts as too slow.
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

impl Member {
    /// Queues a message without waiting; false if the user is too slow (its
    /// connection is then cancelled) or gone.
    pub fn offer(&self, message: Message) -> bool {
        match self.queue.try_send(Outgoing::Send(message)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The users of one chat, by name.
#[derive(Debug, Default)]
pub struct Room {
    members: Mutex<BTreeMap<String, Member>>,
}

impl Room {
    fn members(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `name`, or fails if the name is taken.
    pub fn join(&self, name: &str, member: Member) -> Result<(), String> {
        let mut members = self.members();
        if members.contains_key(name) {
            return Err(format!("the name {name:?} is already taken"));
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

    /// Sorted names of everyone online.
    pub fn names(&self) -> Vec<String> {
        self.members().keys().cloned().collect()
    }

    /// The member called `name`, if online.
    pub fn get(&self, name: &str) -> Option<Member> {
        self.members().get(name).cloned()
    }

    /// Sends `event` to everyone except `except`; drops members too slow to
    /// take it.
    pub fn broadcast(&self, event: &ServerEvent, except: Option<&str>) {
        let message = event.to_message();
        let mut slow = Vec::new();
        {
            let members = self.members();
            for (name, member) in members.iter() {
                if Some(name.as_str()) != except && !member.offer(message.clone()) {
                    slow.push(name.clone());
                }
            }
        }
        if !slow.is_empty() {
            let mut members = self.members();
            for name in &slow {
                members.remove(name);
            }
        }
        // Those dropped leave like anyone else.
        for name in slow {
            self.broadcast(&ServerEvent::Leave { name }, None);
        }
    }

    /// Tells everyone who is online.
    pub fn announce_presence(&self) {
        self.broadcast(
            &ServerEvent::Presence {
                users: self.names(),
            },
            None,
        );
    }
}
