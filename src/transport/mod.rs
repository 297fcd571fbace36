//! HTTP transports: Streamable HTTP (`/mcp`) and legacy HTTP+SSE (`/sse`, `/messages`).
