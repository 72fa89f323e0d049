# syntax=docker/dockerfile:1
# Multi-stage build: compile with the full Rust toolchain, run on a slim image as a non-root user.
# The image runs against an external PostgreSQL (DATABASE_URL); it carries no PostgreSQL server,
# so the embedded database is not available in it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
COPY static static
# The registry and target caches survive between builds (BuildKit); the binary is copied out of
# the cache mount so that the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lien \
 && cp target/release/lien /usr/local/bin/lien

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lien \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/lien --create-home lien
COPY --from=build /usr/local/bin/lien /usr/local/bin/lien
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /var/lib/lien
ENV LIEN_DATA_DIR=/var/lib/lien LIEN_LISTEN=0.0.0.0:8080
EXPOSE 8080
# For `serve`; `lien worker` serves no HTTP unless LIEN_METRICS_LISTEN is set (docker-compose.yml
# gives the worker a check of its own).
HEALTHCHECK --interval=15s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["lien"]
CMD ["serve"]
