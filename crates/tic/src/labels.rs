//! The typed dictionary of every label of both modes (tic-protocol.md §4.2, §5.2).
//!
//! Each [`LabelInfo`] gives a label's meaning, unit, kind of quantity, phase,
//! whether only producer or three-phase meters send it, whether it carries a
//! horodate, its nominal data length and the [`DataFormat`] its value must
//! match. Labels are looked up per mode: the two modes' label sets are disjoint.
//!
//! ```
//! use tic::{labels, Mode, Unit, Quantity};
//! let info = labels::lookup(Mode::Standard, b"EASF01").unwrap();
//! assert_eq!((info.unit, info.quantity), (Unit::Wh, Quantity::EnergyIndex));
//! assert!(labels::lookup(Mode::Historic, b"EASF01").is_none());
//! assert_eq!(labels::lookup(Mode::Standard, b"SMAXSN2-1").unwrap().phase, Some(2));
//! ```

use crate::scan::word;
use crate::Mode;

/// Physical unit of a label's value (units are never sent on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// No unit (text, identifiers, bit fields...).
    None,
    /// Watt-hour.
    Wh,
    /// Volt-ampere reactive hour.
    VArh,
    /// Volt-ampere.
    VA,
    /// Kilovolt-ampere.
    KVA,
    /// Watt.
    W,
    /// Ampere.
    A,
    /// Volt.
    V,
    /// Minute.
    Minute,
    /// Decalitre (10 L), for the concentrator's gas and third-meter indexes.
    Decalitre,
}

impl Unit {
    /// The unit's symbol, `""` for none.
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Wh => "Wh",
            Unit::VArh => "VArh",
            Unit::VA => "VA",
            Unit::KVA => "kVA",
            Unit::W => "W",
            Unit::A => "A",
            Unit::V => "V",
            Unit::Minute => "min",
            Unit::Decalitre => "daL",
        }
    }
}

/// What kind of quantity a label carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A cumulative active-energy register (never decreases).
    EnergyIndex,
    /// A cumulative reactive-energy register.
    ReactiveEnergyIndex,
    /// A cumulative volume register (gas, third meter).
    VolumeIndex,
    /// Apparent power (VA, kVA).
    ApparentPower,
    /// Active power (W).
    ActivePower,
    /// RMS current.
    Current,
    /// RMS or mean voltage.
    Voltage,
    /// A meter address or delivery-point number.
    Address,
    /// Historic tariff option (OPTARIF).
    TariffOption,
    /// Historic current tariff period (PTEC).
    TariffPeriod,
    /// Supplier calendar or tariff name (NGTF, LTARF).
    TariffName,
    /// Number of the current supplier tariff index (NTARF).
    TariffIndex,
    /// Tomorrow's Tempo colour (DEMAIN).
    Colour,
    /// Advance notice of a mobile peak (PEJP).
    Notice,
    /// Free or reserved text.
    Text,
    /// A bit field (STGE, RELAIS, PPOT).
    BitField,
    /// The meter's current date and time (DATE).
    DateTime,
    /// Start or end of a mobile peak (DPM1-3, FPM1-3).
    MobilePeak,
    /// A message for the customer (MSG1, MSG2).
    Message,
    /// A version number (VTIC).
    Version,
    /// A day number in the supplier calendar.
    DayNumber,
    /// A day profile (PJOURF+1, PPOINTE).
    DayProfile,
}

/// The format a label's value must match for the group to be accepted.
///
/// Lengths are not enforced (real meters send NGTF `PRODUCTEUR` and 11-digit
/// addresses) and neither are enumerations; character classes are, because a
/// flipped bit 6 (`0` → `p`) keeps a 6-bit checksum valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// One or more decimal digits.
    Digits,
    /// One or more upper-case hexadecimal digits.
    Hex,
    /// Empty (standard mode's DATE: the information is in the horodate).
    Empty,
    /// Blocks of 8 characters (`HHMM` + 4 hex digits, or `NONUTILE`) separated by single spaces.
    DayProfile,
    /// Any printable text, spaces significant.
    Text,
}

