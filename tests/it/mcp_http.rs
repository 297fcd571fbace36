//! Integration tests: mcp_http.
