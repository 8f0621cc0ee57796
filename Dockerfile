# syntax=docker/dockerfile:1
#
# ctsync container image: conntrack state sync for keepalived firewall pairs.
#
# ctsync must see the HOST's conntrack table and sync link, so the container
# shares the host network namespace and needs CAP_NET_ADMIN (ctnetlink dumps,
# writes and event groups; SO_RCVBUFFORCE). The configuration, the UNIX
# control socket, the lock file and the keepalived track file live on the host:
#
#   docker build -t ctsync .
#   docker run -d --name ctsync --restart unless-stopped \
#     --network host --cap-add NET_ADMIN --cap-add SYS_NICE \
#     -v /etc/ctsync:/etc/ctsync:ro \
#     -v /run/ctsync:/run/ctsync \
#     -v /run/keepalived:/run/keepalived \
#     ctsync
#
# Point General { UNIX { Path } LockFile } and Ctsync { ReadyFile NotifyFifo }
# at /run/ctsync or /run/keepalived so the host's keepalived and scripts see
# them; `docker exec ctsync ctsync -C /etc/ctsync/ctsync.conf -s` runs the
# client inside the container. Set LogFile off (or a mounted path): the
# default /var/log/conntrackd.log stays inside the container. Kernels older
# than 5.7 also need --cap-add NET_RAW for SO_BINDTODEVICE.
#
# Pin the base image by digest in production (node:20-bookworm-slim@sha256:...).
# Both stages use the same image, so the addon is built against exactly the
# Node ABI that runs it, from the headers that ship in the image
# (/usr/local/include/node): node-gyp never downloads headers.

# ---- build: native addon + TypeScript --------------------------------------
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The package's install script (scripts/build-native.mjs) builds native/ during
# npm ci, with --nodedir pointing at the image's own Node headers.
ENV CTSYNC_NODEDIR=/usr/local
COPY package.json package-lock.json ./
COPY scripts/ ./scripts/
COPY native/binding.gyp ./native/binding.gyp
COPY native/src/ ./native/src/
RUN npm ci \
 && test -f native/build/Release/ctsync_netlink.node
COPY tsconfig.json tsconfig.build.json ./
COPY src/ ./src/
COPY bench/ ./bench/
# bench/ is compiled with the helpers it shares with the tests.
COPY test/helpers/ ./test/helpers/
COPY bin/ ./bin/
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime: production dependencies, compiled JS, the addon ---------------
FROM node:20-bookworm-slim AS runtime
# conntrack(8) for operators (inspecting the kernel table next to ctsync -i/-e).
RUN apt-get update \
 && apt-get install -y --no-install-recommends conntrack \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ctsync
ENV NODE_ENV=production
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules/ ./node_modules/
COPY --from=build /app/dist/src/ ./dist/src/
COPY --from=build /app/bin/ ./bin/
COPY --from=build /app/native/build/Release/ctsync_netlink.node ./native/build/Release/ctsync_netlink.node
RUN ln -s /opt/ctsync/bin/ctsync.js /usr/local/bin/ctsync \
 && mkdir -p /etc/ctsync /run/ctsync
# Default metrics port (Ctsync { Metrics { Port } }); with --network host this is informational.
EXPOSE 9469
STOPSIGNAL SIGTERM
ENTRYPOINT ["ctsync"]
CMD ["-C", "/etc/ctsync/ctsync.conf"]