/// One label of the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelInfo {
    /// The label as sent.
    pub label: &'static str,
    /// The mode that uses it.
    pub mode: Mode,
    /// What it means (English; the French designation in brackets where the spec gives one).
    pub meaning: &'static str,
    /// Unit of the value.
    pub unit: Unit,
    /// Kind of quantity.
    pub quantity: Quantity,
    /// Phase 1–3 for per-phase values.
    pub phase: Option<u8>,
    /// Sent by producer meters only.
    pub producer_only: bool,
    /// Sent by three-phase meters only.
    pub three_phase_only: bool,
    /// Carries a horodate (standard mode).
    pub horodated: bool,
    /// Nominal data length in characters (not enforced).
    pub chars: u8,
    /// The value's format (enforced).
    pub format: DataFormat,
}

macro_rules! dictionary {
    ($mode:expr, $all:ident, $lookup:ident;
     $($id:ident $label:literal $chars:literal $unit:ident $q:ident $fmt:ident
       $phase:literal $h:literal $tp:literal $prod:literal $meaning:literal;)*) => {
        $(
            #[doc = $meaning]
            pub static $id: LabelInfo = LabelInfo {
                label: $label,
                mode: $mode,
                meaning: $meaning,
                unit: Unit::$unit,
                quantity: Quantity::$q,
                phase: if $phase == 0 { None } else { Some($phase) },
                producer_only: $prod == 1,
                three_phase_only: $tp == 1,
                horodated: $h == 1,
                chars: $chars,
                format: DataFormat::$fmt,
            };
        )*
        /// Every label of this mode, in the spec's (and the frame's) order.
        pub static $all: &[&LabelInfo] = &[$(&$id),*];

        /// `key` is the label packed by [`Key::pack`].
        #[inline(always)]
        fn $lookup(key: Key) -> Option<&'static LabelInfo> {
            // Built at compile time: a bad table is a build error, not a runtime one.
            const LABELS: &[&LabelInfo] = &[$(&$id),*];
            static INDEX: Index<{ LABELS.len() }> = Index::build(LABELS);
            INDEX.find(key)
        }
    };
}

/// A label of up to [`Key::MAX_LEN`] bytes packed little-endian into two
/// words, zero-padded. Labels are printable (never 0), so the padding cannot
/// be mistaken for label bytes and equal keys mean equal labels: comparing two
/// words replaces a byte-string comparison, and hashing them costs a multiply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u64, u64);

impl Key {
    /// The longest label the dictionary can hold (the longest real one has 9 bytes).
    const MAX_LEN: usize = 16;

    /// Packs `label`; `None` if it is empty, too long for any dictionary entry, or holds a 0 byte.
    #[inline]
    pub(crate) fn pack(label: &[u8]) -> Option<Key> {
        if label.is_empty() || label.len() > Key::MAX_LEN {
            return None;
        }
        let mut words = [0u64; 2];
        for (i, &b) in label.iter().enumerate() {
            if b == 0 {
                return None;
            }
            words[i / 8] |= (b as u64) << (8 * (i % 8));
        }
        Some(Key(words[0], words[1]))
    }

    /// Packs the first `len` bytes of `bytes`: the label at the start of a
    /// group's content, read as whole words instead of byte by byte when the
    /// content is long enough (the usual case). The caller guarantees that
    /// these bytes hold no 0 (a checked group's content holds none).
    #[inline(always)]
    pub(crate) fn pack_prefix(bytes: &[u8], len: usize) -> Option<Key> {
        if len == 0 || len > Key::MAX_LEN || len > bytes.len() {
            return None;
        }
        // Nearly every label has at most 8 bytes: one word, one mask.
        if len <= 8 {
            if let Some(lo) = bytes.get(..8) {
                return Some(Key(word(lo) & (u64::MAX >> (64 - 8 * len)), 0));
            }
        } else if let (Some(lo), Some(hi)) = (bytes.get(..8), bytes.get(8..16)) {
            return Some(Key(word(lo), word(hi) & (u64::MAX >> (128 - 8 * len))));
        }
        Key::pack(&bytes[..len])
    }

