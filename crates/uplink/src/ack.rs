//! The server's reply to a batch (HTTP 200 body,
//! `Content-Type: application/vnd.teleinfo.ack`): 26 bytes.
//!
//! The ack is cumulative: "every frame of (device id, boot id) from the
//! oldest the device still held up to `durable_through_seq` is durable".
//! A device may free exactly those frames, never more, so losing an ack only
//! causes a retransmission that the server recognises and skips.

/// `"TICA"`.
pub const ACK_MAGIC: [u8; 4] = *b"TICA";
/// The only ack version.
pub const ACK_VERSION: u8 = 1;
/// Encoded size of an ack.
pub const ACK_BYTES: usize = 4 + 1 + 1 + 8 + 4 + 8;

const FLAG_DURABLE: u8 = 0x01;

/// A decoded ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The boot the ack is about (echoes the batch's boot id).
    pub boot_id: u64,
    /// Highest sequence number of that boot up to which everything is durable;
    /// `None` when the server holds nothing of this boot yet.
    pub durable_through_seq: Option<u32>,
    /// Server wall clock when replying (Unix ms), for devices without SNTP;
    /// `None` if the server does not say.
    pub server_time_unix_ms: Option<u64>,
}

/// Why a body is not a valid ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// Fewer than [`ACK_BYTES`] bytes.
    Truncated {
        /// Length received.
        len: usize,
    },
    /// More than [`ACK_BYTES`] bytes.
    Oversize {
        /// Length received.
        len: usize,
    },
    /// Not `"TICA"`.
    BadMagic,
    /// Unknown version.
    UnsupportedVersion(u8),
    /// Reserved flag bits set.
    UnknownFlags(u8),
    /// The durable flag is clear but a sequence number was given.
    InconsistentSeq,
}

impl Ack {
    /// Encodes the ack.
    pub fn encode(&self) -> [u8; ACK_BYTES] {
        let mut out = [0u8; ACK_BYTES];
        out[..4].copy_from_slice(&ACK_MAGIC);
        out[4] = ACK_VERSION;
        out[5] = if self.durable_through_seq.is_some() {
            FLAG_DURABLE
        } else {
            0
        };
        out[6..14].copy_from_slice(&self.boot_id.to_le_bytes());
        out[14..18].copy_from_slice(&self.durable_through_seq.unwrap_or(0).to_le_bytes());
        out[18..26].copy_from_slice(&self.server_time_unix_ms.unwrap_or(0).to_le_bytes());
        out
    }

    /// Decodes an ack; never panics.
    pub fn decode(body: &[u8]) -> Result<Ack, AckError> {
        if body.len() > ACK_BYTES {
            return Err(AckError::Oversize { len: body.len() });
        }
        // Magic first, so a short non-ack body (an HTML error page cut short)
        // reports the more useful error only once it is long enough to tell.
        let body: &[u8; ACK_BYTES] = body
            .try_into()
            .map_err(|_| AckError::Truncated { len: body.len() })?;
        if body[..4] != ACK_MAGIC {
            return Err(AckError::BadMagic);
        }
        if body[4] != ACK_VERSION {
            return Err(AckError::UnsupportedVersion(body[4]));
        }
        let flags = body[5];
        if flags & !FLAG_DURABLE != 0 {
            return Err(AckError::UnknownFlags(flags));
        }
        let mut boot = [0u8; 8];
        boot.copy_from_slice(&body[6..14]);
        let seq = u32::from_le_bytes([body[14], body[15], body[16], body[17]]);
        let mut time = [0u8; 8];
        time.copy_from_slice(&body[18..26]);
        let time = u64::from_le_bytes(time);
        let durable_through_seq = if flags & FLAG_DURABLE != 0 {
            Some(seq)
        } else if seq != 0 {
            return Err(AckError::InconsistentSeq);
        } else {
            None
        };
        Ok(Ack {
            boot_id: u64::from_le_bytes(boot),
            durable_through_seq,
            server_time_unix_ms: (time != 0).then_some(time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let ack = Ack {
            boot_id: 7,
            durable_through_seq: Some(0),
            server_time_unix_ms: Some(1_764_000_000_000),
        };
        assert_eq!(Ack::decode(&ack.encode()), Ok(ack));
        let none = Ack {
            boot_id: 7,
            durable_through_seq: None,
            server_time_unix_ms: None,
        };
        assert_eq!(Ack::decode(&none.encode()), Ok(none));
        assert_eq!(Ack::decode(b"TICA"), Err(AckError::Truncated { len: 4 }));
        assert_eq!(Ack::decode(&[0; 27]), Err(AckError::Oversize { len: 27 }));
        let mut bad = ack.encode();
        bad[0] = b'X';
        assert_eq!(Ack::decode(&bad), Err(AckError::BadMagic));
        let mut bad = ack.encode();
        bad[4] = 9;
        assert_eq!(Ack::decode(&bad), Err(AckError::UnsupportedVersion(9)));
        let mut bad = ack.encode();
        bad[5] = 0x81;
        assert_eq!(Ack::decode(&bad), Err(AckError::UnknownFlags(0x81)));
        let mut bad = none.encode();
        bad[14] = 1;
        assert_eq!(Ack::decode(&bad), Err(AckError::InconsistentSeq));
    }
}
