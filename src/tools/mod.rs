//! The tool catalog: one file per tool group, each mapping arguments → policy → Kasm client.
