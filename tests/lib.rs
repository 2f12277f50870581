//! Holder crate for the black-box integration suite in integration/.
