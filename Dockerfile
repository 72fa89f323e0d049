# Multi-stage build: compile with the full Rust toolchain, run on a slim image as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
COPY static static
RUN cargo build --release --locked --bin lien

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/lien --create-home --uid 10001 lien
COPY --from=build /src/target/release/lien /usr/local/bin/lien
USER lien
WORKDIR /var/lib/lien
ENV LIEN_DATA_DIR=/var/lib/lien LIEN_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["lien"]
CMD ["serve"]
