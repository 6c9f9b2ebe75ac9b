# syntax=docker/dockerfile:1
#
# The orgtrail image: the three binaries (orgtrail-aggregator, orgtrail-collector, orgtrail) on
# distroless, running as the non-root user 65532. The Helm chart (helm/orgtrail) runs the
# aggregator and the collector from it by their paths.
#
#   docker build -t orgtrail:0.1.0 .
#
# The schema migrations are compiled into orgtrail-aggregator (sqlx::migrate!), so migrations/ is
# not copied; nor is anything else at run time but the binaries. TLS roots: PostgreSQL's and the
# aggregator's are given in the configuration (or the bundled web PKI roots); the AWS SDK uses
# the image's /etc/ssl/certs, which distroless carries.

ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
ENV CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never
# The whole workspace (its members' manifests are needed to resolve it); .dockerignore keeps
# target/, .git/ and the sample data out of the context.
COPY . .
# One cargo invocation for the three packages, so their shared dependencies are built once with
# one set of features. The caches keep the registry and target/ across builds (BuildKit); the
# binaries are copied out of the cache mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --package orgtrail-aggregator --package orgtrail-collector --package orgtrail-cli \
        --bins \
    && mkdir -p /out \
    && cp target/release/orgtrail-aggregator target/release/orgtrail-collector target/release/orgtrail /out/

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="orgtrail" \
      org.opencontainers.image.description="Self-hosted organization-wide AWS CloudTrail: aggregator, collector and CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build --chown=0:0 --chmod=0755 /out/ /usr/local/bin/
# distroless' "nonroot" user; the Helm chart sets the same uid and gid.
USER 65532:65532
# The gRPC API, the plaintext health-checking listener, the Prometheus metrics.
EXPOSE 50051 8081 9090
ENTRYPOINT ["/usr/local/bin/orgtrail-aggregator"]
CMD ["--config", "/etc/orgtrail/aggregator.toml", "serve"]
