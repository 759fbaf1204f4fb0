# One Hearth node. Configuration comes from the environment (docs/reference/configuration.md).
# Stage 1 compiles the TypeScript to dist/; stage 2 holds the compiled code and the production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY main.ts ./
COPY core ./core
COPY protocol ./protocol
COPY model-store ./model-store
COPY functions ./functions
COPY executor ./executor
COPY scaling ./scaling
COPY ledger ./ledger
COPY jobs ./jobs
COPY gateway ./gateway
COPY ui ./ui
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
