# syntax=docker/dockerfile:1
# Tributary's container image: built in the Rust image, shipped in distroless "cc" (glibc and
# libgcc, CA certificates, no shell, no package manager), running as the non-root user 65532.
#
#   docker build -t tributary:0.1.0 .
#
# The binary is built by scripts/build-release.sh, the same command CI runs (.ci/run):
# `cargo build --release --locked --bin tributary` with OpenSSL and zlib linked statically,
# and a check that it links nothing but glibc and libgcc.

FROM rust:1.95.0-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make perl pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    ./scripts/build-release.sh \
 && install -D -m 0755 target/release/tributary /out/tributary

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tributary /usr/local/bin/tributary
# OpenSSL is linked statically: point it at the image's CA bundle for brokers with public CAs
# (a KafkaCluster's tls.caCert, when set, is used instead).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["operator"]
