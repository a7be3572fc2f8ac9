//! Lossless compaction of raw TIC frames for the device queue.
//!
//! A third of a standard frame is framing the receiver can rebuild: the LF,
//! the label, the separator after it, the checksum character and the CR of
//! every group. A group whose label is in the spec's dictionary and whose
//! checksum is right is stored as one token byte (≥ 0x80, TIC bytes are
//! 7-bit) followed by its data; the decoder writes back `LF label sep`, the
//! data, the recomputed checksum and `CR`. Everything else — bad groups,
//! unknown labels, noise — is kept byte for byte, so the round trip is exact
//! for any input (a property test checks it). A 865-byte standard frame
//! shrinks by about a third, which is what lets the flash partition hold
//! more than an hour of standard mode (docs/firmware.md).
//!
//! The label tables are part of the on-flash format: never reorder them,
//! only append (a firmware update finds the previous firmware's queue).

/// Standard-mode labels (tic-protocol.md §5.2), token `0x80 + index`.
const STANDARD_LABELS: [&str; 71] = [
    "ADSC",
    "VTIC",
    "DATE",
    "NGTF",
    "LTARF",
    "EAST",
    "EASF01",
    "EASF02",
    "EASF03",
    "EASF04",
    "EASF05",
    "EASF06",
    "EASF07",
    "EASF08",
    "EASF09",
    "EASF10",
    "EASD01",
    "EASD02",
    "EASD03",
    "EASD04",
    "EAIT",
    "ERQ1",
    "ERQ2",
    "ERQ3",
    "ERQ4",
    "IRMS1",
    "IRMS2",
    "IRMS3",
    "URMS1",
    "URMS2",
    "URMS3",
    "PREF",
    "PCOUP",
    "SINSTS",
    "SINSTS1",
    "SINSTS2",
    "SINSTS3",
    "SMAXSN",
    "SMAXSN1",
    "SMAXSN2",
    "SMAXSN3",
    "SMAXSN-1",
    "SMAXSN1-1",
    "SMAXSN2-1",
    "SMAXSN3-1",
    "SINSTI",
    "SMAXIN",
    "SMAXIN-1",
    "CCASN",
    "CCASN-1",
    "CCAIN",
    "CCAIN-1",
    "UMOY1",
    "UMOY2",
    "UMOY3",
    "STGE",
    "DPM1",
    "FPM1",
    "DPM2",
    "FPM2",
    "DPM3",
    "FPM3",
    "MSG1",
    "MSG2",
    "PRM",
    "RELAIS",
    "NTARF",
    "NJOURF",
    "NJOURF+1",
    "PJOURF+1",
    "PPOINTE",
];

/// Historic-mode labels (tic-protocol.md §4.2), token `0xC7 + index`.
const HISTORIC_LABELS: [&str; 36] = [
    "ADCO", "OPTARIF", "ISOUSC", "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM", "BBRHCJB", "BBRHPJB",
    "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR", "GAZ", "AUTRE", "PEJP", "PTEC", "DEMAIN", "IINST",
    "IINST1", "IINST2", "IINST3", "ADPS", "IMAX", "IMAX1", "IMAX2", "IMAX3", "PMAX", "PAPP",
    "HHPHC", "MOTDETAT", "PPOT", "ADIR1", "ADIR2", "ADIR3",
];

const STANDARD_BASE: u8 = 0x80;
const HISTORIC_BASE: u8 = STANDARD_BASE + STANDARD_LABELS.len() as u8;
const TOKENS_END: u8 = HISTORIC_BASE + HISTORIC_LABELS.len() as u8;
/// Ends a tokenised group explicitly (only needed when the byte after the
/// group would otherwise read as more data).
const END_GROUP: u8 = 0xFE;
/// The next byte is a literal ≥ 0x80.
const ESCAPE: u8 = 0xFF;

const LF: u8 = 0x0A;
const CR: u8 = 0x0D;
const HT: u8 = 0x09;
const SP: u8 = 0x20;

/// Longest group content considered (tic's `MAX_GROUP_LEN` minus LF/CR).
const MAX_CONTENT: usize = 126;

// Tokens must not reach END_GROUP.
const _: () = assert!(TOKENS_END <= END_GROUP);

fn is_data_byte(b: u8) -> bool {
    b == HT || (0x20..=0x7E).contains(&b)
}

fn checksum(span: &[u8]) -> u8 {
    let sum = span.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    (sum & 0x3F) as u8 + 0x20
}

/// Bounded writer: every push fails instead of panicking when full.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, b: u8) -> Option<()> {
        *self.buf.get_mut(self.len)? = b;
        self.len += 1;
        Some(())
    }

    fn extend(&mut self, bytes: &[u8]) -> Option<()> {
        self.buf
            .get_mut(self.len..self.len + bytes.len())?
            .copy_from_slice(bytes);
        self.len += bytes.len();
        Some(())
    }
}

