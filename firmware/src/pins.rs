//! Which pins, per chip (docs/hardware.md explains the choice: no strapping,
//! USB, flash or console pins).

/// TIC RX input (the optocoupler's open collector, pulled up).
#[cfg(feature = "esp32c3")]
macro_rules! tic_rx {
    ($p:ident) => {
        $p.GPIO3
    };
}
/// Status LED output (active high, through a resistor).
#[cfg(feature = "esp32c3")]
macro_rules! led {
    ($p:ident) => {
        $p.GPIO10
    };
}

#[cfg(feature = "esp32c6")]
macro_rules! tic_rx {
    ($p:ident) => {
        $p.GPIO6
    };
}
#[cfg(feature = "esp32c6")]
macro_rules! led {
    ($p:ident) => {
        $p.GPIO7
    };
}

#[cfg(feature = "esp32")]
macro_rules! tic_rx {
    ($p:ident) => {
        $p.GPIO16
    };
}
#[cfg(feature = "esp32")]
macro_rules! led {
    ($p:ident) => {
        $p.GPIO2
    };
}

pub(crate) use led;
pub(crate) use tic_rx;
