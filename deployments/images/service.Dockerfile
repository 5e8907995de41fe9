# Image of one Go binary of this repository: reefer-manager, order-retry,
# container-inventory-mock, dlq or devbroker. The binary is built on the host
# (`make build`: CGO_ENABLED=0, static) and only copied here, so building the
# image needs no network and no Go toolchain in a build stage.
#
# Build-arg contract (the same for every service's own Dockerfile):
#   BASE_IMAGE  the runtime base. Default: distroless static (CA certificates,
#               tzdata, /tmp, a nonroot user). `make images` and CI pass
#               BASE_IMAGE=scratch because no registry is reachable there.
#   BINARY      the binary's file name. The build context is a directory that
#               holds only that file (`make images` prepares bin/.images/<binary>/).
#
#   docker build -f deployments/images/service.Dockerfile \
#     --build-arg BASE_IMAGE=scratch --build-arg BINARY=order-retry \
#     -t reefer-dlq/order-retry:dev bin/.images/order-retry
#
# A service that needs more (EXPOSE, a HEALTHCHECK, labels) copies this file to
# services/<name>/Dockerfile and keeps the two build args; `make images` uses
# that file when it exists. Never add a "# syntax=" line or build with --pull:
# both make Docker contact a registry.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE_IMAGE}

ARG BINARY
COPY ${BINARY} /usr/local/bin/service
LABEL org.opencontainers.image.title="${BINARY}"

# 65532 is distroless' "nonroot"; on scratch a numeric id needs no /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/service"]
