//! The chat wire protocol: what clients send and what the server answers.
//!
//! Every frame the server sends on `/ws/chat` and `/ws/private/<user>` is a
//! JSON object with a `type`:
//!
//! | `type` | fields | when |
//! |---|---|---|
//! | `message` | group: `from`, `text`; private: `from_user`, `to_user`, `info` | a chat message for you |
//! | `join` | `name` | someone joined |
//! | `leave` | `name` | someone left |
//! | `presence` | `users` (sorted names) | after every join and leave, and on login |
//! | `error` | `error` (human-readable) | your last frame was refused |

use serde::{Deserialize, Serialize};
use wsproto_tokio::{Message, Utf8Bytes};

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerEvent {
    /// A group chat message from another user.
    #[serde(rename = "message")]
    Group {
        /// Who sent it.
        from: String,
        /// What they wrote.
        text: String,
    },
    /// A private message addressed to you.
    #[serde(rename = "private")]
    Private(PrivateMessage),
    /// Someone joined.
    Join {
        /// Their name.
        name: String,
    },
    /// Someone left.
    Leave {
        /// Their name.
        name: String,
    },
    /// Who is online now.
    Presence {
        /// Sorted user names.
        users: Vec<String>,
    },
    /// Your last frame was refused, or you cannot log in.
    Error {
        /// Why, for a person to read.
        error: String,
    },
}

/// A private chat message, as clients send it and as the recipient gets it
/// (with `"type": "message"` added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateMessage {
    /// The sender; must be the logged-in user.
    pub from_user: String,
    /// The recipient; must be online.
    pub to_user: String,
    /// The text.
    pub info: String,
}

impl ServerEvent {
    /// The event as a text frame, serialized once and shareable between
    /// recipients without copying.
    pub fn to_message(&self) -> Message {
        let json = match self {
            // A private message travels with `"type": "message"` like the
            // group one, and the client's own field names.
            ServerEvent::Private(p) => serde_json::json!({
                "type": "message",
                "from_user": p.from_user,
                "to_user": p.to_user,
                "info": p.info,
            })
            .to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        Message::Text(Utf8Bytes::from(json))
    }

    /// An error event.
    pub fn error(error: impl Into<String>) -> ServerEvent {
        ServerEvent::Error {
            error: error.into(),
        }
    }
}

/// Checks a user name: 1 to 32 letters, digits, `_` or `-`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a user name is required".into());
    }
    if name.chars().count() > 32 {
        return Err("a user name has at most 32 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "invalid user name {name:?}: use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes and `+` in a URL component; `None` if the result
/// is not UTF-8 or an escape is malformed.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string, decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes() {
        let text = |e: ServerEvent| e.to_message().as_text().unwrap().to_string();
        assert_eq!(
            text(ServerEvent::Group {
                from: "ann".into(),
                text: "hi".into()
            }),
            r#"{"type":"message","from":"ann","text":"hi"}"#
        );
        assert_eq!(
            text(ServerEvent::Private(PrivateMessage {
                from_user: "a".into(),
                to_user: "b".into(),
                info: "x".into()
            })),
            r#"{"from_user":"a","info":"x","to_user":"b","type":"message"}"#
        );
        assert_eq!(
            text(ServerEvent::Presence {
                users: vec!["a".into(), "b".into()]
            }),
            r#"{"type":"presence","users":["a","b"]}"#
        );
        assert_eq!(
            text(ServerEvent::error("no")),
            r#"{"type":"error","error":"no"}"#
        );
    }

    #[test]
    fn names() {
        assert!(validate_name("ann_1-b").is_ok());
        assert!(validate_name("Zoë").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(33)).is_err());
        assert!(validate_name("<script>").is_err());
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_param(Some("x=1&name=Zo%C3%AB"), "name").as_deref(),
            Some("Zoë")
        );
        assert_eq!(
            query_param(Some("name=a+b"), "name").as_deref(),
            Some("a b")
        );
        assert_eq!(query_param(Some("name=%zz"), "name"), None);
        assert_eq!(query_param(None, "name"), None);
    }
}