/// A group at the start of `input` (which starts with LF) that can be
/// tokenised: (token, data to keep, bytes consumed).
fn tokenisable(input: &[u8]) -> Option<(u8, &[u8], usize)> {
    let cr = input.iter().take(MAX_CONTENT + 2).position(|&b| b == CR)?;
    let content = &input[1..cr];
    // label, separator, at least the final separator, checksum
    if content.len() < 4 {
        return None;
    }
    let (body, ck) = content.split_at(content.len() - 1);
    if !body.iter().all(|&b| is_data_byte(b)) {
        return None;
    }
    let sep = *body.last()?;
    let label_end = body.iter().position(|&b| b == sep)?;
    let label = core::str::from_utf8(&body[..label_end]).ok()?;
    let (table, base, span): (&[&str], u8, &[u8]) = match sep {
        // Standard: the checksum covers the final HT ("mode 2").
        HT => (&STANDARD_LABELS, STANDARD_BASE, body),
        // Historic: it stops before the final SP ("mode 1").
        SP => (&HISTORIC_LABELS, HISTORIC_BASE, &body[..body.len() - 1]),
        _ => return None,
    };
    if checksum(span) != ck[0] {
        return None;
    }
    let index = table.iter().position(|&l| l == label)?;
    Some((base + index as u8, &body[label_end + 1..], cr + 1))
}

/// Compacts `frame` into `out`; returns the length, or `None` if `out` is
/// too small.
pub fn compact(frame: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut out = Out { buf: out, len: 0 };
    let mut i = 0;
    while i < frame.len() {
        let b = frame[i];
        if b == LF {
            if let Some((token, data, used)) = tokenisable(&frame[i..]) {
                out.push(token)?;
                out.extend(data)?;
                i += used;
                // The decoder ends the group at the first non-data byte; if
                // the original continues with one, say where the group ends.
                if frame.get(i).is_some_and(|&next| is_data_byte(next)) {
                    out.push(END_GROUP)?;
                }
                continue;
            }
        }
        if b >= 0x80 {
            out.push(ESCAPE)?;
        }
        out.push(b)?;
        i += 1;
    }
    Some(out.len)
}

/// Inverse of [`compact`]; `None` on malformed input or when `out` is too
/// small. Never panics.
pub fn expand(data: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut out = Out { buf: out, len: 0 };
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        i += 1;
        match b {
            ESCAPE => {
                let literal = *data.get(i)?;
                if literal < 0x80 {
                    return None;
                }
                out.push(literal)?;
                i += 1;
            }
            STANDARD_BASE..TOKENS_END => {
                let (label, sep) = if b < HISTORIC_BASE {
                    (STANDARD_LABELS[usize::from(b - STANDARD_BASE)], HT)
                } else {
                    (HISTORIC_LABELS[usize::from(b - HISTORIC_BASE)], SP)
                };
                out.push(LF)?;
                let span_start = out.len;
                out.extend(label.as_bytes())?;
                out.push(sep)?;
                let data_start = i;
                while data.get(i).is_some_and(|&d| is_data_byte(d)) {
                    i += 1;
                }
                let group_data = &data[data_start..i];
                if group_data.last() != Some(&sep) {
                    return None;
                }
                out.extend(group_data)?;
                let span_end = if sep == SP { out.len - 1 } else { out.len };
                let ck = checksum(out.buf.get(span_start..span_end)?);
                out.push(ck)?;
                out.push(CR)?;
                if data.get(i) == Some(&END_GROUP) {
                    i += 1;
                }
            }
            // An END_GROUP outside a group, or an unassigned token.
            TOKENS_END..=END_GROUP => return None,
            _ => out.push(b)?,
        }
    }
    Some(out.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: &[u8]) -> usize {
        let mut packed = vec![0u8; frame.len() * 2 + 8];
        let n = compact(frame, &mut packed).unwrap();
        let mut back = vec![0u8; frame.len() + 8];
        let m = expand(&packed[..n], &mut back).unwrap();
        assert_eq!(&back[..m], frame);
        n
    }

    #[test]
    fn spec_groups_become_tokens() {
        // Worked examples of tic-protocol.md §2.5.
        let frame = b"\x02\nADCO 021861348497 L\r\nPTEC HP..  \r\nVTIC\t02\tJ\r\nDATE\tE170915101601\t\t>\r\nSTGE\t000A4411\t@\r\x03";
        let n = round_trip(frame);
        assert!(n < frame.len() * 2 / 3, "{n} of {}", frame.len());
    }

    #[test]
    fn bad_groups_noise_and_high_bytes_are_kept() {
        round_trip(b"\x02\nADCO 021861348497 X\r\nUNKNOWN\t1\t!\r\x03");
        round_trip(b"\x02\nVTIC\t02\tJ\rAB\nVTIC\t02\tJ\r \x03\xff\x80\xfe");
        round_trip(b"\nVTIC\t02\tJ\r\nVTIC\t02\tJ\r\r\n\x04");
        round_trip(b"");
    }

    #[test]
    fn malformed_input_is_refused_not_panicking() {
        let mut out = [0u8; 64];
        assert_eq!(expand(&[ESCAPE], &mut out), None);
        assert_eq!(expand(&[END_GROUP], &mut out), None);
        assert_eq!(expand(&[TOKENS_END], &mut out), None);
        assert_eq!(expand(&[STANDARD_BASE, b'1'], &mut out), None);
        assert_eq!(expand(&[b'a'; 65], &mut out), None);
    }
}
