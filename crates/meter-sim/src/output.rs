//! Outputs (filled in next).
