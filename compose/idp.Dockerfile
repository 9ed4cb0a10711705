# syntax=docker/dockerfile:1
# The demo identity provider (crate idp/, binary jwt-idp) as a small image.
# Build context: the repository root (docker-compose.yml sets it), e.g.
#   docker build -f compose/idp.Dockerfile -t jwt-authn-demo/jwt-idp:dev .
# compose/idp.Dockerfile.dockerignore keeps the context to the sources.

# --- build: the workspace needs every member's manifest, so copy them all.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY filter ./filter
COPY cli ./cli
COPY idp ./idp
RUN cargo build --release --locked -p jwt-idp \
 && install -m 0755 target/release/jwt-idp /jwt-idp

# --- run: no compiler, no shell tools beyond Debian's base; an unprivileged user.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/jwt-idp --shell /usr/sbin/nologin jwt-idp \
 && install -d -m 0700 -o jwt-idp -g jwt-idp /var/lib/jwt-idp
COPY --from=build /jwt-idp /usr/local/bin/jwt-idp
COPY demo/users.json /etc/jwt-idp/users.json
USER jwt-idp
# Keys live in a volume so that tokens stay valid across restarts.
VOLUME ["/var/lib/jwt-idp"]
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/jwt-idp"]
# Inside a container the IdP must listen on all interfaces; docker-compose.yml
# publishes it on the host's loopback only.
CMD ["serve", "--key-dir", "/var/lib/jwt-idp/keys", "--users", "/etc/jwt-idp/users.json", \
     "--listen", "0.0.0.0:8081", "--issuer", "http://idp:8081", "--audience", "demo-api"]
