# syntax=docker/dockerfile:1
#
# zenconn's image. The build stage installs every dependency, compiles the native
# modules and the TypeScript, then prunes to production dependencies; the runtime stage
# holds only what `zenconn` runs (node_modules, dist/src, bin, public, admin) and runs it as the
# unprivileged `node` user.
#
#   docker build -t zenconn .
#   docker run --rm -p 8080:8080 --ulimit nofile=1048576:1048576 zenconn   # agent, SQLite in /app/data
#   docker run --rm zenconn --version
#   docker run --rm -p 8080:8080 zenconn serve                             # one process, no workers
#
# test/deploy/image-build.integration.test.ts runs this file's COPY and RUN steps natively
# in a scratch folder (all but `apt-get`), then its ENTRYPOINT, CMD and HEALTHCHECK: keep
# every step relative to WORKDIR and free of host-specific paths.
#
# Open files: an image cannot raise the limit. Set it where the container runs
# (compose.yaml's `ulimits`, or `docker run --ulimit nofile=N:N`); Node raises its soft
# limit to that hard limit when it starts, in the agent and in every worker.

# A current Node.js LTS on glibc (Debian): better-sqlite3 v12 and bufferutil build or
# download for it; musl (alpine) would force every native module to compile.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Compilers for the native modules, in this stage only: better-sqlite3 compiles when no
# prebuilt binary can be downloaded for this Node.js.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so this layer is reused until the lockfile changes. The root
# package's `prepare` (tsc) cannot run yet, hence --ignore-scripts; `npm rebuild` then
# runs the dependencies' own install scripts (the native builds).
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund && npm rebuild
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY public ./public
COPY admin ./admin
# The browser bundle of the client library (/zenconn/client.js), built by esbuild after tsc.
COPY scripts/build-client.js ./scripts/build-client.js
# Compile, drop the devDependencies (typescript, @types, test tools) and better-sqlite3's
# build leftovers (its bundled SQLite sources and object files: only the .node is loaded),
# and make the folder for the record spool and audit journal.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
      node_modules/better-sqlite3/build/Release/obj node_modules/better-sqlite3/build/Release/obj.target \
      node_modules/better-sqlite3/build/Release/sqlite3.a node_modules/better-sqlite3/build/Release/test_extension.node \
 && mkdir -p data

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The application stays root-owned and read-only to the `node` user; only data/ is its.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/bin ./bin
COPY --from=build /app/public ./public
COPY --from=build /app/admin ./admin
COPY deploy/healthcheck.js ./deploy/healthcheck.js
COPY --from=build --chown=node:node /app/data ./data
USER node
# Record spool, audit journal and (by default) the SQLite database: one volume per
# container, so each replica keeps its own across restarts.
VOLUME ["/app/data"]
EXPOSE 8080
# Liveness: GET /healthz on ZENCONN_PORT (default 8080), HTTPS when ZENCONN_TLS_CERT is set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "/app/deploy/healthcheck.js"]
ENTRYPOINT ["node", "/app/bin/zenconn.js"]
CMD ["agent"]
