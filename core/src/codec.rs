//! The wire envelope every epidemic message travels in (DESIGN §3), behind the `codec`
//! feature: one byte of protocol id, one byte of format version, then the message's
//! postcard encoding (documented, stable, compact varints).
//!
//! ```text
//! +----------+---------+------------------------------+
//! | protocol | version | postcard(message)            |
//! |  1 byte  | 1 byte  | rest of the datagram / frame |
//! +----------+---------+------------------------------+
//! ```
//!
//! Decoding is strict: a wrong protocol id, an unknown version, a malformed body or bytes
//! left over after the message are each a typed [`DecodeError`], never a panic. Size limits
//! (a max packet size) count the envelope: use [`encoded_len`].
//!
//! postcard accepts overlong varints, so two different byte strings can decode to the same
//! message; re-encoding gives the canonical form. Never use received bytes as an identity
//! (hash the decoded fields instead).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes the envelope adds before the message.
pub const ENVELOPE_LEN: usize = 2;

/// Protocol ids, one per wire message type in the workspace, so that a datagram sent to
/// the wrong machine is refused at the envelope rather than misparsed.
pub mod protocol_id {
    /// `epidemic-swim`.
    pub const SWIM: u8 = 1;
    /// `epidemic-hyparview`.
    pub const HYPARVIEW: u8 = 2;
    /// `epidemic-plumtree`.
    pub const PLUMTREE: u8 = 3;
    /// The HyParView + Plumtree composite.
    pub const GOSSIP: u8 = 4;
    /// `epidemic-merkle`.
    pub const MERKLE: u8 = 5;
    /// `epidemic-bvv`.
    pub const BVV: u8 = 6;
    /// `epidemic-read-repair`.
    pub const READ_REPAIR: u8 = 7;
    /// `epidemic-hinted-handoff`.
    pub const HINTED_HANDOFF: u8 = 8;
    /// `epidemic-rumor`.
    pub const RUMOR: u8 = 9;
    /// The simulator's flooding demo.
    pub const SIM_FLOOD: u8 = 0xF0;
    /// Reserved for tests.
    pub const TEST: u8 = 0xFF;
}

/// A wire message type: serde for the body, plus the envelope's two bytes.
pub trait Envelope: Serialize + DeserializeOwned {
    /// The protocol id, from [`protocol_id`].
    const PROTOCOL: u8;
    /// The format version; bump it when the encoding changes incompatibly (append-only enum
    /// variants keep it).
    const VERSION: u8;
}

