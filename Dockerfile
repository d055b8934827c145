# syntax=docker/dockerfile:1
#
# TimeCoin node image: `timed` and `time-cli` on a slim Debian, running as an unprivileged user with the
# data dir on a volume.
#
#   docker build -t timecoin .
#   docker volume create timecoin-data
#   docker run --rm -v timecoin-data:/var/lib/timecoin timecoin init --network testnet --datadir /var/lib/timecoin
#   docker run -d --name timed --stop-timeout 30 -p 24200:24200 -v timecoin-data:/var/lib/timecoin timecoin
#
# The RPC binds 127.0.0.1 inside the container unless told otherwise (TIMED_RPC_LISTEN=0.0.0.0:24201 and a
# published port); its cookie is in the volume. `docker stop` sends SIGTERM; timed's own shutdown bound
# is 10 s, so give the container more than that (--stop-timeout 30).

# ---- build ----
# The toolchain pinned in rust-toolchain.toml.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p timed -p time-cli \
    && install -D -m 0755 target/release/timed /out/timed \
    && install -D -m 0755 target/release/time-cli /out/time-cli

# ---- run ----
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 timecoin \
    && useradd --system --uid 10001 --gid timecoin --home-dir /var/lib/timecoin --shell /usr/sbin/nologin timecoin \
    && install -d -m 0700 -o timecoin -g timecoin /var/lib/timecoin
COPY --from=build /out/timed /out/time-cli /usr/local/bin/
COPY config/ /usr/share/timecoin/config/
COPY docs/OPERATOR.md /usr/share/doc/timecoin/OPERATOR.md
USER timecoin:timecoin
VOLUME ["/var/lib/timecoin"]
# Peer-to-peer ports: mainnet, testnet, local. RPC and metrics stay inside unless configured and published.
EXPOSE 24100 24200 24300
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/timed"]
CMD ["--datadir", "/var/lib/timecoin"]
