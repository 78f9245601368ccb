# The gateway as a container image: `gateway serve` as an unprivileged user,
# data in /data, S3 on 9000, NFSv3 (with MOUNT on the same port) on 2049,
# metrics on 9095. docker-compose.yml at the repository root runs it as a lab.
#
#   docker build -t gateway .                    # compile in rust:1.95-bookworm (default target)
#   docker run -d -v gw-data:/data -p 9000:9000 -p 2049:2049 -p 9095:9095 \
#       -e GATEWAY_ACCESS_KEY=... -e GATEWAY_SECRET_KEY=... gateway
#
# Targets:
#   runtime            (default) the binary compiled from source in RUST_IMAGE
#   runtime-prebuilt   the binary from target/release/gateway in the build
#                      context (`cargo build --release -p gateway` first); the
#                      same runtime stage without a compiler image. The compose
#                      test (tests/compose/compose-test) builds this target on a
#                      base image made locally with debootstrap.
# Build arguments:
#   RUST_IMAGE      builder image (default rust:1.95-bookworm)
#   RUNTIME_IMAGE   runtime base (default debian:bookworm-slim; any Debian-like
#                   image with bash and useradd works)
#
# The stages are ordered so that the legacy builder (DOCKER_BUILDKIT=0), which
# builds every stage before the target, never needs the compiler image for
# runtime-prebuilt; a default build with it passes through runtime-prebuilt,
# which copies target/release/gateway if present and ignores it otherwise.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- runtime base
# (Few instructions: the legacy builder commits a layer for each, slowly on
# some storage drivers.)
FROM ${RUNTIME_IMAGE} AS runtime-base
# The `gateway` user and group (uid/gid 10001) own /data.
RUN set -eu; \
    if ! getent group gateway >/dev/null; then groupadd --system --gid 10001 gateway; fi; \
    if ! getent passwd gateway >/dev/null; then \
        useradd --system --uid 10001 --gid gateway --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin gateway; \
    fi; \
    mkdir -p /data /etc/gateway; \
    chown gateway:gateway /data; \
    chmod 0750 /data
# Listen on every interface of the container; the port mapping decides what
# is reachable. Docker lets unprivileged processes bind ports below 1024
# inside a container (net.ipv4.ip_unprivileged_port_start=0), so NFS keeps
# its standard port 2049.
ENV GATEWAY_DATA_DIR=/data \
    GATEWAY_S3_LISTEN=0.0.0.0:9000 \
    GATEWAY_NFS_LISTEN=0.0.0.0:2049 \
    GATEWAY_METRICS_LISTEN=0.0.0.0:9095
EXPOSE 9000 2049 9095
VOLUME ["/data"]
# Healthy while /readyz on the metrics port answers 200: recovery is done
# and every listener is bound (docker/gateway-healthcheck, plain bash).
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["gateway-healthcheck"]
USER gateway
# SIGTERM (the default stop signal) drains in-flight requests for up to
# shutdown_deadline_secs (30 s): give `docker stop` a longer -t.
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]

# ------------------------------------------------- runtime with a prebuilt binary
FROM runtime-base AS runtime-prebuilt
# One COPY, no RUN: the binary is stored once. The health check script is
# also what keeps this COPY valid without the binary (the legacy builder
# passes through this stage on a default build); targeting runtime-prebuilt
# without target/release/gateway gives an image with no gateway.
COPY docker/gateway-healthcheck target/release/gatewa[y] /usr/local/bin/

# --------------------------------------------------------------------- builder
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gateway \
    && install -m 0755 target/release/gateway /usr/local/bin/gateway \
    && /usr/local/bin/gateway --version

# ---------------------------------------------------------------- runtime (default)
FROM runtime-base AS runtime
COPY docker/gateway-healthcheck /usr/local/bin/
COPY --from=builder /usr/local/bin/gateway /usr/local/bin/gateway
