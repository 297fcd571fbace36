# syntax=docker/dockerfile:1
# kasm-mcp: multi-stage build → small non-root runtime image.

FROM rust:1.88-bookworm AS build
WORKDIR /src
# Cargo.toml names every target (the integration tests and the conformance example too), so
# the whole source tree is copied; BuildKit cache mounts keep the registry and target warm.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kasm-mcp \
    && cp target/release/kasm-mcp /usr/local/bin/kasm-mcp \
    && strip /usr/local/bin/kasm-mcp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin kasm-mcp
COPY --from=build /usr/local/bin/kasm-mcp /usr/local/bin/kasm-mcp
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
