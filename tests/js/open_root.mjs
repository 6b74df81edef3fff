// Open a file as the Kaitai Web IDE does and touch every root-level node: the
// parser (compiled with --debug, as the IDE compiles it) is driven by the .ksy,
// each root seq field and instance is read, then every object reachable from
// the root is counted (the objects a person's clicks on the root nodes have
// created and the IDE keeps).
//
//   node tests/js/open_root.mjs --parser DIR/Qcow2.js --ksy formats/qcow2.ksy FILE
//
// Prints one JSON line: {"nodes": [ids], "objects": N, "ms": T, "heap_mb": H}
// (objects: Kaitai structs and arrays reached from the root; heap_mb: the
// growth of V8's used heap; ms: the wall time of parse and touch, for the
// reader: tests check the counts, not the time).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import vm from "node:vm";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const formatsRequire = createRequire(join(root, "formats", "package.json"));
const yaml = formatsRequire("js-yaml");
const KaitaiStream = formatsRequire("kaitai-struct/KaitaiStream");

const upperCamel = (id) => id.split("_").map((p) => (p ? p[0].toUpperCase() + p.slice(1) : "")).join("");
const lowerCamel = (id) => {
  const u = upperCamel(id);
  return u[0].toLowerCase() + u.slice(1);
};

function main() {
  const argv = process.argv.slice(2);
  const opt = (name) => argv[argv.indexOf(name) + 1];
  const ksy = yaml.load(readFileSync(opt("--ksy"), "utf8"), { schema: yaml.CORE_SCHEMA });
  const src = readFileSync(opt("--parser"), "utf8");
  const module = { exports: {} };
  vm.compileFunction(src, ["exports", "require", "module"])(module.exports, () => KaitaiStream, module);
  const Root = module.exports[upperCamel(ksy.meta.id)];
  const data = readFileSync(argv[argv.length - 1]);
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const obj = new Root(new KaitaiStream(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)));
  obj._read();
  const nodes = [...(ksy.seq ?? []).map((a) => a.id), ...Object.keys(ksy.instances ?? {})];
  for (const id of nodes) void obj[lowerCamel(id)];
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  const seen = new Set();
  const stack = [obj];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== "object" || seen.has(v) || v instanceof KaitaiStream || ArrayBuffer.isView(v)) continue;
    seen.add(v);
    for (const [k, x] of Object.entries(v)) if (k !== "_parent" && k !== "_root" && k !== "_debug") stack.push(x);
  }
  process.stdout.write(JSON.stringify({ nodes, objects: seen.size, ms, heap_mb: heapMb }) + "\n");
}

main();
