# syntax=docker/dockerfile:1
# kasm-mcp: multi-stage build. Two runtime targets:
#   runtime (default): distroless, non-root, no shell and no curl; the container health
#                      check is the binary's own `kasm-mcp healthcheck` subcommand.
#   demo:              `kasm-mcp demo` (built-in Kasm simulator). Its simulated sessions run
#                      real commands in this container, so it carries sh, coreutils and curl
#                      (the relay wrapper uploads command output with curl).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Cargo.toml names every target (the integration tests and the conformance example too), so
# the whole source tree is copied; BuildKit cache mounts keep the registry and target warm.
# build.rs + link/: the start-up functions laid out together (rustc >= 1.90 links with lld,
# which reads the ordering file; see docs/BENCHMARKS.md "Idle RSS at start").
COPY Cargo.toml Cargo.lock build.rs ./
# link/kasm-mcp.profdata: profile-guided optimisation (scripts/release-rustflags.sh prints
# the flags, or none when the profile does not fit this rustc's LLVM).
COPY link ./link
COPY scripts/release-rustflags.sh ./scripts/
COPY src ./src
COPY examples ./examples
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS="$(scripts/release-rustflags.sh)" cargo build --release --locked --bin kasm-mcp \
    && cp target/release/kasm-mcp /usr/local/bin/kasm-mcp \
    && strip /usr/local/bin/kasm-mcp \
    && mkdir -p /out/var/lib/kasm-mcp

FROM debian:bookworm-slim AS demo
# Versions are those of the bookworm snapshot the base image was built from.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin kasm-mcp
COPY --from=build /usr/local/bin/kasm-mcp /usr/local/bin/kasm-mcp
USER 10001:10001
WORKDIR /tmp
ENV MCP_SERVER_HOST=0.0.0.0 \
    MCP_SERVER_PORT=8080 \
    RUST_LOG=warn
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/kasm-mcp", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/kasm-mcp"]
CMD ["demo", "--host", "0.0.0.0", "--port", "8080"]

# glibc + CA certificates + nothing else; `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /usr/local/bin/kasm-mcp /usr/local/bin/kasm-mcp
COPY --from=build --chown=65532:65532 /out/var/lib/kasm-mcp /var/lib/kasm-mcp
COPY config/kasm-mcp.example.toml /etc/kasm-mcp/kasm-mcp.example.toml
USER 65532:65532
WORKDIR /var/lib/kasm-mcp
ENV MCP_SERVER_HOST=0.0.0.0 \
    MCP_SERVER_PORT=8080 \
    RUST_LOG=info
EXPOSE 8080
# Liveness of the process; `kasm-mcp healthcheck --ready` would also require Kasm.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/kasm-mcp", "healthcheck"]
# SIGTERM drains in-flight tool calls for lifecycle.shutdown_grace_s (default 10 s), then takes
# up to 3 s to record task calls it cut off; compose's stop_grace_period must be at least 5 s
# longer.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kasm-mcp"]
CMD ["serve"]
