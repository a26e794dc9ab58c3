# syntax=docker/dockerfile:1
#
# The sluice image: one static binary on distroless, running as non-root
# (65532). Every stage is a command of it: docker run sluice shipper|router|indexer|...
#
#   make image                     # docker build with VERSION and COMMIT from git
#   docker compose up --build      # the whole pipeline with Kafka, Elasticsearch and Kibana

# Go as in go.mod (go 1.26.x).
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: their layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags nodev \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/sluice ./cmd/sluice \
 && /out/sluice version
# The directories named volumes are mounted on (docker compose): a new named
# volume is initialised from the image's directory, ownership included, so
# the non-root user can write the shipper's checkpoints and the demo's logs.
RUN mkdir -p /out/var/lib/sluice/shipper /out/var/lib/sluice/node

# sluice-controller, an image of its own (docker build --target controller): its
# Kubernetes client libraries stay out of the image every node pulls for the shipper.
FROM golang:1.26-bookworm AS build-controller
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd controller && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
      -o /out/sluice-controller ./cmd/sluice-controller \
 && /out/sluice-controller --validate > /dev/null

FROM gcr.io/distroless/static-debian12:nonroot AS controller
LABEL org.opencontainers.image.title="sluice-controller" \
      org.opencontainers.image.description="Reconciles Sluice Tenant and Pipeline resources (sluice.io/v1alpha1) into Kafka" \
      org.opencontainers.image.source="https://github.com/sluicelogs/sluice"
COPY --from=build-controller /out/sluice-controller /usr/local/bin/sluice-controller
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/sluice-controller"]

# The sluice image, the default target.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Kafka-centric, multi-tenant log pipeline for Kubernetes: shipper, router, indexer" \
      org.opencontainers.image.source="https://github.com/sluicelogs/sluice" \
      org.opencontainers.image.url="https://github.com/sluicelogs/sluice" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY --from=build --chown=65532:65532 /out/var/lib/sluice /var/lib/sluice
USER 65532:65532
# /metrics, /healthz and /readyz (SLUICE_TELEMETRY_ADDR); health checks run
# `sluice probe`, as the image has no shell and no curl.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--help"]
