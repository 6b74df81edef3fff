// Dump the whole Kaitai parse of files as JSON, with the JavaScript parser the
// pinned compiler generates from a .ksy of formats/ (the journal's,
// formats/qcow2_journal.ksy, unless --ksy names another) and the pinned
// `kaitai-struct` runtime of formats/node_modules.
//
//   node formats/ksc.mjs --lang javascript --out DIR
//   node tests/js/dump_tree.mjs --parser DIR/Qcow2Journal.js [--ksy KSY] [--debug]
//                               [--skip TYPE.INSTANCE]... [FILE...]
//
// --skip: leave that instance of that type unevaluated, dumped as
// {"_skipped": true} (e.g. --skip l1_entry.l2_table, for images whose L2
// tables are too large to dump); tests/ksy_tree.py takes the same option.
//
// --each TYPE=COUNT: also dump, beside the tree, objects of a parameterised
// type that no field creates (qcow2's guest_cluster, host_cluster): one per
// index 0 to COUNT - 1, made on the root's stream with the root as parent and
// root, under "each": {TYPE: [...]}. COUNT is a dotted path from the root
// (header.num_guest_clusters), or A/B for A divided by B rounded up
// (_io.size/header.cluster_size). tests/ksy_tree.py takes the same option.
//
// --debug: the parser was compiled with `--debug`, as the Kaitai Web IDE
// compiles it (no _read() in the constructor, `_debug` positions): this
// script then calls _read() itself, as the IDE does.
//
// With no FILE, the paths are read from stdin, one a line. One JSON line is
// printed per input, in order: {"path": P, "result": R}. tests/ksy_tree.py
// builds the same R from the Python parser (generated/<meta id>.py), and
// tests/test_js_agreement.py compares the two. R is
//
//   {"ok": true, "tree": T}    T = the root object, as a struct (below)
//   {"ok": false, "error": {"kind", "src_path", "pos", "io_size", "root_pos",
//                           "actual", ...}}
//
// A struct is {"_type": <ksy type name>, <id>: value, ...} with every param,
// every seq field (null when its `if` is false) and every instance of its
// type, by .ksy id; an instance whose evaluation throws is {"_error": <kind>}. Values: an
// integer or boolean as is, an enum field as {"value": n, "name": <enum id or
// null>} (the name from the language's own enum table), bytes as a lowercase
// hex string, a string as {"str": s}, an array as a list, a user type as a
// struct. The walk is driven by the .ksy (parsed with js-yaml CORE_SCHEMA, as
// the Web IDE and formats/ksc.mjs parse it), so both languages are asked for
// the same names.
//
// Errors: "kind" is the runtime's error class name (ValidationExprError, ...),
// or "EOF" for a read past the end of a stream; "src_path" is the .ksy path
// the generated code names (e.g. /types/entry/seq/1); "pos" and "io_size" are
// the position and size of the stream that failed (for an entry, its
// cluster's 4096-byte substream), "root_pos" the position of the root stream
// (the area) at that moment.
//
// Runtime difference (kaitai-struct 0.11.0 for JavaScript): the generated code
// calls `new KaitaiStream.ValidationExprError(actual, this._io, "/types/...")`,
// but the runtime's Validation*Error constructors declare only the value
// arguments (actual, min, max, expected) and drop the stream and the source
// path, which the Python runtime keeps (`e.io`, `e.src_path`). To report where
// a JavaScript parse failed, this script wraps those constructors so that they
// keep the two extra arguments the generated code passes (and the stream
// position at the moment of the throw). Neither runtime's EOF error names its
// stream: for "EOF", src_path/pos/io_size are null in both dumps.
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