    const fn pack_const(label: &str) -> Key {
        let b = label.as_bytes();
        assert!(!b.is_empty() && b.len() <= Key::MAX_LEN, "label length");
        let mut words = [0u64; 2];
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != 0, "label byte 0");
            words[i / 8] |= (b[i] as u64) << (8 * (i % 8));
            i += 1;
        }
        Key(words[0], words[1])
    }

    /// The slot a key hashes to: multiply-shift, top bits.
    #[inline]
    const fn slot(self) -> usize {
        let mixed = (self.0 ^ self.1.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - SLOT_BITS)) as usize
    }
}

/// An open-addressing hash table from label keys to dictionary positions.
///
/// The dictionary's `match` on `&str` compiled to a chain of length checks
/// and string comparisons; this is one multiply and, at a load under 30 %,
/// about one two-word comparison per lookup.
struct Index<const N: usize> {
    /// Dictionary position + 1 per slot; 0 is an empty slot.
    slots: [u8; SLOTS],
    /// The key and the entry of each dictionary position, side by side: a
    /// hit reads one line, with no further lookup in the dictionary.
    entries: [(Key, Option<&'static LabelInfo>); N],
}

/// The index's slots: a power of two, under 30 % full.
const SLOT_BITS: u32 = 8;
const SLOTS: usize = 1 << SLOT_BITS;

impl<const N: usize> Index<N> {
    const fn build(labels: &[&'static LabelInfo]) -> Index<N> {
        assert!(
            labels.len() == N && N < 255 && N * 10 < SLOTS * 3,
            "label count: the index must stay under 30 % full"
        );
        let mut index = Index {
            slots: [0; SLOTS],
            entries: [(Key(0, 0), None); N],
        };
        let mut i = 0;
        while i < labels.len() {
            let key = Key::pack_const(labels[i].label);
            let mut slot = key.slot();
            while index.slots[slot] != 0 {
                let other = index.entries[index.slots[slot] as usize - 1].0;
                assert!(other.0 != key.0 || other.1 != key.1, "duplicate label");
                slot = (slot + 1) % SLOTS;
            }
            index.slots[slot] = (i + 1) as u8;
            index.entries[i] = (key, Some(labels[i]));
            i += 1;
        }
        index
    }

    /// The dictionary entry of a key.
    #[inline(always)]
    fn find(&self, key: Key) -> Option<&'static LabelInfo> {
        let mut slot = key.slot();
        // The table is never full, so an empty slot ends every probe sequence;
        // the bound only guards against an impossible infinite loop.
        for _ in 0..SLOTS {
            let (entry_key, info) = *self
                .entries
                .get((self.slots[slot] as usize).checked_sub(1)?)?;
            if entry_key == key {
                return info;
            }
            slot = (slot + 1) % SLOTS;
        }
        None
    }
}

// Columns: static name, label, nominal length, unit, quantity, format,
// phase (0 = none), horodated, three-phase only, producer only, meaning.
dictionary! { Mode::Historic, HISTORIC, lookup_historic;
    ADCO "ADCO" 12 None Address Digits 0 0 0 0 "Meter address (adresse du compteur, ADS).";
    OPTARIF "OPTARIF" 4 None TariffOption Text 0 0 0 0 "Tariff option chosen (option tarifaire).";
    ISOUSC "ISOUSC" 2 A Current Digits 0 0 0 0 "Subscribed current (intensité souscrite).";
    BASE "BASE" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Base option.";
    HCHC "HCHC" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, off-peak hours (heures creuses).";
    HCHP "HCHP" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, peak hours (heures pleines).";
    EJPHN "EJPHN" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, EJP normal hours.";
    EJPHPM "EJPHPM" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, EJP mobile-peak hours.";
    BBRHCJB "BBRHCJB" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo off-peak, blue days.";
    BBRHPJB "BBRHPJB" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo peak, blue days.";
    BBRHCJW "BBRHCJW" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo off-peak, white days.";
    BBRHPJW "BBRHPJW" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo peak, white days.";
    BBRHCJR "BBRHCJR" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo off-peak, red days.";
    BBRHPJR "BBRHPJR" 9 Wh EnergyIndex Digits 0 0 0 0 "Index, Tempo peak, red days.";
    GAZ "GAZ" 7 Decalitre VolumeIndex Digits 0 0 0 0 "Gas index (concentrator).";
    AUTRE "AUTRE" 7 Decalitre VolumeIndex Digits 0 0 0 0 "Third-meter index (concentrator).";
    PEJP "PEJP" 2 Minute Notice Digits 0 0 0 0 "EJP advance notice (préavis début EJP), 30 min.";
    PTEC "PTEC" 4 None TariffPeriod Text 0 0 0 0 "Current tariff period (période tarifaire en cours).";
    DEMAIN "DEMAIN" 4 None Colour Text 0 0 0 0 "Tomorrow's Tempo colour (couleur du lendemain).";
    IINST "IINST" 3 A Current Digits 0 0 0 0 "Instantaneous RMS current (intensité instantanée).";
    IINST1 "IINST1" 3 A Current Digits 1 0 1 0 "Instantaneous RMS current, phase 1.";
    IINST2 "IINST2" 3 A Current Digits 2 0 1 0 "Instantaneous RMS current, phase 2.";
    IINST3 "IINST3" 3 A Current Digits 3 0 1 0 "Instantaneous RMS current, phase 3.";
    ADPS "ADPS" 3 A Current Digits 0 0 0 0 "Overload warning: current above the subscribed current (avertissement de dépassement).";
    IMAX "IMAX" 3 A Current Digits 0 0 0 0 "Maximum current drawn (intensité maximale appelée).";
    IMAX1 "IMAX1" 3 A Current Digits 1 0 1 0 "Maximum current drawn, phase 1.";
    IMAX2 "IMAX2" 3 A Current Digits 2 0 1 0 "Maximum current drawn, phase 2.";
    IMAX3 "IMAX3" 3 A Current Digits 3 0 1 0 "Maximum current drawn, phase 3.";
    PMAX "PMAX" 5 W ActivePower Digits 0 0 1 0 "Maximum three-phase power reached (Linky: yesterday's Smax in VA).";
    PAPP "PAPP" 5 VA ApparentPower Digits 0 0 0 0 "Apparent power (puissance apparente), rounded to 10 VA.";
    HHPHC "HHPHC" 1 None Text Text 0 0 0 0 "Peak/off-peak schedule code (horaire heures pleines heures creuses).";
    MOTDETAT "MOTDETAT" 6 None Text Text 0 0 0 0 "Meter status word (mot d'état du compteur), reserved to the distributor.";
    PPOT "PPOT" 2 None BitField Hex 0 0 1 0 "Presence of the phase voltages (présence des potentiels).";
    ADIR1 "ADIR1" 3 A Current Digits 1 0 1 0 "Overload warning, phase 1 (short frames).";
    ADIR2 "ADIR2" 3 A Current Digits 2 0 1 0 "Overload warning, phase 2 (short frames).";
    ADIR3 "ADIR3" 3 A Current Digits 3 0 1 0 "Overload warning, phase 3 (short frames).";
}

dictionary! { Mode::Standard, STANDARD, lookup_standard;
    ADSC "ADSC" 12 None Address Digits 0 0 0 0 "Secondary meter address (adresse secondaire du compteur).";
    VTIC "VTIC" 2 None Version Digits 0 0 0 0 "TIC specification version (version de la TIC).";
    DATE "DATE" 0 None DateTime Empty 0 1 0 0 "Current date and time (date et heure courante).";
    NGTF "NGTF" 16 None TariffName Text 0 0 0 0 "Supplier tariff calendar name (nom du calendrier tarifaire fournisseur).";
    LTARF "LTARF" 16 None TariffName Text 0 0 0 0 "Current supplier tariff label (libellé tarif fournisseur en cours).";
    EAST "EAST" 9 Wh EnergyIndex Digits 0 0 0 0 "Total active energy drawn (énergie active soutirée totale).";
    EASF01 "EASF01" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 01.";
    EASF02 "EASF02" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 02.";
    EASF03 "EASF03" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 03.";
    EASF04 "EASF04" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 04.";
    EASF05 "EASF05" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 05.";
    EASF06 "EASF06" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 06.";
    EASF07 "EASF07" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 07.";
    EASF08 "EASF08" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 08.";
    EASF09 "EASF09" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 09.";
    EASF10 "EASF10" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, supplier index 10.";
    EASD01 "EASD01" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, distributor index 01.";
    EASD02 "EASD02" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, distributor index 02.";
    EASD03 "EASD03" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, distributor index 03.";
    EASD04 "EASD04" 9 Wh EnergyIndex Digits 0 0 0 0 "Active energy drawn, distributor index 04.";
    EAIT "EAIT" 9 Wh EnergyIndex Digits 0 0 0 1 "Total active energy injected (énergie active injectée totale).";
    ERQ1 "ERQ1" 9 VArh ReactiveEnergyIndex Digits 0 0 0 1 "Total reactive energy, quadrant 1.";
    ERQ2 "ERQ2" 9 VArh ReactiveEnergyIndex Digits 0 0 0 1 "Total reactive energy, quadrant 2.";
    ERQ3 "ERQ3" 9 VArh ReactiveEnergyIndex Digits 0 0 0 1 "Total reactive energy, quadrant 3.";
    ERQ4 "ERQ4" 9 VArh ReactiveEnergyIndex Digits 0 0 0 1 "Total reactive energy, quadrant 4.";
    IRMS1 "IRMS1" 3 A Current Digits 1 0 0 0 "RMS current, phase 1 (courant efficace).";
    IRMS2 "IRMS2" 3 A Current Digits 2 0 1 0 "RMS current, phase 2.";
    IRMS3 "IRMS3" 3 A Current Digits 3 0 1 0 "RMS current, phase 3.";
    URMS1 "URMS1" 3 V Voltage Digits 1 0 0 0 "RMS voltage, phase 1 (tension efficace).";
    URMS2 "URMS2" 3 V Voltage Digits 2 0 1 0 "RMS voltage, phase 2.";
    URMS3 "URMS3" 3 V Voltage Digits 3 0 1 0 "RMS voltage, phase 3.";
    PREF "PREF" 2 KVA ApparentPower Digits 0 0 0 0 "Reference (subscribed) apparent power (puissance app. de référence).";
    PCOUP "PCOUP" 2 KVA ApparentPower Digits 0 0 0 0 "Cut-off apparent power threshold (puissance app. de coupure).";
    SINSTS "SINSTS" 5 VA ApparentPower Digits 0 0 0 0 "Instantaneous apparent power drawn (puissance app. instantanée soutirée).";
    SINSTS1 "SINSTS1" 5 VA ApparentPower Digits 1 0 1 0 "Instantaneous apparent power drawn, phase 1.";
    SINSTS2 "SINSTS2" 5 VA ApparentPower Digits 2 0 1 0 "Instantaneous apparent power drawn, phase 2.";
    SINSTS3 "SINSTS3" 5 VA ApparentPower Digits 3 0 1 0 "Instantaneous apparent power drawn, phase 3.";
    SMAXSN "SMAXSN" 5 VA ApparentPower Digits 0 1 0 0 "Maximum apparent power drawn today (puissance app. max. soutirée n).";
    SMAXSN1 "SMAXSN1" 5 VA ApparentPower Digits 1 1 1 0 "Maximum apparent power drawn today, phase 1.";
    SMAXSN2 "SMAXSN2" 5 VA ApparentPower Digits 2 1 1 0 "Maximum apparent power drawn today, phase 2.";
    SMAXSN3 "SMAXSN3" 5 VA ApparentPower Digits 3 1 1 0 "Maximum apparent power drawn today, phase 3.";
    SMAXSN_1 "SMAXSN-1" 5 VA ApparentPower Digits 0 1 0 0 "Maximum apparent power drawn yesterday (n-1).";
    SMAXSN1_1 "SMAXSN1-1" 5 VA ApparentPower Digits 1 1 1 0 "Maximum apparent power drawn yesterday, phase 1.";
    SMAXSN2_1 "SMAXSN2-1" 5 VA ApparentPower Digits 2 1 1 0 "Maximum apparent power drawn yesterday, phase 2.";
    SMAXSN3_1 "SMAXSN3-1" 5 VA ApparentPower Digits 3 1 1 0 "Maximum apparent power drawn yesterday, phase 3.";
    SINSTI "SINSTI" 5 VA ApparentPower Digits 0 0 0 1 "Instantaneous apparent power injected (puissance app. instantanée injectée).";
    SMAXIN "SMAXIN" 5 VA ApparentPower Digits 0 1 0 1 "Maximum apparent power injected today.";
    SMAXIN_1 "SMAXIN-1" 5 VA ApparentPower Digits 0 1 0 1 "Maximum apparent power injected yesterday.";
    CCASN "CCASN" 5 W ActivePower Digits 0 1 0 0 "Load-curve point n, active power drawn (courbe de charge).";
    CCASN_1 "CCASN-1" 5 W ActivePower Digits 0 1 0 0 "Load-curve point n-1, active power drawn.";
    CCAIN "CCAIN" 5 W ActivePower Digits 0 1 0 1 "Load-curve point n, active power injected.";
    CCAIN_1 "CCAIN-1" 5 W ActivePower Digits 0 1 0 1 "Load-curve point n-1, active power injected.";
    UMOY1 "UMOY1" 3 V Voltage Digits 1 1 0 0 "Mean voltage, phase 1 (tension moyenne).";
    UMOY2 "UMOY2" 3 V Voltage Digits 2 1 1 0 "Mean voltage, phase 2.";
    UMOY3 "UMOY3" 3 V Voltage Digits 3 1 1 0 "Mean voltage, phase 3.";
    STGE "STGE" 8 None BitField Hex 0 0 0 0 "Status register (registre de statuts).";
    DPM1 "DPM1" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 1 start (début pointe mobile 1).";
    FPM1 "FPM1" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 1 end (fin pointe mobile 1).";
    DPM2 "DPM2" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 2 start.";
    FPM2 "FPM2" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 2 end.";
    DPM3 "DPM3" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 3 start.";
    FPM3 "FPM3" 2 None MobilePeak Digits 0 1 0 0 "Mobile peak 3 end.";
    MSG1 "MSG1" 32 None Message Text 0 0 0 0 "Short message (message court).";
    MSG2 "MSG2" 16 None Message Text 0 0 0 0 "Ultra-short message (message ultra court).";
    PRM "PRM" 14 None Address Digits 0 0 0 0 "Delivery point reference (point de référence mesure).";
    RELAIS "RELAIS" 3 None BitField Digits 0 0 0 0 "State of relays 1-8 (relais).";
    NTARF "NTARF" 2 None TariffIndex Digits 0 0 0 0 "Number of the current supplier tariff index (numéro de l'index tarifaire en cours).";
    NJOURF "NJOURF" 2 None DayNumber Digits 0 0 0 0 "Current day number in the supplier calendar.";
    NJOURF_P1 "NJOURF+1" 2 None DayNumber Digits 0 0 0 0 "Next day number in the supplier calendar.";
    PJOURF_P1 "PJOURF+1" 98 None DayProfile DayProfile 0 0 0 0 "Profile of the next supplier-calendar day (profil du prochain jour).";
    PPOINTE "PPOINTE" 98 None DayProfile DayProfile 0 0 0 0 "Profile of the next peak day (profil du prochain jour de pointe).";
}

/// The dictionary entry of a label in a mode, if the spec defines it.
#[inline]
pub fn lookup(mode: Mode, label: &[u8]) -> Option<&'static LabelInfo> {
    lookup_key(mode, Key::pack(label)?)
}

/// [`lookup`] for a packed label.
#[inline(always)]
pub(crate) fn lookup_key(mode: Mode, key: Key) -> Option<&'static LabelInfo> {
    match mode {
        Mode::Historic => lookup_historic(key),
        Mode::Standard => lookup_standard(key),
    }
}

