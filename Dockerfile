# One Hearth node. Configuration comes from the environment (see README.md, "Configuration").
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
COPY package.json package-lock.json .npmrc ./
# Dev dependencies are skipped; tsx (a runtime dependency) runs the TypeScript sources directly.
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["npm", "start"]