// ---- the runtime shim described above ------------------------------------
const VALUE_ARGS = {
  ValidationNotEqualError: ["expected", "actual"],
  ValidationLessThanError: ["min", "actual"],
  ValidationGreaterThanError: ["max", "actual"],
  ValidationNotAnyOfError: ["actual"],
  ValidationNotInEnumError: ["actual"],
  ValidationExprError: ["actual"],
};
for (const [name, args] of Object.entries(VALUE_ARGS)) {
  const Orig = KaitaiStream[name];
  if (typeof Orig !== "function") continue;
  const n = args.length;
  function Wrapped(...a) {
    const err = new Orig(...a.slice(0, n));
    const io = a[n];
    err.ksIo = io ?? null;
    err.ksSrcPath = a[n + 1] ?? null;
    err.ksPos = io ? io.pos : null;
    err.ksSize = io ? io.size : null;
    return err;
  }
  Wrapped.prototype = Orig.prototype;
  KaitaiStream[name] = Wrapped;
}

// ---- names ----------------------------------------------------------------
const upperCamel = (id) => id.split("_").map((p) => (p ? p[0].toUpperCase() + p.slice(1) : "")).join("");
const lowerCamel = (id) => {
  const u = upperCamel(id);
  return id.startsWith("_") ? id : u[0].toLowerCase() + u.slice(1);
};

function loadParser(parserPath, rootClass) {
  const src = readFileSync(parserPath, "utf8");
  const module = { exports: {} };
  const fn = vm.compileFunction(src, ["exports", "require", "module"], { filename: parserPath });
  // The generated module requires 'kaitai-struct/KaitaiStream': give it the
  // pinned runtime, the same object the shim above patched.
  const req = (name) => (name === "kaitai-struct/KaitaiStream" ? KaitaiStream : formatsRequire(name));
  fn.call(module.exports, module.exports, req, module);
  const cls = module.exports[rootClass];
  if (typeof cls !== "function") throw new Error(`${parserPath} does not export ${rootClass}`);
  return cls;
}

// Every type of the .ksy, the root included, by its generated class name.
function collectTypes(ksy) {
  const types = new Map();
  const add = (name, spec) => {
    types.set(upperCamel(name), { name, spec });
    for (const [sub, subSpec] of Object.entries(spec.types ?? {})) add(sub, subSpec);
  };
  add(ksy.meta.id, ksy);
  return types;
}

function seqIds(spec) {
  return (spec.seq ?? []).map((attr, i) => [attr.id ?? `_unnamed${i}`, attr]);
}

class Dumper {
  constructor(ksy, RootClass, debug, skip = new Set(), each = new Map()) {
    this.ksy = ksy;
    this.debug = debug;
    this.Root = RootClass;
    this.types = collectTypes(ksy);
    this.skip = skip;
    this.each = each;
  }

  // An --each COUNT: a dotted path from the root (by .ksy ids), or A/B rounded up.
  count(root, expr) {
    const path = (p) => p.split(".").reduce((v, id) => v[lowerCamel(id)], root);
    const [a, b] = expr.split("/");
    return b === undefined ? path(a) : Math.ceil(path(a) / path(b));
  }

  enumName(enumId, v) {
    // Enums of the root type hang on the root class (Qcow2Journal.EntryType).
    const table = this.Root[upperCamel(enumId.split("::").pop())];
    const name = table ? table[v] : undefined;
    return typeof name === "string" ? name.toLowerCase() : null;
  }

