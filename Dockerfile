# Images for docker-compose.yml: one build stage, one small image per program.
#   docker build --target worker .    (also: starter, scim-sandbox)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -o /out/worker ./worker \
 && go build -trimpath -o /out/starter ./starter \
 && go build -trimpath -o /out/devstack ./internal/devstack/cmd/devstack \
 && go build -trimpath -o /out/scim-sandbox ./internal/scimsandbox/cmd/scim-sandbox

# The debug variants carry busybox (/busybox/wget): compose's health checks need it.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS worker
COPY --from=build /out/worker /usr/local/bin/worker
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/worker"]

FROM gcr.io/distroless/static-debian12:debug-nonroot AS scim-sandbox
COPY --from=build /out/scim-sandbox /usr/local/bin/scim-sandbox
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/scim-sandbox"]

# The starter CLI plus devstack's load-directory/wait-temporal; the debug
# variant has a busybox shell to chain them in a one-shot setup container.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS starter
COPY --from=build /out/starter /out/devstack /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/starter"]
