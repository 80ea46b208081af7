// The web UI at `/`: the single-page app built by `npm run build` (vite, into
// dist/ui), served as static files. Client routes (/runs/17, /workers, ...)
// fall back to index.html; /api/v1/* and /metrics are never shadowed: an
// unknown API path is still a JSON 404. Without a build, `/` says how to make one.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

/** dist/ui from src/server (tests) and from dist/server (the built server) alike. */
export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/ui');

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Gantry</title>
<body style="font:14px system-ui,sans-serif;margin:3em;max-width:40em">
<h1>Gantry</h1><p>The web UI is not built. Build it with <code>npm run build</code> (or <code>npm install</code>,
which builds it too), then reload this page.</p><p>The HTTP API is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>`;

const isApi = (url: string) => url.startsWith('/api/') || url === '/api' || url.startsWith('/metrics');

export async function registerUi(app: FastifyInstance, dir = UI_DIR): Promise<void> {
  const built = fs.existsSync(path.join(dir, 'index.html'));
  app.setNotFoundHandler((req, reply) => {
    const url = req.url.split('?')[0]!;
    if (isApi(url) || (req.method !== 'GET' && req.method !== 'HEAD')) return reply.code(404).send({ error: `no route ${req.method} ${url}` });
    if (!built) return reply.code(200).type('text/html; charset=utf-8').send(NOT_BUILT);
    // a client route of the app (or a missing asset: the app's own 404 page says so)
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').sendFile('index.html');
  });
  if (!built) return;
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    cacheControl: false,
    // file names under assets/ carry their content hash; index.html must be read again on every load
    setHeaders(res, file) {
      res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
