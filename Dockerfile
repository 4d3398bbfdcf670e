# syntax=docker/dockerfile:1
# accessbot: a static binary in a small non-root image.
#   docker build --build-arg VERSION=$(git describe --always) -t accessbot .
#   docker run -p 8080:8080 --stop-timeout 35 --env-file .env -v accessbot-data:/data accessbot
# (--stop-timeout above ACCESSBOT_SHUTDOWN_TIMEOUT, 25s: Docker's default 10s kills mid-shutdown.)

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes reuse the module cache layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/accessbot ./cmd/accessbot \
 && mkdir -p /out/data

# distroless/static has CA certificates and tzdata, no shell, and runs as
# the unprivileged user 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/accessbot /usr/local/bin/accessbot
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
ENV DATABASE_URL=sqlite:/data/accessbot.db \
    ACCESSBOT_LISTEN=:8080 \
    ACCESSBOT_ADMIN_LISTEN=:9090 \
    ACCESSBOT_LOG_FORMAT=json
VOLUME ["/data"]
# 8080: Slack (HTTP mode); 9090: operators (/healthz, /readyz, /metrics, /audit/export).
EXPOSE 8080 9090
USER 65532:65532
# Exec form: the image has no shell. Asks /healthz on ACCESSBOT_ADMIN_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["/usr/local/bin/accessbot", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/accessbot"]
CMD ["serve"]
