# The lab's client: boto3, the AWS CLI and libnfs-utils, with the smoke test
# (lab-smoke) that docker-compose.yml's `client` service runs.
#
# CLIENT_IMAGE: base image (default debian:bookworm-slim). The tools are
# installed with apt-get unless the base already has them (the compose test's
# locally debootstrapped base does, and has no network).
ARG CLIENT_IMAGE=debian:bookworm-slim
FROM ${CLIENT_IMAGE}
RUN set -eu; \
    if ! { command -v aws && command -v nfs-ls && command -v nfs-cat && command -v nfs-cp \
           && python3 -c 'import boto3'; } >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ca-certificates python3 python3-boto3 awscli libnfs-utils; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    aws --version; nfs-ls 2>&1 | head -n 1 || true
# (lab-smoke is executable in the repository; COPY keeps the mode.)
COPY lab-smoke /usr/local/bin/lab-smoke
CMD ["lab-smoke"]
