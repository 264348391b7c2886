//! How the simulator sizes and classifies messages: byte counts come from the real
//! postcard encoding, not from guesses.

use epidemic_core::codec::{self, Envelope};
use serde::Serialize;

/// The bytes postcard would write for `msg`, envelope excluded, computed without
/// allocating ([`codec::body_len`]).
pub fn postcard_size<T: Serialize + ?Sized>(msg: &T) -> usize {
    codec::body_len(msg)
}

/// The size and kind functions of one message type.
///
/// `size` returns the bytes a message takes on the wire, envelope included; `kind` names
/// its variant for per-kind metrics (a fixed set of `&'static str`, one per variant).
#[derive(Debug)]
pub struct Wire<M> {
    /// Bytes on the wire.
    pub size: fn(&M) -> usize,
    /// The variant's name.
    pub kind: fn(&M) -> &'static str,
}

impl<M> Clone for Wire<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Wire<M> {}

impl<M> Wire<M> {
    /// Sizes and kinds from two functions.
    #[must_use]
    pub fn new(size: fn(&M) -> usize, kind: fn(&M) -> &'static str) -> Self {
        Self { size, kind }
    }

    /// Every message is zero bytes of kind `"msg"`: for machines without a wire format.
    #[must_use]
    pub fn unsized_() -> Self {
        Self {
            size: |_| 0,
            kind: |_| "msg",
        }
    }
}

impl<M: Envelope> Wire<M> {
    /// Sizes as the adapters send them: the two-byte envelope plus the postcard body
    /// ([`epidemic_core::codec::encoded_len`]); kinds from `kind`. What every protocol's
    /// simulations should use.
    #[must_use]
    pub fn enveloped(kind: fn(&M) -> &'static str) -> Self {
        Self {
            size: codec::encoded_len::<M>,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    enum Msg {
        Small(u8),
        Big(Vec<u8>),
    }

    #[test]
    fn size_matches_the_real_encoding() {
        for m in [Msg::Small(3), Msg::Big(vec![7; 300])] {
            let bytes = postcard::to_allocvec(&m).expect("serializes");
            assert_eq!(postcard_size(&m), bytes.len());
        }
        // 300 needs a two-byte varint length prefix: tag + 2 + 300.
        assert_eq!(postcard_size(&Msg::Big(vec![0; 300])), 303);
    }

    #[derive(Serialize, serde::Deserialize)]
    struct Framed(Vec<u8>);

    impl Envelope for Framed {
        const PROTOCOL: u8 = epidemic_core::codec::protocol_id::TEST;
        const VERSION: u8 = 1;
    }

    #[test]
    fn enveloped_size_is_what_the_codec_writes() {
        let m = Framed(vec![1; 40]);
        let wire = Wire::enveloped(|_| "framed");
        assert_eq!((wire.size)(&m), codec::encode(&m).unwrap().len());
        assert_eq!((wire.size)(&m), 2 + 1 + 40);
    }
}
