//! Integration tests: kasm_client.