/// Whether an unknown label is a known one damaged in a way the 6-bit
/// checksum cannot see (tic-protocol.md §2.5: the sum is taken modulo 64, so
/// a flipped bit 6 — ±64 — leaves it unchanged):
///
/// * one character with bit 6 flipped (`EASF01` received as `EASFp1`);
/// * in standard mode, the HT after a known label flipped to `I` (0x09 ^
///   0x40), which glues the next field onto the label (`DATEIH2601…`).
///
/// Such a group is rejected ([`GroupError::SuspectLabel`](crate::GroupError::SuspectLabel))
/// rather than kept as an unknown label. Genuinely unknown labels (other
/// meter families, future versions) are not one flip away from a known one.
///
/// ```
/// use tic::{labels, Mode};
/// assert!(labels::is_corrupted_label(Mode::Standard, b"EASFp1"));
/// assert!(labels::is_corrupted_label(Mode::Standard, b"DATEIH260102134400"));
/// assert!(!labels::is_corrupted_label(Mode::Standard, b"EA_s"));
/// ```
pub fn is_corrupted_label(mode: Mode, label: &[u8]) -> bool {
    let mut buf = [0u8; 16];
    if label.len() <= buf.len() {
        let buf = &mut buf[..label.len()];
        buf.copy_from_slice(label);
        for i in 0..buf.len() {
            buf[i] ^= 0x40;
            let hit = lookup(mode, buf).is_some();
            buf[i] ^= 0x40;
            if hit {
                return true;
            }
        }
    }
    mode == Mode::Standard
        && label
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'I' && lookup(mode, &label[..i]).is_some())
}

