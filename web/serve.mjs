// A small static file server for web/ (the demo page and the package's ESM + wasm), with
// the right MIME types (browsers compile .wasm by streaming only as application/wasm).
//
//   node web/serve.mjs [--port 8000] [--host 127.0.0.1]
//
// Also a module: `serve({ root, port, host })` resolves with the listening http.Server.
import http from "node:http";
import { createReadStream, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
};

/** Serves `root` (default: web/) on `host:port` (port 0: any free port); `pages` maps extra
 *  paths to HTML (tests). */
export function serve({ root = HERE, port = 8000, host = "127.0.0.1", pages = {} } = {}) {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (pathname in pages) {
      res.writeHead(200, { "content-type": TYPES[".html"] }).end(pages[pathname]);
      return;
    }
    if (pathname.endsWith("/")) pathname += "index.html";
    const file = path.join(base, path.normalize(pathname));
    let st;
    try {
      st = statSync(file);
    } catch {
      st = null;
    }
    if (!file.startsWith(base + path.sep) || !st || !st.isFile() || file.includes(`${path.sep}node_modules${path.sep}`)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] || "application/octet-stream",
      "content-length": st.size,
      "cache-control": "no-cache",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
  };
  const host = arg("host", "127.0.0.1");
  const server = await serve({ port: Number(arg("port", "8000")), host });
  const { port } = server.address();
  console.log(`edgebus demo: http://${host}:${port}/`);
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
