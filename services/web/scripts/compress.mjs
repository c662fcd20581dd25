// After `vite build`: a .gz beside every text asset, so the API can send the compressed file to browsers that
// accept gzip (it compresses nothing at request time).
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const TEXT = /\.(js|css|html|svg|ttf|json)$/;
let saved = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (TEXT.test(name) && statSync(path).size > 1024) {
      const raw = readFileSync(path);
      const gz = gzipSync(raw, { level: 9 });
      writeFileSync(`${path}.gz`, gz);
      saved += raw.length - gz.length;
    }
  }
}
walk(new URL("../dist", import.meta.url).pathname);
console.log(`gzip copies written (${(saved / 1024).toFixed(0)} KiB smaller in total)`);
