//! Fixtures the adapters' tests share: a self-signed certificate with the
//! rustls configurations around it ([`Pki`], [`trusting`]), and a small
//! HTTP CONNECT proxy ([`TestProxy`]). Plain threads and blocking sockets,
//! so that blocking and async tests use the same ones.
#![deny(missing_docs)]

mod pki;
mod proxy;

pub use pki::{provider, trusting, Pki};
pub use proxy::{Mode, TestProxy, ALADDIN};
