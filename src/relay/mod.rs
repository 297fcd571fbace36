//! The relay: single-use tickets through which session containers return command output
//! and file bytes.
