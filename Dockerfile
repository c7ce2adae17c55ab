# syntax=docker/dockerfile:1
# One image for both processes of a disagg-operator pod (charts/disagg-operator runs it twice):
#   operator (default command):  node dist/operator/src/main.js [flags]
#   router sidecar:              node dist/router/src/main.js [flags]
# Build: docker build -t disagg-operator:0.1.0 .
# The Node major matches package.json "engines" (the project runs on Node 22).
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: all dependencies, TypeScript compiled to dist/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY router/src router/src
COPY operator/src operator/src
RUN npm run build

# --- production dependencies only (no dev tools; no npm-installed Node: the base image has one) ---
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# A numeric non-root user, so Kubernetes can verify runAsNonRoot (the chart runs as 65532).
RUN groupadd --system --gid 65532 disagg \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin disagg
# package.json carries "type": "module", which the compiled ESM in dist/ needs.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 65532:65532
# router: 8000 (OpenAI API, /health, /ready, /metrics), 7500 (LMCache KV-ready notifications);
# operator: 8080 (/metrics), 8081 (/healthz, /readyz)
EXPOSE 8000 7500 8080 8081
ENTRYPOINT ["node"]
CMD ["dist/operator/src/main.js"]