/// Why bytes did not decode into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the envelope.
    Truncated,
    /// The envelope names another protocol.
    WrongProtocol {
        /// What this message type is.
        expected: u8,
        /// What the bytes say.
        found: u8,
    },
    /// The envelope names a format version this build does not speak.
    UnsupportedVersion {
        /// What this build speaks.
        expected: u8,
        /// What the bytes say.
        found: u8,
    },
    /// The body is not a valid encoding of the message.
    Malformed,
    /// The message ended before the bytes did.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "shorter than the {ENVELOPE_LEN}-byte envelope"),
            DecodeError::WrongProtocol { expected, found } => {
                write!(f, "protocol id {found}, expected {expected}")
            }
            DecodeError::UnsupportedVersion { expected, found } => {
                write!(f, "format version {found}, this build speaks {expected}")
            }
            DecodeError::Malformed => write!(f, "malformed message body"),
            DecodeError::TrailingBytes { count } => write!(f, "{count} bytes after the message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a message did not encode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is smaller than the encoding.
    BufferTooSmall {
        /// Bytes the encoding needs, envelope included.
        needed: usize,
    },
    /// The message's `Serialize` failed (a derived one never does).
    Serialize,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            EncodeError::Serialize => write!(f, "message failed to serialize"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Bytes `msg` takes on the wire, envelope included, computed without allocating.
///
/// A message whose `Serialize` fails counts as the envelope alone.
pub fn encoded_len<M: Envelope>(msg: &M) -> usize {
    ENVELOPE_LEN + body_len(msg)
}

/// Bytes of the postcard body alone (no envelope), computed without allocating. A value
/// whose `Serialize` fails counts as zero.
pub fn body_len<T: Serialize + ?Sized>(msg: &T) -> usize {
    postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// Appends the envelope and `msg` to `out` (reuse one buffer across sends).
///
/// # Errors
/// [`EncodeError::Serialize`] if `msg`'s `Serialize` fails; `out` is then unchanged.
pub fn encode_into<M: Envelope>(msg: &M, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.resize(start + encoded_len(msg), 0);
    match encode_to_slice(msg, &mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The envelope and `msg` as a new vector.
///
/// # Errors
/// [`EncodeError::Serialize`] if `msg`'s `Serialize` fails.
pub fn encode<M: Envelope>(msg: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(encoded_len(msg));
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Writes the envelope and `msg` into `buf`, returning the bytes written: for packing
/// into a fixed-size datagram.
///
/// # Errors
/// [`EncodeError::BufferTooSmall`] with the size needed, or [`EncodeError::Serialize`].
pub fn encode_to_slice<M: Envelope>(msg: &M, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let needed = encoded_len(msg);
    if buf.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    buf[0] = M::PROTOCOL;
    buf[1] = M::VERSION;
    let body =
        postcard::to_slice(msg, &mut buf[ENVELOPE_LEN..]).map_err(|_| EncodeError::Serialize)?;
    Ok(ENVELOPE_LEN + body.len())
}

/// The protocol id and version of an encoded message, without decoding it: how a driver
/// that multiplexes several machines on one socket routes a datagram.
///
/// # Errors
/// [`DecodeError::Truncated`] if `bytes` is shorter than the envelope.
pub fn peek_envelope(bytes: &[u8]) -> Result<(u8, u8), DecodeError> {
    match bytes {
        [protocol, version, ..] => Ok((*protocol, *version)),
        _ => Err(DecodeError::Truncated),
    }
}

/// Decodes one message from exactly `bytes`.
///
/// # Errors
/// Every way the bytes can be wrong, as a [`DecodeError`]; never a panic.
pub fn decode<M: Envelope>(bytes: &[u8]) -> Result<M, DecodeError> {
    let (protocol, version) = peek_envelope(bytes)?;
    if protocol != M::PROTOCOL {
        return Err(DecodeError::WrongProtocol {
            expected: M::PROTOCOL,
            found: protocol,
        });
    }
    if version != M::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            expected: M::VERSION,
            found: version,
        });
    }
    let (msg, rest) =
        postcard::take_from_bytes(&bytes[ENVELOPE_LEN..]).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping { seq: u32 },
        Data(Vec<u8>),
    }

    impl Envelope for Msg {
        const PROTOCOL: u8 = protocol_id::TEST;
        const VERSION: u8 = 3;
    }

    /// Golden bytes: a change here is a wire-format change, to be made on purpose.
    #[test]
    fn golden_bytes() {
        assert_eq!(
            encode(&Msg::Ping { seq: 300 }).unwrap(),
            [0xFF, 3, 0, 0xAC, 0x02]
        );
        assert_eq!(
            encode(&Msg::Data(vec![7, 8])).unwrap(),
            [0xFF, 3, 1, 2, 7, 8]
        );
    }

    #[test]
    fn round_trips_and_sizes_agree() {
        for m in [
            Msg::Ping { seq: 0 },
            Msg::Ping { seq: u32::MAX },
            Msg::Data(vec![1; 1000]),
        ] {
            let bytes = encode(&m).unwrap();
            assert_eq!(bytes.len(), encoded_len(&m));
            assert_eq!(decode::<Msg>(&bytes), Ok(m.clone()));
            let mut buf = [0u8; 2048];
            let n = encode_to_slice(&m, &mut buf).unwrap();
            assert_eq!(&buf[..n], &bytes[..]);
            let mut out = vec![9, 9];
            encode_into(&m, &mut out).unwrap();
            assert_eq!(&out[2..], &bytes[..]);
        }
    }

    #[test]
    fn every_bad_input_is_a_typed_error() {
        assert_eq!(decode::<Msg>(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode::<Msg>(&[0xFF]), Err(DecodeError::Truncated));
        assert_eq!(
            decode::<Msg>(&[1, 3, 0, 0]),
            Err(DecodeError::WrongProtocol {
                expected: 0xFF,
                found: 1
            })
        );
        assert_eq!(
            decode::<Msg>(&[0xFF, 4, 0, 0]),
            Err(DecodeError::UnsupportedVersion {
                expected: 3,
                found: 4
            })
        );
        assert_eq!(decode::<Msg>(&[0xFF, 3, 9]), Err(DecodeError::Malformed));
        assert_eq!(
            decode::<Msg>(&[0xFF, 3, 1, 200]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            decode::<Msg>(&[0xFF, 3, 0, 1, 0xAA, 0xBB]),
            Err(DecodeError::TrailingBytes { count: 2 })
        );
        let mut small = [0u8; 4];
        assert_eq!(
            encode_to_slice(&Msg::Data(vec![1, 2, 3]), &mut small),
            Err(EncodeError::BufferTooSmall { needed: 7 })
        );
    }
}
