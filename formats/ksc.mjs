// Compile the .ksy files of formats/ with the pinned Kaitai Struct compiler
// (npm kaitai-struct-compiler, JavaScript API; see package-lock.json).
//
//   node formats/ksc.mjs                      regenerate generated/: the Python
//                                             module (+ __init__.py) and the
//                                             Graphviz .dot (rendered to SVG by
//                                             formats/regen.sh, which also runs
//                                             formats/tools/pystubs.py for the .pyi)
//   node formats/ksc.mjs --out DIR            the same files, into DIR
//   node formats/ksc.mjs --lang L --out DIR   compile to language L into DIR
//   node formats/ksc.mjs --languages          list the compiler's languages
//   node formats/ksc.mjs --all-languages --out DIR
//                                             compile to every language, into
//                                             DIR/<lang>/, in one process; prints
//                                             one line per language, writes
//                                             DIR/report.json, exits 1 if any
//                                             language failed
//   ... --ksy NAME                            any of the above for formats/NAME
//                                             only (e.g. --ksy qcow2.ksy;
//                                             repeatable); default: every
//                                             formats/*.ksy
//
// The YAML is parsed the way the Kaitai Web IDE parses it (js-yaml, CORE_SCHEMA),
// so a .ksy that compiles here compiles there.
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const yaml = require("js-yaml");
const compiler = require("kaitai-struct-compiler");

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");

function parseArgs(argv) {
  const opts = { lang: null, out: null, languages: false, allLanguages: false, debug: false, ksy: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--lang") opts.lang = argv[++i];
    else if (a === "--all-languages") opts.allLanguages = true;
    else if (a === "--out") opts.out = argv[++i];
    else if (a === "--languages") opts.languages = true;
    else if (a === "--debug") opts.debug = true;
    else if (a === "--ksy") opts.ksy.push(argv[++i]);
    else throw new Error(`unknown argument: ${a}`);
  }
  return opts;
}

export function loadKsy(path) {
  return yaml.load(readFileSync(path, "utf8"), { schema: yaml.CORE_SCHEMA, filename: path });
}

// Languages of the default regeneration (no --lang): the Python module the
// qjournal package imports, and the Graphviz picture of the format.
const DEFAULT_LANGS = ["python", "graphviz"];

function ksyFiles() {
  return readdirSync(here).filter((f) => f.endsWith(".ksy")).sort();
}

// The .ksy files of formats/ to compile: `selected` (file names, from --ksy),
// or every one.
function chooseKsy(selected) {
  const all = ksyFiles();
  if (!selected.length) return all;
  const unknown = selected.filter((n) => !all.includes(n));
  if (unknown.length) throw new Error(`no such .ksy in formats/: ${unknown.join(", ")} (there are: ${all.join(", ")})`);
  return [...selected].sort();
}

// Compile the chosen .ksy files to `lang`; returns [[relative file name, text],
// ...]. The YAML is parsed afresh for every call: the compiler gets an object
// no earlier compilation has seen.
async function compileAll(lang, debug, names) {
  const out = [];
  for (const name of names) {
    const files = await compiler.compile(lang, loadKsy(join(here, name)), null, debug);
    out.push(...Object.entries(files));
  }
  return out;
}

function writeFiles(out, files) {
  for (const [fname, text] of files) {
    const dest = join(out, fname);
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, text);
  }
}

// The compiler is Scala.js: its exceptions wrap the real cause (often
// "java.util.concurrent.ExecutionException: Boxed Exception"). Unwrap it and,
// for a "scala.NotImplementedError", name the compiler method that lacks the
// implementation, e.g. "NimTranslator.doInternalName". The optimised Scala.js
// build has no getCause(); the cause is the Throwable field `jl_Throwable__f_e`
// of the pinned 0.11.0 build (a newer build may rename it: then the outer
// message is reported as is).
export function describeError(err) {
  let e = err;
  for (let i = 0; i < 10 && e; i++) {
    const cause = e.jl_Throwable__f_e;
    if (!cause || cause === e) break;
    e = cause;
  }
  let text = String(e);
  const stack = String((e && e.jl_Throwable__f_jsErrorForStackTrace && e.jl_Throwable__f_jsErrorForStackTrace.stack) || (e && e.stack) || "");
  if (text.includes("NotImplementedError")) {
    const m = stack.match(/\$c_Lio_kaitai_struct_(?:[a-z]+_)*([A-Z]\w*)\.(\w+?)__/);
    if (m) text += ` (in the compiler's ${m[1]}.${m[2]})`;
  }
  return text;
}

async function compileEveryLanguage(outDir, debug, names) {
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  const report = { compiler: compiler.version, ksy: names, languages: {} };
  let failed = 0;
  for (const lang of compiler.languages) {
    try {
      const files = await compileAll(lang, debug, names);
      writeFiles(join(out, lang), files);
      const sizes = Object.fromEntries(files.map(([f, t]) => [f.replace(/^\/+/, ""), Buffer.byteLength(t)]));
      report.languages[lang] = { ok: true, files: sizes };
      const total = Object.values(sizes).reduce((a, b) => a + b, 0);
      console.log(`ok    ${lang.padEnd(12)} ${files.length} file(s), ${total} bytes`);
    } catch (err) {
      failed++;
      const error = describeError(err);
      report.languages[lang] = { ok: false, error };
      console.log(`FAIL  ${lang.padEnd(12)} ${error}`);
    }
  }
  writeFileSync(join(out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  if (failed) {
    console.error(`ksc: ${failed} of ${compiler.languages.length} languages failed to compile`);
    process.exitCode = 1;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.languages) {
    console.log(compiler.languages.join("\n"));
    return;
  }
  if (opts.allLanguages) {
    if (opts.out === null || opts.lang !== null) throw new Error("--all-languages needs --out DIR and no --lang");
    await compileEveryLanguage(opts.out, opts.debug, chooseKsy(opts.ksy));
    return;
  }
  const names = chooseKsy(opts.ksy);
  const isDefault = opts.out === null;
  const out = resolve(opts.out ?? join(root, "generated"));
  mkdirSync(out, { recursive: true });
  for (const lang of opts.lang === null ? DEFAULT_LANGS : [opts.lang]) {
    writeFiles(out, await compileAll(lang, opts.debug, names));
  }
  if (isDefault || opts.lang === null || opts.lang === "python") {
    writeFileSync(
      join(out, "__init__.py"),
      `"""Kaitai Struct compiler ${compiler.version} output for formats/*.ksy.\n\n` +
        "Generated by formats/ksc.mjs: never edit by hand, regenerate instead.\n" +
        '"""\n',
    );
  }
}

main().catch((err) => {
  console.error(`ksc: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