  value(v, attr) {
    if (v === undefined || v === null) return null;
    if (Array.isArray(v)) return v.map((x) => this.value(x, attr));
    if (attr && attr.enum && typeof v === "number") return { value: v, name: this.enumName(attr.enum, v) };
    if (typeof v === "boolean") return v;
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (typeof v === "string") return { str: v };
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length).toString("hex");
    if (typeof v === "object" && v._io !== undefined) return this.struct(v);
    throw new Error(`cannot dump a value of type ${Object.prototype.toString.call(v)}`);
  }

  struct(obj) {
    const entry = this.types.get(obj.constructor.name);
    if (!entry) throw new Error(`no .ksy type for class ${obj.constructor.name}`);
    const out = { _type: entry.name };
    for (const param of entry.spec.params ?? []) out[param.id] = this.value(obj[lowerCamel(param.id)], param);
    for (const [id, attr] of seqIds(entry.spec)) out[id] = this.value(obj[lowerCamel(id)], attr);
    for (const [id, inst] of Object.entries(entry.spec.instances ?? {})) {
      if (this.skip.has(`${entry.name}.${id}`)) {
        out[id] = { _skipped: true };
        continue;
      }
      let v;
      try {
        v = obj[lowerCamel(id)];
      } catch (err) {
        out[id] = { _error: errorKind(err) };
        continue;
      }
      out[id] = this.value(v, inst);
    }
    return out;
  }

  dump(arrayBuffer) {
    const io = new KaitaiStream(arrayBuffer);
    let obj;
    try {
      obj = new this.Root(io);
      if (this.debug) obj._read();
    } catch (err) {
      return { ok: false, error: this.error(err, io) };
    }
    const out = { ok: true, tree: this.struct(obj) };
    if (this.each.size) {
      out.each = {};
      for (const [name, expr] of this.each) {
        const Cls = this.Root[upperCamel(name)];
        const n = this.count(obj, expr);
        const items = [];
        for (let i = 0; i < n; i++) {
          const item = new Cls(obj._io, obj, obj, i);
          if (this.debug) item._read();
          items.push(this.struct(item));
        }
        out.each[name] = items;
      }
    }
    return out;
  }

  error(err, rootIo) {
    const kind = errorKind(err);
    const out = { kind, src_path: null, pos: null, io_size: null, root_pos: rootIo.pos };
    if (kind === "EOF") return out;
    if (!(kind in VALUE_ARGS)) {
      out.message = String(err && err.stack ? err.stack : err);
      return out;
    }
    out.src_path = err.ksSrcPath;
    out.pos = err.ksPos;
    out.io_size = err.ksSize;
    for (const k of VALUE_ARGS[kind]) out[k] = this.value(err[k]);
    return out;
  }
}

function errorKind(err) {
  if (err instanceof KaitaiStream.EOFError) return "EOF";
  return (err && (err.name || (err.constructor && err.constructor.name))) || String(err);
}

function parseArgs(argv) {
  const opts = { parser: null, ksy: join(root, "formats", "qcow2_journal.ksy"), debug: false, skip: new Set(), each: new Map(), files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--parser") opts.parser = argv[++i];
    else if (argv[i] === "--skip") opts.skip.add(argv[++i]);
    else if (argv[i] === "--each") {
      const [name, expr] = argv[++i].split("=");
      opts.each.set(name, expr);
    }
    else if (argv[i] === "--debug") opts.debug = true;
    else if (argv[i] === "--ksy") opts.ksy = argv[++i];
    else opts.files.push(argv[i]);
  }
  if (!opts.parser) throw new Error("usage: dump_tree.mjs --parser DIR/Qcow2Journal.js [--ksy KSY] [--debug] [--skip TYPE.INSTANCE]... [--each TYPE=COUNT]... [FILE...]");
  return opts;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ksy = yaml.load(readFileSync(opts.ksy, "utf8"), { schema: yaml.CORE_SCHEMA, filename: opts.ksy });
  const dumper = new Dumper(ksy, loadParser(resolve(opts.parser), upperCamel(ksy.meta.id)), opts.debug, opts.skip, opts.each);
  const files = opts.files.length
    ? opts.files
    : readFileSync(0, "utf8").split("\n").filter((l) => l.length > 0);
  const lines = [];
  for (const path of files) {
    const data = readFileSync(path);
    // An ArrayBuffer of exactly the file, as the Web IDE passes it.
    const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
    lines.push(JSON.stringify({ path, result: dumper.dump(buf) }));
  }
  process.stdout.write(lines.join("\n") + (lines.length ? "\n" : ""));
}

main();
