// Bundles JsSIP (from node_modules, at the version package-lock.json names) into
// ../assets/jssip.js, which the server embeds and serves at /phone/jssip.js.
//   node build.mjs          writes the bundle
//   node build.mjs --check  exits 1 unless the committed bundle is what this builds
// The output depends only on the locked packages and the options below (no dates, no
// paths), so that anyone can rebuild the committed file byte for byte.
import { build } from "esbuild";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../assets/jssip.js");
const version = (p) =>
  JSON.parse(readFileSync(join(here, "node_modules", p, "package.json"), "utf8")).version;

const result = await build({
  entryPoints: [join(here, "entry.cjs")],
  bundle: true,
  format: "iife",
  globalName: "JsSIP",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  write: false,
  logLevel: "warning",
});
const head =
  `/* JsSIP ${version("jssip")} (MIT, https://jssip.net) with its dependencies, bundled by ` +
  `esbuild ${version("esbuild")}: crates/palisade/phone/build.mjs */\n`;
// MIT asks for each package's notice with every copy
const notices = ["jssip", "sdp-transform", "debug", "ms", "events"].map((p) => {
  const dir = join(here, "node_modules", p);
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  const notice = readFileSync(join(dir, file), "utf8").replaceAll("*/", "* /").trim();
  return `/*! ${p} ${version(p)}\n${notice}\n*/\n`;
});
const text = head + result.outputFiles[0].text + notices.join("");

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(out, "utf8");
  } catch {}
  if (committed !== text) {
    console.error(`${out} is not what build.mjs builds from the locked packages: run node build.mjs`);
    process.exit(1);
  }
  console.log("the committed bundle is reproduced byte for byte");
} else {
  writeFileSync(out, text);
  console.log(`wrote ${out} (${text.length} bytes)`);
}
