# syntax=docker/dockerfile:1
#
# The walsearch image: one static binary on a distroless base (CA
# certificates, tzdata, no shell), running as a non-root user.
#
#   make image                      # stamps version and commit from git
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t walsearch:v0.1.0 .
#
# Probes belong to the orchestrator (GET /health on the API port), so the
# image has no HEALTHCHECK.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
ARG TARGETOS
ARG TARGETARCH
# deploy/deploy_test.go runs this very command (with the output moved to a
# temporary directory) and checks what `walsearch version` prints.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/walsearch ./cmd/walsearch
RUN mkdir -p /out/data /out/scripts

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/walsearch /usr/local/bin/walsearch
# data_dir: the embedded NATS store and the embedded search engine. Mount a
# volume here; it must be writable by uid 65532.
COPY --from=build --chown=65532:65532 /out/data /var/lib/walsearch
COPY --from=build --chown=65532:65532 /out/scripts /etc/walsearch/scripts
# Defaults for a container (data_dir, scripts_dir, api.listen on every
# interface, JSON logs): mount another file here, or override any key from
# the environment.
COPY deploy/image/walsearch.yaml /etc/walsearch/walsearch.yaml
VOLUME ["/var/lib/walsearch"]
USER 65532:65532
# The search API. Listening beyond loopback needs API keys: set
# WALSEARCH_API_KEYS (or api.keys in the configuration file).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/walsearch"]
CMD ["run", "--config", "/etc/walsearch/walsearch.yaml"]
