//! Where masking keys and handshake nonces come from.
//!
//! The core makes no OS calls, so randomness is passed in through
//! [`RandomSource`]. [`ChaChaSource`] is a ChaCha8 stream cipher keyed with
//! a 32-byte seed; with the `std` feature, [`ChaChaSource::from_os`] seeds it
//! from the operating system's CSPRNG.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A source of unpredictable bytes for masking keys and `Sec-WebSocket-Key`.
///
/// RFC 6455 section 5.3 requires masking keys that the application cannot
/// predict; use a cryptographically secure generator.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// A CSPRNG (ChaCha8) seeded once.
///
/// ```
/// use wsproto_core::{ChaChaSource, RandomSource};
/// let mut a = ChaChaSource::from_seed([7; 32]);
/// let mut b = ChaChaSource::from_seed([7; 32]);
/// let (mut x, mut y) = ([0u8; 4], [0u8; 4]);
/// a.fill(&mut x);
/// b.fill(&mut y);
/// assert_eq!(x, y); // same seed, same stream: use from_os() in production
/// ```
#[derive(Debug, Clone)]
pub struct ChaChaSource(ChaCha8Rng);

impl ChaChaSource {
    /// A generator keyed with `seed`, which must itself be secret and random.
    pub fn from_seed(seed: [u8; 32]) -> ChaChaSource {
        ChaChaSource(ChaCha8Rng::from_seed(seed))
    }

    /// A generator seeded from the operating system.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness, which `getrandom`
    /// reports only on broken platforms; continuing with predictable masks
    /// would be worse.
    #[cfg(feature = "std")]
    pub fn from_os() -> ChaChaSource {
        let mut seed = [0u8; 32];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut seed).expect("the OS random number generator failed");
        ChaChaSource::from_seed(seed)
    }
}

impl RandomSource for ChaChaSource {
    fn fill(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
}
