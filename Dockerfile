# syntax=docker/dockerfile:1
# Gatehouse image. By default it starts the way Complement
# (matrix-org/complement) expects a homeserver image to start: see
# docker/complement-entrypoint.sh (test settings, never for a real server).
# docker-compose.yml runs the same image with a production config instead.
#
#   docker build -t gatehouse .
#   docker run --rm -e SERVER_NAME=hs1 -p 8008:8008 gatehouse

# --- build tools: sqlite3 compiles from source when no prebuilt binary fits ---
FROM node:24-bookworm-slim AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./

# --- compile TypeScript with the full (dev) dependency set ---
FROM toolchain AS build
# Native addons are not needed to type-check and compile, so skip their builds.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
RUN npx tsc -p tsconfig.json

# --- production dependencies only, native addons built here ---
FROM toolchain AS prod-deps
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: no compilers, no dev dependencies ---
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The HTML pages' templates: the server looks for templates/ beside package.json.
COPY templates ./templates
# package.json says "type": "module": without it Node would not load dist/ as ESM.
COPY package.json ./
COPY docker/complement-entrypoint.sh docker/healthcheck.mjs ./docker/

# State (SQLite database, signing key) lives in /data, one directory per
# server name. No VOLUME: Complement commits containers to images and expects
# the state inside them; docker-compose.yml mounts a named volume here instead.
RUN mkdir -p /data && chown node:node /data
# The node image's unprivileged user (uid 1000); it owns /data.
USER node

# 8008: client-server API (plain HTTP). 8448 is exposed only because Complement
# waits for host bindings of both ports: Gatehouse does not federate yet, and
# nothing listens there.
EXPOSE 8008 8448

HEALTHCHECK --start-period=5s --interval=1s --timeout=1s \
  CMD ["node", "/app/docker/healthcheck.mjs"]

CMD ["/bin/sh", "/app/docker/complement-entrypoint.sh"]
