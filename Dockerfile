# syntax=docker/dockerfile:1
# kasm-mcp: multi-stage build → small non-root runtime image.

FROM rust:1.88-bookworm AS build
WORKDIR /src
# Cache dependencies separately from the sources.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src examples && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > examples/conformance_server.rs \
    && cargo build --release --locked --bin kasm-mcp || true
COPY src ./src
COPY examples ./examples
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin kasm-mcp \
    && strip target/release/kasm-mcp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin kasm-mcp
COPY --from=build /src/target/release/kasm-mcp /usr/local/bin/kasm-mcp
COPY config/kasm-mcp.example.toml /etc/kasm-mcp/kasm-mcp.example.toml
USER 10001:10001
WORKDIR /var/lib/kasm-mcp
ENV MCP_SERVER_HOST=0.0.0.0 \
    MCP_SERVER_PORT=8080 \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${MCP_SERVER_PORT}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/kasm-mcp"]
CMD ["serve"]