/// Every label of a mode, in frame order.
pub fn all(mode: Mode) -> &'static [&'static LabelInfo] {
    match mode {
        Mode::Historic => HISTORIC,
        Mode::Standard => STANDARD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_found_in_its_mode_only() {
        for mode in [Mode::Historic, Mode::Standard] {
            let other = match mode {
                Mode::Historic => Mode::Standard,
                Mode::Standard => Mode::Historic,
            };
            for info in all(mode) {
                assert_eq!(lookup(mode, info.label.as_bytes()), Some(*info));
                assert_eq!(lookup(other, info.label.as_bytes()), None);
                assert_eq!(info.mode, mode);
            }
        }
        assert_eq!(HISTORIC.len(), 36);
        assert_eq!(STANDARD.len(), 71);
    }

    #[test]
    fn near_misses_are_not_found() {
        let is_label = |mode, l: &[u8]| all(mode).iter().any(|i| i.label.as_bytes() == l);
        for mode in [Mode::Historic, Mode::Standard] {
            for info in all(mode) {
                let l = info.label.as_bytes();
                let mut variants = [[0u8; 20]; 4];
                let mut lens = [0usize; 4];
                // Prefix, extension, last byte changed, first byte changed.
                variants[0][..l.len() - 1].copy_from_slice(&l[..l.len() - 1]);
                lens[0] = l.len() - 1;
                variants[1][..l.len()].copy_from_slice(l);
                variants[1][l.len()] = b'1';
                lens[1] = l.len() + 1;
                for (v, at) in [(2, l.len() - 1), (3, 0)] {
                    variants[v][..l.len()].copy_from_slice(l);
                    variants[v][at] ^= 0x01;
                    lens[v] = l.len();
                }
                for (v, &len) in variants.iter().zip(&lens) {
                    let v = &v[..len];
                    let found = lookup(mode, v).map(|i| i.label.as_bytes());
                    assert_eq!(found, is_label(mode, v).then_some(v), "{:?}", v);
                }
            }
            assert_eq!(lookup(mode, b""), None);
            assert_eq!(lookup(mode, b"ADCO\0"), None);
            assert_eq!(lookup(mode, b"A_LABEL_LONGER_THAN_16"), None);
        }
    }

    #[test]
    fn prefix_packing_matches_byte_packing() {
        let content = b"SMAXSN1-1\tH200213085118\t03129\tJ";
        for len in 1..=content.len() {
            for end in len..=content.len() {
                assert!(
                    Key::pack_prefix(&content[..end], len) == Key::pack(&content[..len]),
                    "{len} {end}"
                );
            }
        }
    }
}
