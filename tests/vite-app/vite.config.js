import { defineConfig, searchForWorkspaceRoot } from "vite";

// edgebus is installed as a link to ../../web (a symlink): the dev server serves files from
// outside the project only from folders it is told about, and the package fetches its wasm
// as a plain file. A copied install (npm install --install-links, or from a tarball) needs
// none of this; `vite build` never does.
export default defineConfig({
  server: {
    fs: { allow: [searchForWorkspaceRoot(process.cwd()), "../../web"] },
  },
});
